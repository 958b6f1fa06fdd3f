// `tscontain run`: parse -> spec -> plan -> execute the plan's script. The only thing this file
// does on the host itself is write the plan where its supervisor can read it, and start it.
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { cgroupDriver } from '../kernel/cgroup.js';
import { EXIT_RUNTIME, exitCode, requireRoot, TscError } from '../errors.js';
import { hostTools } from '../host/tools.js';
import { hostMaskFacts } from '../kernel/masks.js';
import { capHex, capNames } from '../kernel/capabilities.js';
import { hostSeccompArch, SECCOMP_COMPILER_VERSION } from '../kernel/seccomp-target.js';
import type { SeccompProfile } from '../kernel/seccomp.js';
import { helpText } from '../spec/options.js';
import { containerDir, ensureRoots, roots, runDir, type Roots } from '../store/paths.js';
import { readNetFacts } from '../kernel/network/probe.js';
import { netPaths } from '../kernel/network/store.js';
import { type JoinTarget, SHARED_ETC } from '../kernel/network/join.js';
import { planRun, type Plan, type PlanContext } from '../plan/plan.js';
import { buildRunRequest, type RunSpec, withHostname } from '../spec/spec.js';
import {
  findContainer,
  gc,
  inspectContainer,
  nameOwner,
  pidFileText,
  pipePeerMark,
  removeContainer,
  stagingName,
  withLock,
} from '../store/state.js';

/**
 * bin/tscontain sets TSCONTAIN_HANDOFF="3 PID": read the plan's path from fd 3 and exec it, PID being
 * that shell itself (see handOff). It reads our exit code there instead when there is no plan.
 */
const HANDOFF_FD = 3;
const handOffTo = (env: NodeJS.ProcessEnv = process.env): number | undefined => {
  const [fd, pid] = (env.TSCONTAIN_HANDOFF ?? '').split(' ');
  return fd === String(HANDOFF_FD) && Number(pid) > 0 ? Number(pid) : undefined;
};
let handedOff = false;

/** No plan to hand over: bin/tscontain reads our exit code from fd 3 instead (it does not wait for us). */
function tellFrontEnd(code: number): void {
  if (handedOff || handOffTo() === undefined) return;
  try {
    writeSync(HANDOFF_FD, `${code}\n`);
  } catch {
    /* nobody reads it any more */
  }
}

export const RUN_USAGE = 'tscontain run [OPTIONS] IMAGE|ROOTFS [CMD [ARG...]]';

/**
 * The container's seccomp filter: docker's default profile unless --security-opt says otherwise,
 * none with --privileged or seccomp=unconfined. The default profile's filter is kept in the store
 * by arch, kernel and capabilities (compiling it costs more than reading it back).
 */
export async function seccompFilter(
  spec: Pick<RunSpec, 'privileged' | 'security' | 'caps'>,
  r: Roots,
): Promise<PlanContext['seccomp']> {
  const choice = spec.security.seccomp;
  if (spec.privileged || choice.mode === 'unconfined') return undefined;
  const arch = hostSeccompArch();
  if (!arch)
    throw new TscError(`no seccomp system call table for ${process.arch}`, 'use --security-opt seccomp=unconfined');
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const target = { arch, caps: capNames(spec.caps), kernel };
  // the compiler, its syscall tables and docker's profile: only when a filter must be made
  const seccomp = () => import('../kernel/seccomp.js');
  const compile = async (p: SeccompProfile) => {
    const { compileSeccomp, seccompFlags } = await seccomp();
    const bpf = compileSeccomp(p, target);
    return { hex: bpf.toString('hex'), flags: seccompFlags(p), instructions: bpf.length / 8 };
  };
  if (choice.mode === 'file') {
    const { seccompFromOption } = await seccomp();
    return compile(seccompFromOption(choice.path, (f) => readFileSync(f, 'utf8'))!);
  }
  const release = /^(\d+\.\d+)/.exec(kernel)?.[1] ?? kernel;
  const file = join(
    r.lib,
    'seccomp',
    `default-v${SECCOMP_COMPILER_VERSION}-${arch}-${release}-${capHex(spec.caps)}.json`,
  );
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PlanContext['seccomp'];
  } catch {
    /* not made yet */
  }
  const made = await compile((await seccomp()).defaultProfile());
  mkdirSync(join(r.lib, 'seccomp'), { recursive: true });
  writeFileSync(`${file}.${process.pid}`, JSON.stringify(made));
  renameSync(`${file}.${process.pid}`, file);
  return made;
}

