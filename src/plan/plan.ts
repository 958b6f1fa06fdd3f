// The plan: every host change a container needs, in order, as data. planRun is pure: it reads no
// file and no clock; what it needs to know about the host comes in as PlanContext.
import { dirname, join } from 'node:path';
import { type CgroupDriver, commonDir } from '../kernel/cgroup.js';
import { formatBytes } from '../spec/options.js';
import { containerDir, runDir, type Roots } from '../store/paths.js';
import type { RunSpec } from '../spec/spec.js';
import { devSkeletonStep } from '../kernel/devfs.js';
import { hostnameStep, loopbackStep, loopbackWait, namespaceFlags } from '../kernel/namespaces.js';
import { becomeStep, chrootBecomeStep } from '../kernel/process.js';
import { mountStep, pivotStep, plainPath } from '../kernel/rootfs.js';
import { cgroupLines, planDevices } from '../kernel/devices.js';
import { maskFstab, type MaskFacts } from '../kernel/masks.js';
import { TscError } from '../errors.js';
import { planNetwork, type NetworkPlan } from '../kernel/network/index.js';
import { findPid1Lines, type JoinTarget, sharedEtcBinds } from '../kernel/network/join.js';
import { startRelay } from '../kernel/pty.js';
import type { NetFacts } from '../kernel/network/probe.js';
import { renderScript } from './render.js';
import { joinSh, lit, sh, type Sh } from './sh.js';
import type { Step } from './step.js';
import { capHex } from '../kernel/capabilities.js';

/** Host programs the plan starts, by absolute path (found by src/host/tools.ts). */
export interface HostTools {
  unshare: string;
  setpriv: string;
  /** iproute2's ip, when the container gets its own network namespace */
  ip?: string;
  /** awk and its options, for the log writers of detached containers */
  awk?: { path: string; opts: string };
  /** a host program by name, absolute (system directories first) */
  bin: (name: string) => string;
  /** perl-base's perl, which makes the system calls util-linux has no program for (bpf, seccomp) */
  perl?: string;
  /** the dynamic loader and its library directories (real paths): none for static binaries */
  ldso?: string;
  libPath: string[];
}

export interface PlanContext {
  roots: Roots;
  cgroup: CgroupDriver;
  tools: HostTools;
  /** when the plan is made, for the container's record (ISO 8601) */
  now: string;
  /** which of the paths to mask exist in a fresh proc and sysfs of this kernel */
  masks: MaskFacts;
  /** what networking needs to know about the host (routes, resolvers, the store's subnet) */
  net: NetFacts;
  /** --network container:NAME: that container, resolved */
  join?: JoinTarget;
  /** the container's seccomp filter, compiled (classic BPF as hex) with its seccomp(2) flags; none: unconfined */
  seccomp?: { hex: string; flags: number; instructions: number };
  /** how a step is narrated by --explain (default: its number and title) */
  narrate?: (step: Step, n: number) => string;
  explain?: boolean;
}

/**
 * The phases, in the order they run. host: the supervisor prepares the host. start: it starts
 * PID 1 in new namespaces. prepare: PID 1 makes its world, still on the host's root. switch: the
 * root switch. gate: the supervisor acts on the running PID 1 (by its pid) while PID 1 waits at
 * the start gate; with no such step the gate is not there at all. become: PID 1 becomes the
 * command. exit: the supervisor cleans up after the container ended.
 */
export const PHASES = ['host', 'start', 'prepare', 'switch', 'gate', 'become', 'exit'] as const;
export type PhaseName = (typeof PHASES)[number];

export interface Plan {
  spec: RunSpec;
  /** /var/lib/tscontain/containers/<id> */
  ctr: string;
  /** /run/tscontain/<id> */
  run: string;
  /** the directories of step 1, absolute, in the order they are made (the cgroup's last) */
  dirs: string[];
  cgroup: CgroupDriver;
  phases: Record<PhaseName, Step[]>;
  /** PID 1 waits at the start gate (the gate phase has steps PID 1 must wait for, or -t) */
  gated: boolean;
  /** how the supervisor opens the gate: with -t, the pty's path, else "go" (none when not gated) */
  open: Sh[];
  /** the network, for the container's record (ps, port, inspect) */
  net: NetworkPlan['record'];
  /** what a container that never started leaves: nothing (its directories, cgroup and name go) */
  discard: Sh[];
  script: string;
}

