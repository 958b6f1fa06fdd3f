// gc for networking: reconcile what the kernel and the store hold with the containers alive, for
// when a supervisor was SIGKILLed or the machine restarted. Order matters: addresses first (an
// address whose container is dead is freed), then every nft element whose container address is no
// longer allocated, then host veths on the bridge whose container is not alive. A container being
// started must be in `live` (it allocates before it publishes, and publishes before its veth exists).
import { readdirSync } from 'node:fs';
import type { Bridge } from './bridge.js';
import { freeDeadAddresses, readAllocations } from './ipam.js';
import { type NetPaths, TABLE, vethIdPrefix } from './store.js';

type NftValue = number | string | { concat: (number | string)[] };
interface NftMap {
  name: string;
  table: string;
  elem?: [NftValue, NftValue][];
}

const nftText = (v: NftValue): string => (typeof v === 'object' ? v.concat.join(' . ') : String(v));
const addressOf = (v: NftValue): string => String(typeof v === 'object' ? v.concat[0] : v);

/** `nft -j list table ip T` -> delete lines for the elements whose container address is not allocated. */
export function staleElements(json: string, table: string, allocated: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const items = (JSON.parse(json) as { nftables?: { map?: NftMap }[] }).nftables ?? [];
  for (const it of items) {
    const m = it.map;
    if (!m || m.table !== table || !/^(tcp|udp)_(pub|pub_ip|claim)$/.test(m.name)) continue;
    for (const [key, value] of m.elem ?? [])
      if (!allocated.has(addressOf(value))) out.push(`delete element ip ${table} ${m.name} { ${nftText(key)} }`);
  }
  return out;
}

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
  elements: string[];
  links: string[];
}

export interface GcRunner {
  run: (cmd: string, args: string[], input?: string) => { code: number; out: string };
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
  const allocated = new Set(readAllocations(b.paths.addresses).map((a) => a.address));
  const nft = b.bin('nft');
  const listed = runner.run(nft, ['-j', 'list', 'table', 'ip', b.table]);
  const elements = listed.code === 0 ? staleElements(listed.out, b.table, allocated) : [];
  if (elements.length && runner.run(nft, ['-f', '-'], elements.join('\n') + '\n').code !== 0)
    for (const e of elements) runner.run(nft, ['-f', '-'], e + '\n'); // all or nothing: one by one instead
  let ports: string[] = [];
  try {
    ports = readdirSync(`${sys}/${b.name}/brif`);
  } catch {
    /* no bridge */
  }
  // a veth is alive while its container's address is: that also covers other stores' containers
  const alive = new Set([...live, ...readAllocations(b.paths.addresses).map((a) => a.id)]);
  const links = staleLinks(ports, alive);
  for (const l of links) runner.run(b.bin('ip'), ['link', 'del', l]);
  return { freed, elements, links };
}

/**
 * For the leak check after a test suite: nft map elements and allocated addresses left on this
 * host (the leak check's scan of tsc* links covers the veths). The bridge and the empty table may
 * stay: they are made once per host.
 */
export function leftovers(paths: NetPaths, runner: GcRunner = realRunner(), nft = 'nft'): string[] {
  const out: string[] = [];
  const listed = runner.run(nft, ['-j', 'list', 'table', 'ip', TABLE]);
  const elements = listed.code === 0 ? staleElements(listed.out, TABLE, new Set()) : [];
  if (elements.length)
    out.push(
      `nft elements in ip ${TABLE}: ${elements.map((e) => e.replace(/^delete element ip \S+ /, '')).join(', ')}`,
    );
  const addrs = readAllocations(paths.addresses);
  if (addrs.length)
    out.push(`addresses allocated: ${addrs.map((a) => `${a.address} (${a.id.slice(0, 12)})`).join(' ')}`);
  return out;
}
