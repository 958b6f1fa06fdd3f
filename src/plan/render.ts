// The plan as the POSIX sh script that `tscontain run` executes and `tscontain plan` prints. Only
// two kinds of text reach it: Sh fragments (src/plan/sh.ts: data only ever quoted) and inert
// text in comments and narration. The supervisor's fixed part is src/plan/supervisor.sh.
import { join } from 'node:path';
import { kernel_init_pl_code, kernel_pty_relay_pl_code, plan_supervisor_sh as SUPERVISOR } from '../gen/assets.js';
import { formatBytes } from '../spec/options.js';
import { BECOME_PL } from '../kernel/capabilities.js';
import { comment, inert, lit, q, setVar, sh, showArgv, type Sh } from './sh.js';
import type { Step } from './step.js';
import { PHASES, type PhaseName, type Plan, type PlanContext } from './plan.js';

import { SYSTEM_PATH as HOST_PATH } from '../store/paths.js';

/** The steps of every phase, numbered in the order they run. */
export function numbered(p: Plan): Map<PhaseName, { step: Step; n: number }[]> {
  let n = 1;
  return new Map(PHASES.map((ph) => [ph, p.phases[ph].map((step) => ({ step, n: n++ }))]));
}

function renderStep(step: Step, n: number, ctx: PlanContext, indent: string): string {
  const shown = { ...step, title: inert(step.title), man: inert(step.man) };
  const say = ctx.narrate ? ctx.narrate(shown, n) : `${n}. ${shown.title}`;
  const lines: Sh[] = [comment(`${n}. ${step.title}`), comment(`   ${step.man}`), sh`say ${say}`, ...step.lines];
  // a fragment is indented at its start only: a newline inside it may be inside quoted data
  return lines.map((l) => indent + l.text).join('\n');
}

function fn(name: string, about: string, body: string[]): string {
  return [`# ---- ${about} ----`, `${name}() {`, ...(body.length ? body : ['  :']), '}', ''].join('\n');
}

function steps(p: Plan, ctx: PlanContext, phase: PhaseName, indent = '  '): string[] {
  return numbered(p)
    .get(phase)!
    .map(({ step, n }) => renderStep(step, n, ctx, indent));
}

/** The container's side of the start gate: it waits for one line from the supervisor. */
const GATE = {
  // the supervisor holds it open (fd 6) from the start: what it writes waits there for PID 1
  make: lit('mkfifo "$tsc_run/gate"; exec 6<>"$tsc_run/gate"'),
  open: lit('exec 6<>"$tsc_run/gate"   # opened before the root switch; read after it'),
  wait: lit('read -r tsc_go <&6; exec 6<&-   # the start gate: the supervisor says go'),
};

function header(p: Plan, ctx: PlanContext): string {
  const s = p.spec;
  const vars: Sh[] = [
    setVar('tsc_id', s.id),
    setVar('tsc_short', s.id.slice(0, 12)),
    setVar('tsc_image', s.image.rootfs),
    setVar('tsc_ctr', p.ctr),
    setVar('tsc_run', p.run),
    lit('tsc_root="$tsc_ctr/rootfs"'),
    setVar('tsc_dev', join(ctx.roots.run, 'dev')),
    setVar('tsc_names', join(ctx.roots.lib, 'names')),
    setVar('tsc_detach', s.detach ? '1' : ''),
    // foreground without -t: stdout and stderr (and stdin with -i) reach the container as pipes
    setVar('tsc_pipes', s.detach || s.tty ? '' : s.interactive ? 'io' : 'o'),
    setVar('tsc_explain', ctx.explain ? '1' : ''),
    setVar('tsc_become_pl', BECOME_PL),
    ...(s.init ? [setVar('tsc_init_pl', kernel_init_pl_code)] : []),
    ...(s.tty ? [setVar('tsc_pty_relay_pl', kernel_pty_relay_pl_code)] : []),
    ...(ctx.seccomp ? [setVar('tsc_seccomp_bpf', ctx.seccomp.hex)] : []),
    setVar('tsc_memory_limit', s.limits.memory !== undefined ? formatBytes(s.limits.memory) : 'none'),
    ...(s.detach && ctx.tools.awk
      ? [
          setVar('tsc_awk', ctx.tools.awk.path),
          setVar('tsc_awk_opts', ctx.tools.awk.opts),
          setVar('tsc_log_cap', Math.floor(s.logMaxSize / 2)),
        ]
      : []),
    ...p.cgroup.vars(),
  ];
  return [
    '#!/bin/sh',
    comment(`tscontain plan for container ${s.id.slice(0, 12)} (image ${s.image.name})`).text,
    comment(`command: ${showArgv(s.argv)}`).text,
    ...(s.privileged
      ? [
          '# --privileged: this container is NOT isolated: every capability, every device, no seccomp filter,',
          "# no masked kernel paths. Its root is the host's root.",
        ]
      : []),
    '#',
    '# This is exactly what `tscontain run` executes. Save it and run it as root: sh plan.sh',
    '# It needs only util-linux, coreutils, findutils and iproute2 (no Node.js), and cleans up after itself.',
    '# Each step names the kernel feature behind it and its manual page (man 7 namespaces, ...).',
    '# shellcheck disable=SC2016,SC2034',
    'set -u',
    ...vars.map((v) => v.text),
    '',
  ].join('\n');
}

export function renderScript(p: Plan, ctx: PlanContext): string {
  const gated = p.gated;
  const lines = (xs: Sh[]) => xs.map((l) => `  ${l.text}`);
  const init = [
    '  set -e',
    `  PATH=${q(HOST_PATH)}`,
    '  exec 4>"$tsc_run/started"   # tells the supervisor that the command was reached',
    ...(gated ? lines([GATE.open]) : []),
    '',
    ...steps(p, ctx, 'prepare'),
    ...steps(p, ctx, 'switch'),
    ...(gated ? lines([GATE.wait]) : []),
    '  tsc_become "$@"',
  ];
  const host = steps(p, ctx, 'host');
  return [
    header(p, ctx),
    fn('tsc_host_setup', 'on the host', gated ? [...host, ...lines([GATE.make])] : host),
    fn('tsc_start_container', 'the container starts', steps(p, ctx, 'start')),
    fn('tsc_container_init', "in the new namespaces: PID 1 prepares its world, still on the host's root", init),
    fn(
      'tsc_at_gate',
      gated ? 'on the host, while PID 1 waits at the start gate' : 'on the host, once PID 1 runs',
      steps(p, ctx, 'gate'),
    ),
    fn('tsc_open_gate', 'the supervisor lets PID 1 go on', lines(p.open)),
    fn('tsc_become', 'PID 1 becomes the command', steps(p, ctx, 'become')),
    fn('tsc_cleanup', 'after the container ended', steps(p, ctx, 'exit')),
    fn('tsc_discard', 'a container that never started leaves nothing behind, --rm or not', lines(p.discard)),
    fn('tsc_oom_count', 'how many processes the kernel killed for lack of memory: tsc_oom', lines(p.cgroup.oomCount())),
    SUPERVISOR,
  ].join('\n');
}
