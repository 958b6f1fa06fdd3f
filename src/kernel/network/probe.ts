// Host facts networking plans with, read from files (no program started): the routes, the
// remembered subnet, the resolvers, the firewall program (nft, else iptables; TSCONTAIN_FIREWALL
// forces one), and (only when ports are published) the ports host programs listen on. Everything
// the planning functions need comes from here, as data.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { which } from '../../host/tools.js';
import { type FirewallFacts, chooseFirewall } from './firewall.js';
import { type Route, parseProcNetRoute } from './subnet.js';
import { onlyLoopback } from './resolv.js';

export interface NetFacts {
  routes: Route[];
  /** the store's network/subnet, if chosen before */
  remembered?: string;
  /** /etc/resolv.conf */
  resolv: string;
  /** /run/systemd/resolve/resolv.conf, read only when the host's names only loopback resolvers */
  resolvUpstream?: string;
  /** /etc/hosts (for --network host) */
  hosts?: string;
  listening?: { tcp: Set<number>; udp: Set<number> };
  /** the firewall backend (facts made by hand may leave it out: nft) */
  firewall?: FirewallFacts;
}

const read = (f: string): string | undefined => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
};

/**
 * Local ports in use from /proc/net/{tcp,tcp6,udp,udp6} (proc(5)): TCP sockets in LISTEN (state
 * 0A), UDP sockets bound to a port (state 07). Field 2 is "ADDR:PORT" in hex.
 */
export function parseProcNetSockets(text: string, listenState: string): Set<number> {
  const out = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== listenState) continue;
    const port = parseInt(f[1].split(':')[1] ?? '', 16);
    if (port > 0) out.add(port);
  }
  return out;
}

export function readListening(proc = '/proc'): { tcp: Set<number>; udp: Set<number> } {
  const get = (files: string[], state: string) =>
    new Set(files.flatMap((f) => [...parseProcNetSockets(read(join(proc, 'net', f)) ?? '', state)]));
  return { tcp: get(['tcp', 'tcp6'], '0A'), udp: get(['udp', 'udp6'], '07') };
}

export interface ProbeOptions {
  proc?: string;
  etc?: string;
  run?: string;
  subnetFile: string;
  listening?: boolean;
  /** TSCONTAIN_FIREWALL */
  forceFirewall?: string;
  /** whether a host program is installed */
  has?: (program: string) => boolean;
}

export function readNetFacts(o: ProbeOptions): NetFacts {
  const proc = o.proc ?? '/proc';
  const etc = o.etc ?? '/etc';
  const resolv = read(join(etc, 'resolv.conf')) ?? '';
  return {
    routes: parseProcNetRoute(read(join(proc, 'net', 'route')) ?? ''),
    remembered: read(o.subnetFile)?.trim() || undefined,
    resolv,
    resolvUpstream: onlyLoopback(resolv) ? read(join(o.run ?? '/run', 'systemd', 'resolve', 'resolv.conf')) : undefined,
    hosts: read(join(etc, 'hosts')),
    listening: o.listening ? readListening(proc) : undefined,
    firewall: chooseFirewall(
      'forceFirewall' in o ? o.forceFirewall : process.env.TSCONTAIN_FIREWALL,
      o.has ?? ((p) => which(p) !== undefined),
    ),
  };
}
