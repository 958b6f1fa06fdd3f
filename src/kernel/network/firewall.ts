// The firewall behind the bridge: nft(8) (nft.ts: one table of our own) where it is installed,
// else iptables(8) (iptables.ts: chains of our own). Both make the same rules: masquerade for the
// subnet, a forward filter, the 127.0.0.0/8 guard, hairpin, and DNAT for published ports with an
// atomic claim of each host port. This file says what a backend provides and picks one; the
// bridge, the plan, gc and doctor reach the backends only through `firewall()`.
import { TscError } from '../../errors.js';
import type { Sh } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';
import type { Bridge } from './bridge.js';
import { IPTABLES } from './iptables.js';
import { NFT } from './nft.js';
import type { PortMapping, Proto } from './publish.js';
import type { NetPaths } from './store.js';

export const FIREWALLS = ['nft', 'iptables'] as const;
export type FirewallName = (typeof FIREWALLS)[number];

/** The programs a backend runs (doctor checks them; the first one decides whether it is installed). */
export const FIREWALL_PROGRAMS: Record<FirewallName, { programs: string[]; pkg: string }> = {
  nft: { programs: ['nft'], pkg: 'nftables' },
  iptables: { programs: ['iptables', 'iptables-save', 'iptables-restore'], pkg: 'iptables' },
};

export interface GcRunner {
  run: (cmd: string, args: string[], input?: string) => { code: number; out: string };
}

/** What gc knows of the containers: those alive, and what they hold in the network directory. */
export interface GcAlive {
  /** ids of the containers alive (this store's, and those other stores' allocations name) */
  ids: ReadonlySet<string>;
  /** the addresses allocated */
  addresses: ReadonlySet<string>;
}

export interface Firewall {
  name: FirewallName;
  /** for titles: "the nft table ip tscontain" */
  what: string;
  /** man pages of the setup step */
  man: string;
  /** sh run under the network lock while the bridge is made: our rules, made idempotently */
  setupLines: (b: Bridge) => Sh[];
  /** sh run under the network lock when no container is on the bridge: our rules removed */
  pruneLines: (b: Bridge) => Sh[];
  /** host setup, after the address is taken: claim and publish the ports */
  publishStep: (b: Bridge, ms: PortMapping[], taken?: (proto: Proto, p: number) => boolean) => Step | undefined;
  /** exit: remove what "$tsc_run/ports" says this container published ($tsc_id's) */
  unpublishLines: (b: Bridge) => Sh[];
  unpublishMan: string;
  /** gc: remove what containers that are not alive published; returns a line per thing removed */
  /**
   * alive() reads the allocations anew: call it after listing what may go, never before. A starting
   * container makes its address before its veth, map elements and rules, so what was listed first
   * always finds its address then; read the other way round, a start in between looks dead.
   */
  gc: (b: Bridge, alive: () => GcAlive, runner: GcRunner) => string[];
  /** the leak check: per-container entries left (the empty chains or table may stay with the bridge) */
  leftovers: (paths: NetPaths, runner: GcRunner, bin: (name: string) => string, sys: string) => string[];
  /** doctor: sh that makes the whole ruleset (in a throwaway network namespace) */
  probe: (b: Bridge) => string;
}

export const firewall = (name: FirewallName): Firewall => (name === 'iptables' ? IPTABLES : NFT);

/** The backend chosen for this host, the ones installed, and why (for doctor and error messages). */
export interface FirewallFacts {
  use?: FirewallName;
  installed: FirewallName[];
  why: string;
}

/**
 * nft where it is installed, else iptables. TSCONTAIN_FIREWALL=nft|iptables forces one (tests of
 * the iptables backend on a host that has both). `has` says whether a program is installed.
 */
export function chooseFirewall(forced: string | undefined, has: (program: string) => boolean): FirewallFacts {
  const installed = FIREWALLS.filter((f) => has(FIREWALL_PROGRAMS[f].programs[0]));
  if (forced) {
    if (!(FIREWALLS as readonly string[]).includes(forced))
      throw new TscError(`TSCONTAIN_FIREWALL=${forced} is not a firewall tscontain knows`, 'use nft or iptables');
    const f = forced as FirewallName;
    return installed.includes(f)
      ? { use: f, installed, why: `${f} (TSCONTAIN_FIREWALL=${f})` }
      : { installed, why: `TSCONTAIN_FIREWALL=${f}, but ${FIREWALL_PROGRAMS[f].programs[0]} is not installed` };
  }
  if (installed.includes('nft')) return { use: 'nft', installed, why: 'nft' };
  if (installed.includes('iptables')) return { use: 'iptables', installed, why: 'iptables (nft(8) is not installed)' };
  return { installed, why: 'neither nft(8) nor iptables(8) is installed' };
}
