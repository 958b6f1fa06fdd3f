// Published ports: -p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp] (ports may be ranges) and -P
// (every ExposedPorts entry of the image, on a free host port): parsing, checks, and the record of
// what a container published ("$tsc_run/ports"). The firewall (nft.ts or iptables.ts) publishes
// them: each claims a host port atomically first, so a port another container holds fails the
// start and leaves nothing behind.
import { TscError } from '../../errors.js';
import type { Sh } from '../../plan/sh.js';
import { parseIPv4 } from './ipv4.js';

export const PROTOS = ['tcp', 'udp'] as const;
export type Proto = (typeof PROTOS)[number];

/** One published container port. host.from === host.to: that port; else one free port of the range, picked at start. */
export interface PortMapping {
  proto: Proto;
  /** undefined: every address of the host */
  hostIp?: string;
  host: { from: number; to: number };
  container: number;
}

/** docker's default range for ports it picks itself (-P, -p CONTAINER_PORT) */
export const EPHEMERAL = { from: 32768, to: 60999 };

const USAGE =
  'use -p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp], ports 1-65535, e.g. -p 8080:80 or -p 127.0.0.1:5353:53/udp';

function portRange(s: string, whole: string): { from: number; to: number } {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
  if (!m) throw new TscError(`invalid -p "${whole}": "${s}" is not a port or a port range`, USAGE);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  for (const p of [from, to])
    if (p < 1 || p > 65535) throw new TscError(`invalid -p "${whole}": port ${p} is out of range`, USAGE);
  if (to < from) throw new TscError(`invalid -p "${whole}": the range ${s} ends before it starts`, USAGE);
  return { from, to };
}

/** One -p value: a mapping per container port. */
export function parsePublish(v: string): PortMapping[] {
  let spec = v;
  let proto: Proto = 'tcp';
  const slash = v.lastIndexOf('/');
  if (slash >= 0) {
    const p = v.slice(slash + 1);
    if (p !== 'tcp' && p !== 'udp') throw new TscError(`invalid -p "${v}": protocol "${p}" is not tcp or udp`, USAGE);
    proto = p;
    spec = v.slice(0, slash);
  }
  if (spec.startsWith('[')) throw new TscError(`invalid -p "${v}": IPv6 addresses are not supported`, USAGE);
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((x, i) => x === '' && !(parts.length === 3 && i === 1)))
    throw new TscError(`invalid -p "${v}"`, USAGE);
  const [ipPart, hostPart, ctrPart] =
    parts.length === 3 ? parts : parts.length === 2 ? [undefined, ...parts] : [undefined, undefined, parts[0]];
  let hostIp: string | undefined;
  if (ipPart !== undefined) {
    if (parseIPv4(ipPart) === undefined)
      throw new TscError(`invalid -p "${v}": "${ipPart}" is not an IPv4 address`, USAGE);
    hostIp = ipPart === '0.0.0.0' ? undefined : ipPart;
  }
  const ctr = portRange(ctrPart, v);
  const host = hostPart === undefined || hostPart === '' ? undefined : portRange(hostPart, v);
  const n = ctr.to - ctr.from + 1;
  const out: PortMapping[] = [];
  if (host === undefined) {
    for (let i = 0; i < n; i++) out.push({ proto, hostIp, host: { ...EPHEMERAL }, container: ctr.from + i });
  } else if (host.to - host.from + 1 === n) {
    for (let i = 0; i < n; i++)
      out.push({ proto, hostIp, host: { from: host.from + i, to: host.from + i }, container: ctr.from + i });
  } else if (n === 1) {
    out.push({ proto, hostIp, host, container: ctr.from }); // docker: one free port of the host range
  } else {
    throw new TscError(`invalid -p "${v}": the host range and the container range differ in length`, USAGE);
  }
  return out;
}

/** -P: the image config's ExposedPorts ({"80/tcp": {}, "53/udp": {}}), each on a free ephemeral port. */
export function publishAll(exposed: Record<string, unknown> | undefined): PortMapping[] {
  const out: PortMapping[] = [];
  for (const key of Object.keys(exposed ?? {})) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/.exec(key);
    if (!m)
      throw new TscError(
        `the image exposes "${key}", which is not PORT[/tcp|/udp]`,
        'publish its ports one by one with -p',
      );
    if (m[3] === 'sctp') continue; // not published by tscontain (nor by most docker setups)
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < 1 || to > 65535 || to < from)
      throw new TscError(`the image exposes "${key}", which is out of range`, 'publish its ports one by one with -p');
    for (let p = from; p <= to; p++)
      out.push({ proto: (m[3] ?? 'tcp') as Proto, host: { ...EPHEMERAL }, container: p });
  }
  return out.sort((a, b) => a.container - b.container || a.proto.localeCompare(b.proto));
}

