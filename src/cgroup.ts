// cgroups(7): one driver for v1 (a hierarchy per controller) and one for v2 (one unified tree).
// Drivers only *describe* work: they return shell lines for the plan; nothing here writes cgroupfs.
// Each container's cgroup is <hierarchy>/tscontain/<id>; tscontain never writes outside tscontain/.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TscError } from './errors.js';
import { q } from './sh.js';

export interface Limits {
  memory?: number; // bytes
  pids?: number;
  cpus?: number; // CPUs of CFS quota
  cpuShares?: number; // v1 cpu.shares scale (2..262144)
}

export const CFS_PERIOD = 100000;

export interface CgroupDriver {
  version: 1 | 2;
  root: string;
  /** controller -> this container's cgroup directory */
  dirs: Record<string, string>;
  /** the distinct directories (v2: one) */
  all: string[];
  /** sh lines: create the cgroup(s) and write the limits */
  create(): string[];
  /** sh lines run by the container's init: move itself in (writing 0 moves the writer) */
  join(): string[];
  /** sh lines that set $tsc_oom to the number of OOM kills in the container's cgroup */
  oomCount(): string[];
  /** sh lines: remove the cgroup(s), retrying while the kernel finishes reaping */
  remove(): string[];
}

export function cgroupRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.TSCONTAIN_CGROUP_ROOT || '/sys/fs/cgroup';
}

/** v2 when the root itself is a cgroup2 mount (it has cgroup.controllers); else v1 (or hybrid). */
export function detectVersion(root: string): 1 | 2 {
  return existsSync(join(root, 'cgroup.controllers')) ? 2 : 1;
}

/** v2 from cpu.shares: docker's conversion, so `--cpu-shares 1024` is the default weight 100. */
export const sharesToWeight = (s: number) => Math.floor(1 + ((s - 2) * 9999) / 262142);

const V1_CONTROLLERS = ['memory', 'pids', 'cpu', 'cpuacct'];

function needed(l: Limits): string[] {
  const n: string[] = [];
  if (l.memory !== undefined) n.push('memory');
  if (l.pids !== undefined) n.push('pids');
  if (l.cpus !== undefined || l.cpuShares !== undefined) n.push('cpu');
  return n;
}

function removeLines(all: string[]): string[] {
  return [
    `for tsc_cg in ${all.map(q).join(' ')}; do`,
    `  for tsc_try in 1 2 3 4 5 6 7 8 9 10; do [ -d "$tsc_cg" ] || break; rmdir "$tsc_cg" 2>/dev/null && break; sleep 0.05; done`,
    `done`,
  ];
}

function readEvent(file: string, key: string): string[] {
  return [`tsc_oom=0`, `[ -r ${q(file)} ] && while read -r tsc_k tsc_v; do [ "$tsc_k" = ${key} ] && tsc_oom=$tsc_v; done < ${q(file)}`];
}

export function v1Driver(root: string, id: string, limits: Limits): CgroupDriver {
  const present = V1_CONTROLLERS.filter((c) => existsSync(join(root, c, 'cgroup.procs')));
  for (const c of needed(limits))
    if (!present.includes(c))
      throw new TscError(`the cgroup v1 "${c}" hierarchy is missing under ${root}`, `mount it (mount -t cgroup -o ${c} cgroup ${root}/${c}) or drop the limit; see tscontain doctor`);
  const dirs: Record<string, string> = {};
  for (const c of present) dirs[c] = join(root, c, 'tscontain', id);
  const all = [...new Set(Object.values(dirs))];
  const w = (c: string, file: string, v: string | number) => `echo ${q(String(v))} > ${q(join(dirs[c], file))}`;
  return {
    version: 1, root, dirs, all,
    create() {
      const l = [`mkdir -p ${all.map(q).join(' ')}`];
      if (limits.memory !== undefined) l.push(w('memory', 'memory.limit_in_bytes', limits.memory));
      if (limits.pids !== undefined) l.push(w('pids', 'pids.max', limits.pids));
      if (limits.cpus !== undefined) l.push(w('cpu', 'cpu.cfs_period_us', CFS_PERIOD), w('cpu', 'cpu.cfs_quota_us', Math.round(limits.cpus * CFS_PERIOD)));
      if (limits.cpuShares !== undefined) l.push(w('cpu', 'cpu.shares', limits.cpuShares));
      return l;
    },
    join: () => all.map((d) => `echo 0 > ${q(join(d, 'cgroup.procs'))}`),
    oomCount: () => (dirs.memory ? readEvent(join(dirs.memory, 'memory.oom_control'), 'oom_kill') : ['tsc_oom=0']),
    remove: () => removeLines(all),
  };
}

export function v2Driver(root: string, id: string, limits: Limits): CgroupDriver {
  let enabled: string[] = [];
  try { enabled = readFileSync(join(root, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/); } catch { /* none */ }
  for (const c of needed(limits))
    if (!enabled.includes(c))
      throw new TscError(`the cgroup v2 "${c}" controller is not enabled for child cgroups of ${root}`, `enable it (echo +${c} > ${root}/cgroup.subtree_control) or drop the limit; see tscontain doctor`);
  const use = ['memory', 'pids', 'cpu'].filter((c) => enabled.includes(c));
  const parent = join(root, 'tscontain');
  const dir = join(root, 'tscontain', id);
  const dirs: Record<string, string> = { unified: dir };
  for (const c of use) dirs[c] = dir;
  const w = (file: string, v: string | number) => `echo ${q(String(v))} > ${q(join(dir, file))}`;
  return {
    version: 2, root, dirs, all: [dir],
    create() {
      const l = [`mkdir -p ${q(dir)}`];
      // enable the controllers for tscontain/*: our own cgroup, never the root's
      if (use.length) l.splice(0, 1, `mkdir -p ${q(parent)}`, `echo ${q(use.map((c) => '+' + c).join(' '))} > ${q(join(parent, 'cgroup.subtree_control'))}`, `mkdir ${q(dir)}`);
      if (limits.memory !== undefined) l.push(w('memory.max', limits.memory));
      if (limits.pids !== undefined) l.push(w('pids.max', limits.pids));
      if (limits.cpus !== undefined) l.push(w('cpu.max', `${Math.round(limits.cpus * CFS_PERIOD)} ${CFS_PERIOD}`));
      if (limits.cpuShares !== undefined) l.push(w('cpu.weight', sharesToWeight(limits.cpuShares)));
      return l;
    },
    join: () => [`echo 0 > ${q(join(dir, 'cgroup.procs'))}`],
    oomCount: () => readEvent(join(dir, 'memory.events'), 'oom_kill'),
    remove: () => removeLines([dir]),
  };
}

export function cgroupDriver(id: string, limits: Limits, root = cgroupRoot()): CgroupDriver {
  return detectVersion(root) === 2 ? v2Driver(root, id, limits) : v1Driver(root, id, limits);
}
