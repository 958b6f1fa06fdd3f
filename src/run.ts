// `tscontain run`: parse -> spec -> plan -> execute the plan's script. The only thing this file
// does on the host itself is write the plan where its supervisor can read it, and start it.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { cgroupDriver } from './cgroup.js';
import { TscError } from './errors.js';
import { hostTools, which } from './host.js';
import { helpText } from './options.js';
import { roots, runDir } from './paths.js';
import { planRun, type Plan, type PlanContext } from './plan.js';
import { buildRunRequest, type RunSpec } from './spec.js';
import { gc } from './state.js';

export const RUN_USAGE = 'tscontain run [OPTIONS] IMAGE|ROOTFS [CMD [ARG...]]';

export function bin(name: string): string {
  const p = which(name);
  if (!p) throw new TscError(`${name} is not installed`, `install it (apt-get install ${name === 'ip' ? 'iproute2' : name === 'env' ? 'coreutils' : 'util-linux'}); tscontain doctor checks everything`);
  return p;
}

export async function planContext(spec: RunSpec, explain: boolean): Promise<PlanContext> {
  const ctx: PlanContext = { roots: roots(), cgroup: cgroupDriver(spec.id, spec.limits), tools: hostTools(), bin, explain };
  if (explain) {
    const { narrator } = await import('./explain.js');
    ctx.narrate = await narrator();
  }
  return ctx;
}

export function requireRoot(what: string): void {
  if (process.getuid && process.getuid() !== 0)
    throw new TscError(`${what} needs root (namespaces, mounts and cgroups)`, 'run it as root, e.g. with sudo');
}

/** Start the plan's supervisor script in the foreground; forwards signals; resolves to the exit code. */
export function execute(plan: Plan): Promise<number> {
  mkdirSync(plan.run, { recursive: true });
  const file = join(plan.run, 'plan.sh');
  writeFileSync(file, plan.script, { mode: 0o700 });
  // setpriv --pdeathsig: if tscontain is killed, even by SIGKILL, the supervisor gets SIGALRM and kills the container.
  const child = spawn(bin('setpriv'), ['--pdeathsig', 'ALRM', '/bin/sh', file], { stdio: 'inherit' });
  const sigs = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;
  for (const s of sigs) process.on(s, () => { try { child.kill(s); } catch { /* gone */ } });
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new TscError(`cannot start the plan: ${e.message}`)));
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}

export async function runCommand(argv: string[], mode: 'run' | 'plan' = 'run'): Promise<number> {
  const r = roots();
  const req = buildRunRequest(argv, r, process.env);
  if (req.help) {
    process.stdout.write(helpText(mode === 'run' ? RUN_USAGE : RUN_USAGE.replace('run', 'plan')));
    return 0;
  }
  const dry = req.dryRun || mode === 'plan';
  const ctx = await planContext(req.spec, req.explain && !dry);
  const plan = planRun(req.spec, ctx);
  if (dry) {
    process.stdout.write(plan.script);
    return 0;
  }
  requireRoot('tscontain run');
  gc(r); // cheap reconciliation: leftovers of containers whose supervisor died
  if (req.spec.detach) throw new TscError('run -d is not supported yet', 'run in the foreground');
  return execute(plan);
}

export { runDir };