/** sh that writes "PID START-TICKS" of this shell to a file, with builtins only (no program started). */
export const writePidFile = (file: Sh): Sh[] => [
  lit('read -r tsc_stat < /proc/$$/stat; tsc_pidline() { shift 19; echo "$$ $1"; }'),
  sh`tsc_pidline ${lit('${tsc_stat##*) }')} > ${file}`,
];

/**
 * sh that fails unless the process a pid file names ("PID START-TICKS") is alive and not a zombie:
 * state.ts markAlive, with builtins only.
 */
export const checkPidFile = (file: Sh): Sh[] => [
  lit('tsc_p=; tsc_t=; tsc_s='),
  sh`{ read -r tsc_p tsc_t < ${file}; read -r tsc_s < ${lit('"/proc/${tsc_p:-0}/stat"')}; } 2>/dev/null`,
  lit('tsc_alive() { [ $# -ge 20 ] && [ "$1" != Z ] && shift 19 && [ "$1" = "$tsc_t" ]; }'),
  lit('tsc_alive ${tsc_s##*) }'),
];

/** Give the container's name back, if it is still ours (a failed claim never owned it). */
function release(name: string | undefined): Sh[] {
  if (!name) return [];
  return [
    sh`tsc_owner=; read -r tsc_owner < "$tsc_names"/${name} 2>/dev/null`,
    sh`[ "$tsc_owner" != "$tsc_id" ] || rm -f "$tsc_names"/${name}`,
  ];
}

function configJson(spec: RunSpec, now: string, net: NetworkPlan['record']): string {
  const s = spec;
  return JSON.stringify({
    id: s.id,
    name: s.name,
    image: s.image.name,
    rootfs: s.image.rootfs,
    argv: s.argv,
    env: s.env,
    hostname: s.hostname,
    workdir: s.workdir,
    user: s.user,
    network: net.mode,
    net,
    limits: s.limits,
    rm: s.rm,
    detach: s.detach,
    readOnly: s.readOnly,
    pivot: s.pivot,
    created: now,
    // what `tscontain exec` gives a process of the container: the same capabilities and filter
    caps: capHex(s.caps),
    privileged: s.privileged,
    security: s.security,
  });
}

function dirsStep(spec: RunSpec, cg: CgroupDriver, now: string, net: NetworkPlan['record']): Step {
  const cgRefs = cg.mkdirs();
  const names = spec.name ? lit(' "$tsc_names"') : lit('');
  const guard = cgRefs[cgRefs.length - 1];
  const claim = spec.name
    ? [
        lit('# claim the name: set -C (noclobber) creates the file only if it does not exist'),
        sh`( set -C; echo "$tsc_id" > "$tsc_names"/${spec.name} ) 2>/dev/null || {`,
        sh`  echo ${`tscontain: the name "${spec.name}" is already in use by another container: choose another or remove that one (tscontain rm ${spec.name})`} >&2`,
        lit('  exit 1'),
        lit('}'),
      ]
    : [];
  return {
    title: `Create the container's directories and its cgroup tscontain/${spec.id.slice(0, 12)}… (cgroup v${cg.version})`,
    man: 'cgroups(7)',
    lines: [
      lit('# tscontain run has made them already; run on its own, this plan makes them'),
      joinSh(
        [
          sh`[ -d ${guard} ] || mkdir -p "$tsc_run" "$tsc_ctr/upper" "$tsc_ctr/work"`,
          sh`"$tsc_ctr/dev/upper" "$tsc_ctr/dev/work" "$tsc_root"${names}`,
          sh`${cgRefs}`,
        ],
        ' \\\n    ',
      ),
      lit('# who watches this container (pid and start time, /proc/PID/stat field 22): gc cleans up after a dead one'),
      ...writePidFile(lit('"$tsc_run/supervisor"')),
      sh`printf '%s\n' ${configJson(spec, now, net)} > "$tsc_ctr/config.json"`,
      ...claim,
    ],
  };
}

