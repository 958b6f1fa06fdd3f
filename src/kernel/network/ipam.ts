// Addresses without a daemon: one file per address in use (lib/network/addresses/<address>,
// holding the container id and run directory), created with O_EXCL by sh's `set -C`. Creating the file *is* taking
// the address, so two containers can never get the same one, with or without a lock, and a file
// outlives any crash until gc sees that its container is gone (as CNI host-local does).
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { lit, sh } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';
import type { Bridge } from './bridge.js';
import { type Cidr, formatCidr, parseIPv4 } from './ipv4.js';

/** Host offsets inside the subnet that containers may get: 2 .. size-2 (1 is the gateway, the last the broadcast). */
export function hostRange(c: Cidr): { first: number; last: number } {
  return { first: 2, last: 2 ** (32 - c.len) - 2 };
}

/**
 * sh that takes a free address: from the offset after the last one taken (a hint in .next, which
 * may race harmlessly), each candidate is tried with an exclusive create until one succeeds.
 * Sets tsc_net_ip (dotted) and tsc_net_x (the address as a number), and records the address in
 * "$tsc_run/ip". Needs $tsc_id and $tsc_run.
 */
export function allocateStep(b: Bridge): Step {
  const dir = b.paths.addresses;
  const { first, last } = hostRange(b.subnet);
  const full =
    `tscontain: no free address left in ${formatCidr(b.subnet)}: ` + 'remove stopped containers, or run tscontain gc';
  return {
    title: `Take a free address in ${formatCidr(b.subnet)} (a file per address, created exclusively)`,
    man: 'sh(1) set -C (noclobber: open with O_EXCL), open(2)',
    lines: [
      sh`[ -d ${dir} ] || mkdir -p ${dir}`,
      sh`tsc_net_n=; read -r tsc_net_n 2>/dev/null < ${dir}/.next || :`,
      lit(`case $tsc_net_n in ''|*[!0-9]*) tsc_net_n=0 ;; esac`),
      lit('tsc_net_i=0; set -C'),
      lit('while :; do'),
      sh`  tsc_net_n=$(( tsc_net_n >= ${last} || tsc_net_n < ${first} ? ${first} : tsc_net_n + 1 ))`,
      sh`  tsc_net_x=$(( ${b.subnet.base} + tsc_net_n ))`,
      lit('  tsc_net_ip=$(( tsc_net_x >> 24 )).$(( tsc_net_x >> 16 & 255 ))'),
      lit('  tsc_net_ip=$tsc_net_ip.$(( tsc_net_x >> 8 & 255 )).$(( tsc_net_x & 255 ))'),
      sh`  { echo "$tsc_id $tsc_run" > ${dir}/"$tsc_net_ip"; } 2>/dev/null && break`,
      lit('  tsc_net_i=$(( tsc_net_i + 1 ))'),
      sh`  [ "$tsc_net_i" -le ${last - first} ] || {`,
      sh`    set +C; echo ${full} >&2; exit 1`,
      lit('  }'),
      lit('done; set +C'),
      sh`echo "$tsc_net_n" > ${dir}/.next`,
      lit('echo "$tsc_net_ip" > "$tsc_run/ip"'),
    ],
  };
}

/** sh for the exit (and for a start that failed half-way): give the address back, if it is still ours. */
export function freeLines(b: Bridge) {
  const dir = b.paths.addresses;
  return [
    lit('[ -n "${tsc_net_ip-}" ] || read -r tsc_net_ip 2>/dev/null < "$tsc_run/ip" || :'),
    lit('if [ -n "${tsc_net_ip-}" ]; then'),
    sh`  tsc_net_o=; read -r tsc_net_o tsc_net_r 2>/dev/null < ${dir}/"$tsc_net_ip" || :`,
    sh`  [ "$tsc_net_o" != "$tsc_id" ] || rm -f ${dir}/"$tsc_net_ip"`,
    lit('fi'),
  ];
}

export interface Allocation {
  address: string;
  id: string;
  /** the container's run directory (stores differ: TSCONTAIN_ROOT), alive while it exists */
  runDir?: string;
}

const isAddress = (name: string) => parseIPv4(name) !== undefined;

/**
 * The addresses in use, read from the directory (files whose name is not an address are skipped).
 * iptables.ts keeps its port claims the same way: `valid` says which names are claims.
 */
export function readAllocations(dir: string, valid: (name: string) => boolean = isAddress): Allocation[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: Allocation[] = [];
  for (const n of names) {
    if (!valid(n)) continue;
    let text = '';
    try {
      text = readFileSync(join(dir, n), 'utf8').trim();
    } catch {
      continue;
    }
    const [id = '', runDir] = text.split(' ');
    out.push({ address: n, id, runDir });
  }
  return out;
}

/**
 * gc: free the addresses of containers that are not alive. An empty file is an address being
 * taken right now (create and write are two system calls): it is left alone unless it is old.
 * Returns the freed addresses.
 */
export function freeDeadAddresses(
  dir: string,
  live: ReadonlySet<string>,
  now = Date.now(),
  valid: (name: string) => boolean = isAddress,
): string[] {
  const freed: string[] = [];
  for (const a of readAllocations(dir, valid)) {
    if (live.has(a.id) || (a.runDir && existsSync(a.runDir))) continue;
    const file = join(dir, a.address);
    if (a.id === '') {
      try {
        if (now - statSync(file).mtimeMs < 60_000) continue;
      } catch {
        continue;
      }
    }
    try {
      unlinkSync(file);
      freed.push(a.address);
    } catch {
      /* taken care of by someone else */
    }
  }
  return freed;
}
