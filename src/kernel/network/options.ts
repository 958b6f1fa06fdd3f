// The network options of `tscontain run`, as docker spells them, parsed into data. The lead's
// option table (src/spec/options.ts) takes NETWORK_OPTIONS; parseNetworkOptions validates everything
// that needs no host fact, so bad input fails before anything is made.
import { TscError } from '../../errors.js';
import type { OptDef } from '../../spec/options.js';
import { parseDns, parseDnsOption, parseDnsSearch } from './resolv.js';
import { type PortMapping, checkMappings, parsePublish } from './publish.js';

export type NetworkMode =
  | { kind: 'bridge' }
  | { kind: 'none' }
  | { kind: 'host' }
  | { kind: 'container'; name: string };

export const NETWORK_OPTIONS: OptDef[] = [
  {
    name: 'network',
    type: 'string',
    arg: 'MODE',
    desc: '"bridge" (default: tsc0 with NAT), "none" (only lo), "host", or "container:NAME" (share its network)',
  },
  {
    name: 'publish',
    short: 'p',
    type: 'list',
    arg: '[IP:]HOST:CTR[/udp]',
    desc: 'publish a container port on the host (ports may be ranges, e.g. 8000-8009:80-89)',
  },
  { name: 'publish-all', short: 'P', type: 'bool', desc: 'publish every port the image exposes on a free host port' },
  { name: 'dns', type: 'list', arg: 'IP', desc: "resolver for /etc/resolv.conf (instead of the host's)" },
  { name: 'dns-search', type: 'list', arg: 'DOMAIN', desc: 'search domain for /etc/resolv.conf ("." for none)' },
  { name: 'dns-option', type: 'list', arg: 'OPT', desc: 'resolver option for /etc/resolv.conf, e.g. ndots:2' },
  { name: 'add-host', type: 'list', arg: 'NAME:IP', desc: 'add a line to /etc/hosts (IP may be host-gateway)' },
];

export function parseNetworkMode(s: string): NetworkMode {
  if (s === 'bridge' || s === 'default') return { kind: 'bridge' };
  if (s === 'none' || s === 'host') return { kind: s };
  if (s.startsWith('container:')) {
    const name = s.slice('container:'.length);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name))
      throw new TscError(
        `invalid --network "${s}": "${name}" is not a container name or id`,
        'use --network container:NAME',
      );
    return { kind: 'container', name };
  }
  throw new TscError(`unsupported network mode "${s}"`, 'use --network bridge (default), none, host or container:NAME');
}

export interface NetOptions {
  mode: NetworkMode;
  publish: PortMapping[];
  publishAll: boolean;
  dns: string[];
  dnsSearch: string[];
  dnsOptions: string[];
  /** validated later (host-gateway needs the bridge's address): NAME:IP strings */
  addHosts: string[];
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : []);

/** From parsed options (parseArgs' opts) to data; docker's conflicts are refused in one line. */
export function parseNetworkOptions(o: Record<string, unknown>, hostname?: string): NetOptions {
  const mode = parseNetworkMode(str(o.network) ?? str(o.net) ?? 'bridge');
  const publish = list(o.publish).flatMap(parsePublish);
  checkMappings(publish);
  const n: NetOptions = {
    mode,
    publish,
    publishAll: o['publish-all'] === true,
    dns: list(o.dns).map(parseDns),
    dnsSearch: list(o['dns-search']).map(parseDnsSearch),
    dnsOptions: list(o['dns-option']).map(parseDnsOption),
    addHosts: list(o['add-host']),
  };
  const conflict = (what: string) =>
    new TscError(
      `conflicting options: ${what} and --network ${mode.kind === 'container' ? 'container:' + mode.name : mode.kind}`,
      `drop ${what}`,
    );
  if (mode.kind !== 'bridge' && (n.publish.length || n.publishAll)) throw conflict('publishing ports (-p, -P)');
  if (mode.kind === 'container') {
    if (hostname !== undefined) throw conflict('--hostname');
    if (n.dns.length || n.dnsSearch.length || n.dnsOptions.length) throw conflict('--dns options');
    if (n.addHosts.length) throw conflict('--add-host');
  }
  return n;
}
