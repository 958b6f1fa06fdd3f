// /etc/hosts and /etc/hostname of a container, and how they get there: written into the
// container's own overlay layer (upper/etc/) before it starts, so they are the container's own
// copies (a write inside stays inside), need no mount, and no path of the image is followed: an
// image whose /etc/hosts is a symlink gets a plain file over it.
import { TscError } from '../../errors.js';
import { type Sh, lit, sh } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';
import { isIPv6, parseIPv4 } from './ipv4.js';

export interface HostEntry {
  name: string;
  ip: string;
}

/** docker's /etc/hosts head */
export const HOSTS_HEAD = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::\tip6-localnet',
  'ff00::\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/;

/** --add-host NAME:IP (or NAME=IP, for IPv6); IP may be "host-gateway": the bridge's address. */
export function parseAddHost(s: string, gateway?: string): HostEntry {
  const i = s.includes('=') ? s.indexOf('=') : s.indexOf(':');
  const name = i < 0 ? '' : s.slice(0, i);
  let ip = i < 0 ? '' : s.slice(i + 1);
  const hint = 'use --add-host NAME:IP, e.g. --add-host db:192.0.2.10 (NAME=IP for IPv6, or NAME:host-gateway)';
  if (!HOST.test(name) || name.endsWith('.') || name.endsWith('-'))
    throw new TscError(`invalid --add-host "${s}": "${name}" is not a host name`, hint);
  if (ip === 'host-gateway') {
    if (!gateway) throw new TscError(`invalid --add-host "${s}": host-gateway needs --network bridge`, hint);
    ip = gateway;
  }
  if (parseIPv4(ip) === undefined && !isIPv6(ip))
    throw new TscError(`invalid --add-host "${s}": "${ip}" is not an IP address`, hint);
  return { name, ip };
}

/**
 * The file's lines before the container's own entry, which needs its address and so is written at
 * start (ownEntryLine). Extra entries come first, as docker writes them.
 */
export function hostsHead(extra: HostEntry[]): string {
  return [...HOSTS_HEAD, ...extra.map((e) => `${e.ip}\t${e.name}`)].join('\n') + '\n';
}

/** The names of the container's own line: its hostname, and its name when different. */
export const ownNames = (hostname: string, name?: string): string[] =>
  name && name !== hostname ? [hostname, name] : [hostname];

/** The whole file, for a known address (tests, inspect): head + "IP\thostname [name]". */
export const hostsFile = (extra: HostEntry[], hostname: string, name?: string, ip?: string): string =>
  hostsHead(extra) + (ip ? `${ip}\t${ownNames(hostname, name).join(' ')}\n` : '');

export const hostnameFile = (hostname: string): string => `${hostname}\n`;

export interface EtcFiles {
  resolv?: string;
  hostsHead?: string;
  /** names for the container's own hosts line, written with "$tsc_net_ip" (bridge only) */
  ownNames?: string[];
  hostname?: string;
  /** printed when the plan runs (e.g. the resolver fallback) */
  note?: string;
}

/**
 * Host setup, before the container starts (after allocateStep for the bridge): write the files
 * into "$tsc_ctr/upper/etc". Only printf and redirections: no program is started unless upper/etc
 * must be made.
 */
export function etcFilesStep(f: EtcFiles): Step {
  const dir = lit('"$tsc_ctr/upper/etc"');
  const lines: Sh[] = [sh`[ -d ${dir} ] || mkdir -p ${dir}`];
  if (f.note) lines.push(sh`echo ${`tscontain: ${f.note}`} >&2`);
  if (f.resolv !== undefined) lines.push(sh`printf '%s' ${f.resolv} > ${dir}/resolv.conf`);
  if (f.hostname !== undefined) lines.push(sh`printf '%s' ${f.hostname} > ${dir}/hostname`);
  if (f.hostsHead !== undefined) {
    const own = f.ownNames?.length ? [sh`  printf ${'%s\\t%s\\n'} "$tsc_net_ip" ${f.ownNames.join(' ')}`] : [];
    lines.push(lit('{'), sh`  printf '%s' ${f.hostsHead}`, ...own, sh`} > ${dir}/hosts`);
  }
  return {
    title: "Write the container's own /etc/resolv.conf, /etc/hosts and /etc/hostname (into its layer)",
    man: "resolv.conf(5), hosts(5), hostname(5), overlayfs: a file in the upper layer hides the image's",
    lines,
  };
}
