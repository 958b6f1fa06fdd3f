// cgroups(7): one driver for v1 (a hierarchy per controller) and one for v2 (one unified tree).
// Drivers only *describe* work: they return shell lines for the plan; nothing here writes cgroupfs.
// Each container's cgroup is <hierarchy>/tscontain/<id>; tscontain never writes outside tscontain/.
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { TscError } from '../errors.js';
import { joinSh, lit, ref as shRef, setVar, sh, type Sh } from '../plan/sh.js';

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
  /** sh variable definitions for the directories (the other lines refer to them) */
  vars(): Sh[];
  /** the directories to create, as sh variable references ("$tsc_cg_memory") */
  mkdirs(): Sh[];
  /** sh lines run once the directories exist: enable controllers (v2) and write the limits */
  setLimits(): Sh[];
  /**
   * sh lines that move process `pid` in (writing 0 moves the writer itself); with `from`, by paths
   * relative to that directory (the writer's cwd), so they still work after pivot_root
   */
  join(pid?: Sh, from?: string): Sh[];
  /**
   * sh lines for the supervisor, once the directories exist: a throwaway subshell joins the
   * container's cgroup in the background and ends. The kernel makes the first migration after a
   * quiet spell wait for an RCU grace period (cgroup_threadgroup_rwsem, a percpu rw-semaphore,
   * leaves its fast mode), several ms; started now, that wait runs beside the rest of the setup,
   * and PID 1's own join a few ms later finds the semaphore still in its slow mode and is quick.
   */
  prime(): Sh[];
  /** sh lines that set $tsc_oom to the number of OOM kills in the container's cgroup */
  oomCount(): Sh[];
  /** sh lines: remove the cgroup(s), retrying while the kernel finishes reaping */
  remove(): Sh[];
  /**
   * sh lines: delete these paths (recursively) and remove the cgroup(s), in one program (after the
   * prime() subshell ended, which may still be in the cgroup, or about to join it): find
   * -delete unlinks files and removes directories with rmdir(2); in cgroupfs it only removes the
   * cgroup directories (it never touches their control files: the kernel removes them with the cgroup)
   */
  removeWith(paths: Sh[]): Sh[];
}

export function cgroupRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.TSCONTAIN_CGROUP_ROOT || '/sys/fs/cgroup';
}

/** v2 when the root itself is a cgroup2 mount (it has cgroup.controllers); else v1 (or hybrid). */
export function detectVersion(root: string): 1 | 2 {
  return existsSync(join(root, 'cgroup.controllers')) ? 2 : 1;
}

/**
 * cpu.weight (v2, 1..10000, default 100) from cpu.shares (v1, 2..262144, default 1024): the curve
 * runc (1.3.2+) and crun (1.23+) use, a quadratic in log2(shares) through (2, 1), (1024, 100) and
 * (262144, 10000), so docker's default `--cpu-shares 1024` gives the kernel's default weight, as no
 * flag does. (Their former linear formula, 1 + (shares - 2) * 9999 / 262142, gave 1024 -> 39.)
 */
export function sharesToWeight(shares: number): number {
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  return Math.ceil(10 ** ((l * l + 125 * l) / 612 - 7 / 34));
}

const V1_CONTROLLERS = ['memory', 'pids', 'cpu', 'cpuacct', 'devices'];

function needed(l: Limits): string[] {
  const n: string[] = [];
  if (l.memory !== undefined) n.push('memory');
  if (l.pids !== undefined) n.push('pids');
  if (l.cpus !== undefined || l.cpuShares !== undefined) n.push('cpu');
  return n;
}

/** A directory's sh variable: "$tsc_cg_memory". */
const ref = (name: string) => shRef(`tsc_cg_${name}`);

function removeLines(root: string, names: string[], paths: Sh[] = []): Sh[] {
  const dirs = names.map(ref);
  const act = paths.length
    ? joinSh(
        [sh`find ${paths} ${dirs}`, sh`\( -path ${join(root, '*')} ! -name "$tsc_id" \) -o -delete 2>/dev/null`],
        ' \\\n    ',
      )
    : sh`rmdir ${dirs} 2>/dev/null`;
  return [
    lit('[ -z "${tsc_prime-}" ] || wait "$tsc_prime" 2>/dev/null   # the warm-up subshell has left the cgroup'),
    lit('for tsc_try in 1 2 3 4 5 6 7 8 9 10; do   # retried while the kernel finishes reaping'),
    sh`  ${act}`,
    ...(dirs.length === 1
      ? [sh`  [ -d ${dirs[0]} ] || break`]
      : [
          lit('  tsc_left='),
          joinSh([lit('  for tsc_d in'), joinSh(dirs)], ' \\\n    '),
          lit('  do [ ! -d "$tsc_d" ] || tsc_left=1; done'),
          lit('  [ -n "$tsc_left" ] || break'),
        ]),
    lit('  sleep 0.05'),
    lit('done'),
  ];
}

function readEvent(file: Sh, key: string): Sh[] {
  return [
    lit('tsc_oom=0'),
    sh`if [ -r ${file} ]; then`,
    sh`  while read -r tsc_k tsc_v; do [ "$tsc_k" != ${key} ] || tsc_oom=$tsc_v; done < ${file}`,
    lit('fi'),
  ];
}

/** The deepest directory that holds all of these (a cgroup dir holds itself). */
export function commonDir(dirs: string[]): string {
  const parts = dirs.map((d) => d.split('/'));
  const out: string[] = [];
  for (let i = 0; parts.every((p) => i < p.length && p[i] === parts[0][i]); i++) out.push(parts[0][i]);
  return out.join('/') || '/';
}