function hostPhase(spec: RunSpec, ctx: PlanContext, net: NetworkPlan): Step[] {
  const cg = ctx.cgroup;
  const steps: Step[] = [];
  if (spec.image.recipe)
    steps.push({
      title: `Build the image ${spec.image.name} with its recipe`,
      man: 'a root filesystem is just a directory tree',
      lines: [sh`[ -d "$tsc_image" ] || sh ${spec.image.recipe} "$tsc_image"`],
    });
  steps.push(dirsStep(spec, cg, ctx.now, net.record));
  const prime = cg.prime();
  if (prime.length)
    steps.push({
      title: "Warm up cgroup migration: a throwaway subshell joins the container's cgroup and ends",
      man: 'cgroups(7), the first migration after a quiet spell waits for an RCU grace period',
      lines: [
        lit("# started now, the kernel's wait runs beside the rest of the setup: PID 1 joins quickly later"),
        ...prime,
      ],
    });
  const missing = spec.volumes.filter((v) => !v.file && !v.exists);
  if (missing.length)
    steps.push({
      title: 'Make the missing host directories of -v (as docker does)',
      man: 'mkdir(1)',
      lines: [sh`mkdir -p ${missing.map((v) => v.host)}`],
    });
  const limits = cg.setLimits();
  if (limits.length) steps.push({ title: `Set the limits: ${limitText(spec)}`, man: 'cgroups(7)', lines: limits });
  steps.push(...devicesSteps(spec, ctx), ...net.host);
  steps.push(devSkeletonStep());
  return steps;
}

/** The device allow-list in the (still empty) cgroup, and the mount points of --device nodes. */
function devicesSteps(spec: RunSpec, ctx: PlanContext): Step[] {
  const cg = ctx.cgroup;
  const dev = planDevices(spec.devices, join(runDir(ctx.roots, spec.id), 'devices'), { privileged: spec.privileged });
  const steps: Step[] = [];
  if (dev.mounts.dirs.length)
    steps.push({
      title: 'Make the mount points of the --device nodes',
      man: 'mount(8)',
      lines: [sh`mkdir -p ${dev.mounts.dirs}`, ...dev.mounts.lines],
    });
  if (cg.version === 1 && !cg.dirs.devices && !spec.privileged)
    throw new TscError(
      'the cgroup v1 "devices" hierarchy is missing: containers could open any device',
      'mount it (mount -t cgroup -o devices cgroup /sys/fs/cgroup/devices); see tscontain doctor',
    );
  const dir = cg.version === 1 ? lit('"$tsc_cg_devices"') : lit('"$tsc_cg_unified"');
  const lines = cgroupLines(dev, { version: cg.version, dir, perl: ctx.tools.perl ?? 'perl' });
  if (lines.length)
    steps.push({
      title: spec.privileged
        ? 'Allow every device (--privileged)'
        : 'Allow only the default devices and --device nodes',
      man: cg.version === 1 ? 'cgroups(7) devices controller' : 'bpf(2) BPF_PROG_TYPE_CGROUP_DEVICE',
      lines,
    });
  return steps;
}

function limitText(s: RunSpec): string {
  const l = s.limits;
  return [
    l.memory !== undefined && `memory ${formatBytes(l.memory)}`,
    l.pids !== undefined && `pids ${l.pids}`,
    l.cpus !== undefined && `cpus ${l.cpus}`,
    l.cpuShares !== undefined && `cpu-shares ${l.cpuShares}`,
  ]
    .filter(Boolean)
    .join(', ');
}

function startStep(spec: RunSpec, t: HostTools, net: NetworkPlan, gated: boolean): Step {
  const ns = namespaceFlags(net.unshareNet);
  const prefix = net.startPrefix.length ? [joinSh(net.startPrefix)] : [];
  const stdin = spec.interactive ? lit('<&5') : lit('</dev/null');
  return {
    title: `Start the container: new ${ns.map((f) => f.slice(2)).join(', ')} namespaces; its first process is PID 1`,
    man: 'unshare(1), namespaces(7), setpriv(1)',
    lines: [
      lit("# setpriv --reset-env: nothing of this shell's environment, a host PATH; --pdeathsig: if this supervisor"),
      lit('# dies, so does unshare. PID 1 runs this script again (tsc_self: where bin/tscontain read it with .)'),
      joinSh(
        [
          ...prefix,
          sh`${t.setpriv} --reset-env --pdeathsig KILL`,
          sh`${t.unshare} ${ns} --fork --kill-child=SIGKILL --propagation private`,
          sh`/bin/sh ${lit('"${tsc_self:-$0}"')} --init ${spec.argv}`,
          sh`${stdin} 5<&- ${gated ? lit('6<&- ') : lit('')}${prefix.length ? lit('8<&- ') : lit('')}2>"$tsc_run/unshare.err" &`,
        ],
        ' \\\n    ',
      ),
      lit('tsc_upid=$!'),
    ],
  };
}