/**
 * --network container:NAME: the running container whose network namespace is joined, its hostname,
 * and the /etc files it shares: those of the first container down a container:NAME chain that is
 * still there (docker shares the same files along the chain).
 */
function joinTarget(r: Roots, name: string): JoinTarget {
  const c = findContainer(r, name);
  if (!c.running)
    throw new TscError(`container ${name} is not running`, `--network container:${name} needs it running`);
  let src = c;
  for (let i = 0; i < 8 && src.config.network?.startsWith('container:'); i++) {
    try {
      src = findContainer(r, src.config.network.slice('container:'.length));
    } catch {
      break; // gone: the nearest one's own files
    }
  }
  const etcDir = join(containerDir(r, src.id), 'upper', 'etc');
  const shares = SHARED_ETC.every((f) => existsSync(join(etcDir, f)));
  return { name, runDir: runDir(r, c.id), hostname: c.config.hostname, etcDir: shares ? etcDir : undefined };
}

/** The host facts the planner needs, gathered once. */
export async function planContext(spec: RunSpec, explain: boolean): Promise<PlanContext> {
  const cgroup = cgroupDriver(spec.id, spec.limits);
  const tools = hostTools({
    ip: spec.net.mode.kind === 'none' || spec.net.mode.kind === 'bridge',
    awk: spec.detach,
    perl: true,
  });
  const now = new Date().toISOString();
  const r = roots();
  const masks = spec.privileged || spec.security.systemPaths === 'unconfined' ? {} : hostMaskFacts();
  const net = readNetFacts({
    subnetFile: netPaths(r).subnet,
    listening: spec.net.publish.length > 0 || spec.net.publishAll,
  });
  const mode = spec.net.mode;
  const join = mode.kind === 'container' ? joinTarget(r, mode.name) : undefined;
  const ctx: PlanContext = {
    roots: r,
    cgroup,
    tools,
    now,
    masks,
    net,
    join,
    seccomp: await seccompFilter(spec, r),
    explain,
  };
  if (explain) {
    const { narrator } = await import('../cli/explain.js');
    ctx.narrate = await narrator();
  }
  return ctx;
}

export { requireRoot };

/**
 * Close what our parent let us inherit (fds above 2 without close-on-exec), so it cannot reach the
 * container: runc does the same. Node's own fds all carry O_CLOEXEC.
 */
export function closeInheritedFds(): void {
  let fds: string[] = [];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return;
  }
  for (const f of fds) {
    const fd = Number(f);
    if (fd <= 2) continue;
    try {
      const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & 0o2000000) === 0) closeSync(fd);
    } catch {
      /* the directory's own fd, gone by now */
    }
  }
}

/**
 * Put the plan where its supervisor reads it. The run dir comes first, with `starting` naming the
 * process that owns the container until its supervisor writes its own pid file (owner: "PID
 * START-TICKS"): while it lives gc leaves the container alone, once it is dead gc removes what it
 * left. The dir is made under a name that carries the same mark and renamed into place, so it is
 * never seen without an owner. Then the directories of step 1.
 */
function writePlan(plan: Plan, owner: string): string {
  ensureRoots(roots());
  const stage = join(dirname(plan.run), stagingName(plan.spec.id, owner));
  mkdirSync(stage, { recursive: true });
  writeFileSync(join(stage, 'starting'), owner);
  renameSync(stage, plan.run);
  // step 1's directories, so the plan need not start mkdir; if one cannot be made, the plan's own
  // mkdir -p reports why, and its EXIT trap removes what was made
  try {
    for (const d of plan.dirs) mkdirSync(d, { recursive: true });
  } catch {
    /* see above */
  }
  const file = join(plan.run, 'plan.sh');
  writeFileSync(file, plan.script, { mode: 0o700 });
  return file;
}

/**
 * What writePlan made, removed again: the plan will never run. Its owner cannot read it (it closed
 * the pipe by dying, perhaps not quite dead yet): nobody else knows this container.
 */
function abandon(r: Roots, plan: Plan): void {
  withLock(r, () => removeContainer(r, inspectContainer(r, plan.spec.id)));
}

/**
 * Under bin/tscontain (the sh front end) a foreground run hands its plan back instead of starting
 * it: that shell execs the plan, so the supervisor is the very process the user started (signals
 * sent to tscontain reach it directly) and no Node.js process waits beside the container. That
 * shell, named by its pid in TSCONTAIN_HANDOFF and reading the other end of our fd 3, owns the
 * container from the start: if it is killed now or later, gc finds a dead owner. If it is gone
 * already, nobody would run the plan: nothing is made, and nothing said (nobody listens).
 */
