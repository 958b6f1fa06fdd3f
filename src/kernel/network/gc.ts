// gc for networking: reconcile what the kernel and the store hold with the containers alive, for
// when a supervisor was SIGKILLed or the machine restarted. Order matters: addresses first (an
// address whose container is dead is freed), then what the firewalls hold for containers no longer
// alive (nft elements whose container address is no longer allocated; iptables rules and port
// claims of dead containers), then host veths on the bridge whose container is not alive. A
// container being started must be in `live` (it allocates before it publishes, and publishes
// before its veth exists).
import { readdirSync } from 'node:fs';
import type { Bridge } from './bridge.js';
import { FIREWALLS, type GcRunner, firewall } from './firewall.js';
import { freeDeadAddresses, readAllocations } from './ipam.js';
import { type NetPaths, vethIdPrefix } from './store.js';

export type { GcRunner } from './firewall.js';

/** Host veths on the bridge (names from /sys/class/net/BR/brif) whose container is not alive. */
export function staleLinks(ports: string[], live: ReadonlySet<string>): string[] {
  const prefixes = new Set([...live].map((id) => id.slice(0, 12)));
  return ports.filter((p) => {
    const id = vethIdPrefix(p);
    return id !== undefined && !prefixes.has(id);
  });
}

export interface GcResult {
  freed: string[];
  /** what the firewalls removed: nft elements, iptables rules and port claims */
  elements: string[];
  links: string[];
}

const realRunner = (): GcRunner => {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  return {
    run: (cmd, args, input) => {
      const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
      return { code: r.status ?? 1, out: r.stdout ?? '' };
    },
  };
};

/** The gc the lead calls with the ids of the containers alive (including those being started). */
export function gcNetwork(
  b: Bridge,
  live: ReadonlySet<string>,
  runner: GcRunner = realRunner(),
  sys = '/sys/class/net',
): GcResult {
  const freed = freeDeadAddresses(b.paths.addresses, live);
  // read anew after each listing (see Firewall.gc): a container being started makes its address first
  const alive = () => {
    const allocations = readAllocations(b.paths.addresses);
    return {
      ids: new Set([...live, ...allocations.map((a) => a.id)]),
      addresses: new Set(allocations.map((a) => a.address)),
    };
  };
  let ports: string[] = [];
  try {
    ports = readdirSync(`${sys}/${b.name}/brif`);
  } catch {
    /* no bridge */
  }
  // a veth is alive while its container's address is: that also covers other stores' containers
  const links = staleLinks(ports, alive().ids);
  const elements = b.firewalls.flatMap((f) => firewall(f).gc(b, alive, runner));
  for (const l of links) runner.run(b.bin('ip'), ['link', 'del', l]);
  return { freed, elements, links };
}

/**
 * For the leak check after a test suite: what the firewalls hold for containers (nft map elements,
 * iptables rules and port claims) and allocated addresses left on this host (the leak check's scan
 * of tsc* links covers the veths). The bridge and the empty table or chains may stay: they are made
 * once per host.
 */
export function leftovers(
  paths: NetPaths,
  runner: GcRunner = realRunner(),
  bin: (name: string) => string = (n) => n,
  sys = '/sys/class/net',
): string[] {
  const out = FIREWALLS.flatMap((f) => firewall(f).leftovers(paths, runner, bin, sys));
  const addrs = readAllocations(paths.addresses);
  if (addrs.length)
    out.push(`addresses allocated: ${addrs.map((a) => `${a.address} (${a.id.slice(0, 12)})`).join(' ')}`);
  return out;
}