/**
 * -t: the relay (pty-relay.pl, on the host) opens a pty in PID 1's own devpts and tells its path,
 * which goes through the gate to become.pl --tty. No path: the relay failed, the container goes.
 */
function openWithTty(spec: RunSpec, t: HostTools): Sh[] {
  const relay = sh`${t.perl!} -e "$tsc_pty_relay_pl" --`;
  return [
    ...findPid1Lines(),
    lit("# PID 1 is at the gate once its root is its own: its /dev/pts/ptmx is no longer the host's"),
    lit('tsc_ptmx="/proc/$tsc_pid1/root/dev/pts/ptmx"'),
    lit(
      'while [ "$tsc_ptmx" -ef /dev/pts/ptmx ] || [ ! -e "$tsc_ptmx" ]; do kill -0 "$tsc_pid1" 2>/dev/null || break; done',
    ),
    ...startRelay(
      { interactive: spec.interactive, detach: spec.detach },
      relay,
      lit('"$tsc_pid1"'),
      lit('"$tsc_run/pts"'),
      5,
    ),
    lit('if [ -n "$tsc_pts" ]; then echo "$tsc_pts" >&6; else tsc_forward KILL; fi'),
  ];
}

/** Once unshare runs: PID 1's host pid (tsc_pid1), recorded for exec, kill and joining containers. */
function pid1Step(net: NetworkPlan): Step {
  return {
    title: "Find PID 1's host pid and record it with its start time",
    man: 'proc(5) /proc/PID/task/TID/children, /proc/PID/stat',
    lines: [...findPid1Lines(), ...net.afterStart.flatMap((s) => s.lines)],
  };
}

/** Before the root switch: someone will clean up after PID 1 (it reads the supervisor's pid file). */
const supervisedStep: Step = {
  title: 'Stop if the supervisor is gone',
  man: 'proc(5) /proc/PID/stat',
  lines: [
    lit('# the supervisor may have died before setpriv --pdeathsig took effect: then nobody would clean up, so stop;'),
    lit('# if it dies later, PID 1 dies of the death signal (unshare --kill-child)'),
    ...checkPidFile(lit('"$tsc_run/supervisor"')),
  ],
};

/** Before the command: PID 1 is in its cgroup (the subshell works from its own cwd, which pivot_root leaves). */
const joinedStep: Step = {
  title: 'Wait until PID 1 is in its cgroup',
  man: 'cgroups(7), wait(1p)',
  lines: [lit('wait "$tsc_join"   # set -e: a failed join stops the container')],
};

function exitPhase(spec: RunSpec, cg: CgroupDriver, net: NetworkPlan): Step[] {
  if (spec.rm)
    return [
      {
        title: 'Remove the container (--rm) and its cgroup (tsc_discard)',
        man: 'rmdir(2)',
        lines: [lit('tsc_discard')],
      },
    ];
  return [
    ...net.exit,
    { title: "Remove the container's cgroup", man: 'cgroups(7), rmdir(2)', lines: cg.remove() },
    {
      title: 'Record how the container ended (written to a temporary file and renamed: no reader sees half of it)',
      man: 'rename(2)',
      lines: [
        lit(`tsc_now=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)`),
        lit(`printf '{"status":"exited","exitCode":%s,"oomKilled":%s,"finishedAt":"%s"}\\n' \\`),
        lit('  "$tsc_rc" "$tsc_oomkilled" "$tsc_now" > "$tsc_ctr/state.json.tmp"'),
        lit('mv -f "$tsc_ctr/state.json.tmp" "$tsc_ctr/state.json"'),
        lit('rm -rf "$tsc_run"'),
      ],
    },
  ];
}