export const fixed = (m: PortMapping) => m.host.from === m.host.to;
export const showMapping = (m: PortMapping) =>
  `${m.hostIp ? m.hostIp + ':' : ''}${fixed(m) ? m.host.from : `${m.host.from}-${m.host.to}`}` +
  `:${m.container}/${m.proto}`;

/**
 * One container cannot publish a host port twice, nor one container port of -P twice (an -p for
 * it wins). A host port is the unit of conflict whatever the address (docker too refuses
 * 0.0.0.0:80 next to 127.0.0.1:80); ports a host program listens on are refused, because DNAT would
 * hide that program from other machines.
 */
export function checkMappings(
  ms: PortMapping[],
  listening: { tcp: ReadonlySet<number>; udp: ReadonlySet<number> } = { tcp: new Set(), udp: new Set() },
): PortMapping[] {
  const seen = new Map<string, PortMapping>();
  for (const m of ms.filter(fixed)) {
    const k = `${m.host.from}/${m.proto}`;
    const other = seen.get(k);
    if (other)
      throw new TscError(
        `host port ${k} is published twice (${showMapping(other)} and ${showMapping(m)})`,
        'give each host port once',
      );
    seen.set(k, m);
    if (listening[m.proto].has(m.host.from))
      throw new TscError(
        `host port ${k} is in use by a program on this host`,
        'choose another host port, e.g. -p 8080:' + m.container,
      );
  }
  return ms;
}

/** Free candidates of a range for a port picked at start: the whole range when small, else some, starting at random. */
export function candidates(m: PortMapping, taken: (p: number) => boolean, count = 32, rand = Math.random): number[] {
  const size = m.host.to - m.host.from + 1;
  const start = size <= count ? 0 : Math.floor(rand() * size);
  const out: number[] = [];
  for (let i = 0; i < size && out.length < count; i++) {
    const p = m.host.from + ((start + i) % size);
    if (!taken(p)) out.push(p);
  }
  return out;
}

/** "$tsc_run/ports": PROTO CONTAINER_PORT HOST_IP HOST_PORT per line, written once the ports are ours. */
export function recordFormat(m: PortMapping, port: Sh | string): { fmt: string; args: (Sh | string)[] } {
  return { fmt: '%s %s %s %s\\n', args: [m.proto, String(m.container), m.hostIp ?? '0.0.0.0', port] };
}

export interface PublishedPort {
  proto: Proto;
  container: number;
  hostIp: string;
  hostPort: number;
}

/** The "$tsc_run/ports" file back to data (for port, ps, inspect). */
export function parsePortsFile(text: string): PublishedPort[] {
  const out: PublishedPort[] = [];
  for (const l of text.split('\n')) {
    const [proto, c, ip, h] = l.trim().split(/\s+/);
    if ((proto === 'tcp' || proto === 'udp') && /^\d+$/.test(c) && parseIPv4(ip) !== undefined && /^\d+$/.test(h))
      out.push({ proto, container: Number(c), hostIp: ip, hostPort: Number(h) });
  }
  return out.sort((a, b) => a.container - b.container || a.proto.localeCompare(b.proto) || a.hostPort - b.hostPort);
}

/**
 * `tscontain port NAME [PORT[/PROTO]]`, as docker prints it: "80/tcp -> 0.0.0.0:8080" per line,
 * or with a port given only "0.0.0.0:8080". Returns undefined when the filter matches nothing.
 */
export function formatPort(ports: PublishedPort[], filter?: string): string | undefined {
  if (filter === undefined)
    return ports.map((p) => `${p.container}/${p.proto} -> ${p.hostIp}:${p.hostPort}\n`).join('');
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(filter);
  if (!m)
    throw new TscError(`invalid port "${filter}"`, 'use PORT or PORT/tcp or PORT/udp, e.g. tscontain port web 80');
  const hits = ports.filter((p) => p.container === Number(m[1]) && p.proto === (m[2] ?? 'tcp'));
  return hits.length ? hits.map((p) => `${p.hostIp}:${p.hostPort}\n`).join('') : undefined;
}

/** The PORTS column of ps: "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp". */
export const formatPsPorts = (ports: PublishedPort[]): string =>
  ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.container}/${p.proto}`).join(', ');