export function handOff(r: Roots, plan: Plan, frontEnd: number): number {
  const owner = pipePeerMark(frontEnd, HANDOFF_FD);
  if (!owner) return EXIT_RUNTIME;
  const file = writePlan(plan, owner);
  try {
    writeSync(HANDOFF_FD, file + '\n');
    handedOff = true;
    closeSync(HANDOFF_FD); // the front end reads to the end of the pipe: it goes on while we exit
  } catch (e) {
    abandon(r, plan);
    if ((e as NodeJS.ErrnoException).code === 'EPIPE') return EXIT_RUNTIME; // the front end died meanwhile
    throw new TscError(`cannot hand the plan over to bin/tscontain on fd ${HANDOFF_FD}: ${(e as Error).message}`);
  }
  return 0;
}

/** Start the plan's supervisor script in the foreground; forwards signals; resolves to the exit code. */
export async function execute(plan: Plan): Promise<number> {
  const { spawn } = process.getBuiltinModule('node:child_process'); // not at the top: a hand-off never needs it (bench/trace.sh)
  closeInheritedFds();
  const file = writePlan(plan, pidFileText());
  // fd 7: a pipe the supervisor watches; when we exit or are killed, even by SIGKILL, it closes and
  // the supervisor kills the container (see --die-with-parent in the plan).
  const child = spawn('/bin/sh', [file, '--die-with-parent'], {
    stdio: ['inherit', 'inherit', 'inherit', 'ignore', 'ignore', 'ignore', 'ignore', 'pipe'],
  });
  const sigs = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;
  for (const s of sigs)
    process.on(s, () => {
      try {
        child.kill(s);
      } catch {
        /* gone */
      }
    });
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new TscError(`cannot start the plan: ${e.message}`)));
    child.on('exit', (code, signal) => resolve(exitCode(code, signal)));
  });
}

export async function runCommand(argv: string[], mode: 'run' | 'plan' = 'run'): Promise<number> {
  if (mode === 'run') process.on('exit', tellFrontEnd);
  const r = roots();
  const req = buildRunRequest(mode === 'plan' ? ['--dry-run', ...argv] : argv, r, process.env);
  if (req.help) {
    process.stdout.write(helpText(mode === 'run' ? RUN_USAGE : RUN_USAGE.replace('run', 'plan')));
    return 0;
  }
  const dry = req.dryRun;
  const ctx = await planContext(req.spec, req.explain && !dry);
  const spec = ctx.join?.hostname ? withHostname(req.spec, ctx.join.hostname) : req.spec;
  const plan = planRun(spec, ctx);
  if (dry) {
    process.stdout.write(plan.script);
    return 0;
  }
  gc(r); // cheap reconciliation: leftovers of containers whose supervisor died
  if (req.spec.name) {
    const owner = nameOwner(r, req.spec.name);
    if (owner)
      throw new TscError(
        `the name "${req.spec.name}" is already in use by container ${owner.slice(0, 12)}`,
        `choose another name or remove that container (tscontain rm ${req.spec.name})`,
      );
  }
  if (req.spec.detach) return executeDetached(plan);
  const frontEnd = handOffTo();
  return frontEnd ? handOff(r, plan, frontEnd) : execute(plan);
}

/** The whole file behind fd, from its start (the fd's own offset may be anywhere). */
function readAll(fd: number): string {
  const b = Buffer.alloc(fstatSync(fd).size);
  readSync(fd, b, 0, b.length, 0);
  return b.toString('utf8');
}

/**
 * run -d: the supervisor is started in its own session with no Node.js process left behind; we
 * wait only until the command was reached (the plan's `started` file), then print the id.
 */
export async function executeDetached(plan: Plan): Promise<number> {
  const { spawn } = process.getBuiltinModule('node:child_process');
  closeInheritedFds();
  const file = writePlan(plan, pidFileText());
  // Kept open here, so they can be read even after a --rm container removed them.
  const started = openSync(join(plan.run, 'started'), 'w+');
  const errFile = join(plan.run, 'supervisor.err');
  const err = openSync(errFile, 'w+');
  const child = spawn('/bin/sh', [file], { detached: true, stdio: ['ignore', 'ignore', err] });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const ok = () => fstatSync(started).size > 0;
  while (!ok() && !exited) await new Promise((res) => setTimeout(res, 5));
  if (ok()) {
    child.unref();
    process.stdout.write(plan.spec.id + '\n');
    return 0;
  }
  const msg = readAll(err).trim() || 'tscontain: the container did not start';
  process.stderr.write(msg + '\n');
  return 125;
}