/** dir as a path relative to from, which holds it ("." for from itself); its last part the id, as "$tsc_id". */
function below(from: string, dir: string, id: string): Sh {
  const rel = relative(from, dir);
  if (!rel) return lit('.');
  return rel.endsWith(id) ? sh`${rel.slice(0, -id.length)}${lit('"$tsc_id"')}` : sh`${rel}`;
}

/** The throwaway join of prime(): a subshell moves itself in, then ends (before the container starts). */
const primeLine = (dir: Sh): Sh => sh`( echo 0 > ${dir}/cgroup.procs ) 2>/dev/null & tsc_prime=$!`;

/** tsc_cg_NAME=<hierarchy>/tscontain/$tsc_id */
const defVar = (name: string, dir: string, id: string) =>
  setVar(`tsc_cg_${name}`, sh`${dir.slice(0, -id.length)}$tsc_id`);

export function v1Driver(root: string, id: string, limits: Limits): CgroupDriver {
  const present = V1_CONTROLLERS.filter((c) => existsSync(join(root, c, 'cgroup.procs')));
  for (const c of needed(limits))
    if (!present.includes(c))
      throw new TscError(
        `the cgroup v1 "${c}" hierarchy is missing under ${root}`,
        `mount it (mount -t cgroup -o ${c} cgroup ${root}/${c}) or drop the limit; see tscontain doctor`,
      );
  const dirs: Record<string, string> = {};
  for (const c of present) dirs[c] = join(root, c, 'tscontain', id);
  const all = [...new Set(Object.values(dirs))];
  const w = (c: string, file: string, v: string | number) => sh`echo ${String(v)} > ${ref(c)}/${file}`;
  return {
    version: 1,
    root,
    dirs,
    all,
    vars: () => present.map((c) => defVar(c, dirs[c], id)),
    mkdirs: () => present.map(ref),
    setLimits() {
      const l: Sh[] = [];
      if (limits.memory !== undefined) l.push(w('memory', 'memory.limit_in_bytes', limits.memory));
      if (limits.pids !== undefined) l.push(w('pids', 'pids.max', limits.pids));
      if (limits.cpus !== undefined)
        l.push(
          w('cpu', 'cpu.cfs_period_us', CFS_PERIOD),
          w('cpu', 'cpu.cfs_quota_us', Math.round(limits.cpus * CFS_PERIOD)),
        );
      if (limits.cpuShares !== undefined) l.push(w('cpu', 'cpu.shares', limits.cpuShares));
      return l;
    },
    join: (pid = lit('0'), from?: string) =>
      present.map((c) => sh`echo ${pid} > ${from ? below(from, dirs[c], id) : ref(c)}/cgroup.procs`),
    prime: () => (present.length ? [primeLine(ref(present.includes('pids') ? 'pids' : present[0]))] : []),
    oomCount: () => (dirs.memory ? readEvent(sh`${ref('memory')}/memory.oom_control`, 'oom_kill') : [lit('tsc_oom=0')]),
    remove: () => removeLines(root, present),
    removeWith: (paths) => removeLines(root, present, paths),
  };
}

export function v2Driver(root: string, id: string, limits: Limits): CgroupDriver {
  let enabled: string[] = [];
  try {
    enabled = readFileSync(join(root, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
  } catch {
    /* none */
  }
  for (const c of needed(limits))
    if (!enabled.includes(c))
      throw new TscError(
        `the cgroup v2 "${c}" controller is not enabled for child cgroups of ${root}`,
        `enable it (echo +${c} > ${root}/cgroup.subtree_control) or drop the limit; see tscontain doctor`,
      );
  const use = ['memory', 'pids', 'cpu'].filter((c) => enabled.includes(c));
  const parent = join(root, 'tscontain');
  const dir = join(root, 'tscontain', id);
  const dirs: Record<string, string> = { unified: dir };
  for (const c of use) dirs[c] = dir;
  const w = (file: string, v: string | number) => sh`echo ${String(v)} > ${ref('unified')}/${file}`;
  return {
    version: 2,
    root,
    dirs,
    all: [dir],
    vars: () => [defVar('unified', dir, id)],
    mkdirs: () => [ref('unified')],
    setLimits() {
      const l: Sh[] = [];
      // enable the controllers for tscontain/*: in our own cgroup, never in the root's
      if (use.length) l.push(sh`echo ${use.map((c) => '+' + c).join(' ')} > ${join(parent, 'cgroup.subtree_control')}`);
      if (limits.memory !== undefined) l.push(w('memory.max', limits.memory));
      if (limits.pids !== undefined) l.push(w('pids.max', limits.pids));
      if (limits.cpus !== undefined) l.push(w('cpu.max', `${Math.round(limits.cpus * CFS_PERIOD)} ${CFS_PERIOD}`));
      if (limits.cpuShares !== undefined) l.push(w('cpu.weight', sharesToWeight(limits.cpuShares)));
      return l;
    },
    join: (pid = lit('0'), from?: string) => [
      sh`echo ${pid} > ${from ? below(from, dir, id) : ref('unified')}/cgroup.procs`,
    ],
    prime: () => [primeLine(ref('unified'))],
    oomCount: () => readEvent(sh`${ref('unified')}/memory.events`, 'oom_kill'),
    remove: () => removeLines(root, ['unified']),
    removeWith: (paths) => removeLines(root, ['unified'], paths),
  };
}

export function cgroupDriver(id: string, limits: Limits, root = cgroupRoot()): CgroupDriver {
  return detectVersion(root) === 2 ? v2Driver(root, id, limits) : v1Driver(root, id, limits);
}