export function planRun(spec: RunSpec, ctx: PlanContext): Plan {
  const { cgroup: cg, tools } = ctx;
  const ctr = containerDir(ctx.roots, spec.id);
  const run = runDir(ctx.roots, spec.id);
  plainPath(spec.image.rootfs, "the image's root filesystem");
  plainPath(ctr, 'the container directory');
  plainPath(join(ctx.roots.run, 'dev'), 'the /dev skeleton');
  const dirs = [
    run,
    // upper/etc: the container's own /etc files are written there before it starts (every mode)
    ...['upper/etc', 'work', 'dev/upper', 'dev/work', 'rootfs'].map((d) => join(ctr, d)),
    ...(spec.name ? [join(ctx.roots.lib, 'names')] : []),
    ...cg.all,
  ];
  const net = planNetwork({
    id: spec.id,
    name: spec.name,
    hostname: spec.hostname,
    net: spec.net,
    exposed: spec.exposed,
    join: ctx.join,
    facts: ctx.net,
    roots: ctx.roots,
    bin: (n) => ctx.tools.bin(n),
  });
  const ownNet = net.unshareNet;
  const gated = net.gate.length > 0 || spec.tty;
  if (ownNet && !tools.ip) throw new Error('planRun: tools.ip is needed for a network namespace');
  const cgBase = commonDir(cg.all.map((d) => dirname(d)));
  const prepare: Step[] = [
    {
      title: "Join the container's cgroup (in the background, while the mounts are made)",
      man: 'cgroups(7)',
      lines: [
        lit(
          '# a subshell writes $$, the pid of this shell (PID 1), into each cgroup.procs: it moves PID 1, not itself',
        ),
        lit("# from the cgroups' directory, its cwd: pivot_root moves a cwd that is the old root, not this one"),
        sh`cd ${cgBase}`,
        lit('{'),
        ...cg.join(lit('$$'), cgBase).map((l, i, all) => (i < all.length - 1 ? sh`  ${l} &&` : sh`  ${l}`)),
        lit('} & tsc_join=$!'),
      ],
    },
    hostnameStep(spec.hostname),
    ...(net.loopbackByPid1 ? [loopbackStep(tools.ip!)] : []),
    mountStep(
      {
        ...spec,
        masks: maskFstab(ctx.masks, { root: join(ctr, 'rootfs'), privileged: spec.privileged }),
        shared: sharedEtcBinds(ctx.join),
      },
      net.loopbackByPid1 ? [loopbackWait] : [],
    ),
    // before the root switch: it reads a file of the host's
    supervisedStep,
  ];
  const pivot = spec.pivot && tools.ldso;
  if (!tools.perl)
    throw new TscError(
      "perl is missing: it sets the container's capabilities (perl-base)",
      'apt-get install perl-base',
    );
  const become = {
    caps: spec.caps,
    cgroupns: spec.cgroupns,
    noNewPrivileges: spec.security.noNewPrivileges,
    seccomp: ctx.seccomp ? { flags: ctx.seccomp.flags } : undefined,
  };
  const loader = { ldso: tools.ldso ?? '', libPath: tools.libPath };
  const phases: Record<PhaseName, Step[]> = {
    host: hostPhase(spec, ctx, net),
    start: [startStep(spec, tools, net, gated)],
    prepare,
    // the cgroup join had the mounts and the root switch to finish beside them
    switch: pivot ? [pivotStep(), joinedStep] : [joinedStep],
    gate: [pid1Step(net), ...net.gate],
    become: [pivot ? becomeStep(spec, become, loader, tools.perl!) : chrootBecomeStep(spec, become, tools.perl!)],
    exit: exitPhase(spec, cg, net),
  };
  const netExit = net.exit.flatMap((s) => s.lines);
  const discard = [...netExit, ...release(spec.name), ...cg.removeWith([lit('"$tsc_ctr"'), lit('"$tsc_run"')])];
  const open = [
    // --network container: PID 1 is in the joined namespace by now (the gate found it)
    ...(net.startPrefix.length ? [lit('exec 8<&-   # the joined network namespace is held by PID 1 now')] : []),
    ...(!gated
      ? []
      : spec.tty
        ? openWithTty(spec, tools)
        : [lit('echo go >&6   # into the FIFO this shell holds open: it waits there for PID 1')]),
  ];
  const plan: Plan = { spec, ctr, run, dirs, cgroup: cg, phases, gated, open, net: net.record, discard, script: '' };
  plan.script = renderScript(plan, ctx);
  return plan;
}
