// Containers on this host, read from their state directories; and gc: reconcile what is recorded
// with what is running, so that nothing leaks even when tscontain or its supervisor was SIGKILLed.
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupRoot, detectVersion } from './cgroup.js';
import { containerDir, runDir, type Roots } from './paths.js';

export interface ContainerInfo {
  id: string;
  config: { name?: string; image?: string; argv?: string[]; rm?: boolean; created?: string };
  state?: { status: string; exitCode?: number; oomKilled?: boolean; finishedAt?: string };
  /** its supervisor is alive, or it is being started */
  running: boolean;
}

const readJson = (f: string) => { try { return JSON.parse(readFileSync(f, 'utf8')); } catch { return undefined; } };

/** Boot time in seconds since the epoch, for process start times. */
function bootTime(): number {
  try { return Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? 0); } catch { return 0; }
}

/**
 * Is the supervisor that wrote `file` still running? Its pid must exist and the process must have
 * started before the file was written (so a recycled pid does not count).
 */
export function supervisorAlive(file: string): boolean {
  let pid: number, written: number;
  try { pid = Number(readFileSync(file, 'utf8')); written = statSync(file).mtimeMs / 1000; } catch { return false; }
  if (!pid) return false;
  let stat: string;
  try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return false; }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const started = bootTime() + Number(fields[19]) / 100; // field 22: start time in clock ticks (USER_HZ = 100)
  return started <= written + 2;
}

/** A run dir whose supervisor has not written its pid yet is starting, not dead (for a minute). */
function starting(dir: string): boolean {
  try { return !existsSync(join(dir, 'supervisor')) && Date.now() - statSync(dir).mtimeMs < 60_000; } catch { return false; }
}

export function listContainers(r: Roots): ContainerInfo[] {
  const ids = new Set<string>();
  for (const base of [join(r.lib, 'containers'), r.run]) {
    try { for (const d of readdirSync(base)) if (/^[0-9a-f]{64}$/.test(d)) ids.add(d); } catch { /* none */ }
  }
  return [...ids].map((id) => {
    const config = readJson(join(containerDir(r, id), 'config.json')) ?? {};
    const state = readJson(join(containerDir(r, id), 'state.json'));
    const dir = runDir(r, id);
    return { id, config, state, running: supervisorAlive(join(dir, 'supervisor')) || starting(dir) };
  });
}

/** Every cgroup directory tscontain could have made for a container id, v1 or v2. */
export function cgroupDirsFor(id: string, root = cgroupRoot()): string[] {
  if (detectVersion(root) === 2) return [join(root, 'tscontain', id)];
  let hier: string[] = [];
  try { hier = readdirSync(root); } catch { /* none */ }
  return hier.map((h) => join(root, h, 'tscontain', id)).filter((d) => existsSync(d));
}

function killCgroup(dir: string) {
  let pids: string[] = [];
  try { pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean); } catch { return; }
  for (const p of pids) { try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ } }
}

/** rmdir(2) of a cgroup, retried while the kernel finishes reaping its last processes. */
function rmdirRetry(dir: string) {
  for (let i = 0; i < 50 && existsSync(dir); i++) {
    try { rmdirSync(dir); return; } catch { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); }
  }
}

/** Reconcile: containers whose supervisor is gone get their processes killed, cgroups removed and state recorded. */
export function gc(r: Roots, log: (s: string) => void = () => {}): number {
  let cleaned = 0;
  const known = new Set<string>();
  for (const c of listContainers(r)) {
    known.add(c.id);
    if (c.running) continue;
    const dirs = cgroupDirsFor(c.id);
    const hasRun = existsSync(runDir(r, c.id));
    if (!hasRun && dirs.length === 0) continue; // a stopped container, already tidy
    for (const d of dirs) killCgroup(d);
    for (const d of dirs) rmdirRetry(d);
    if (c.config.rm) rmSync(containerDir(r, c.id), { recursive: true, force: true });
    else if (existsSync(containerDir(r, c.id)) && !c.state) {
      const f = join(containerDir(r, c.id), 'state.json');
      writeFileSync(f + '.tmp', JSON.stringify({ status: 'exited', exitCode: 137, oomKilled: false, finishedAt: new Date().toISOString(), note: 'its supervisor died; cleaned up by gc' }) + '\n');
      renameSync(f + '.tmp', f);
    }
    rmSync(runDir(r, c.id), { recursive: true, force: true });
    log(`removed leftovers of container ${c.id.slice(0, 12)}`);
    cleaned++;
  }
  // cgroups of ours with no container record at all (its directories were removed by hand)
  for (const parent of tscontainCgroupParents()) {
    let kids: string[] = [];
    try { kids = readdirSync(parent, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name); } catch { continue; }
    for (const k of kids) {
      if (!/^[0-9a-f]{64}$/.test(k) || known.has(k)) continue;
      const d = join(parent, k);
      killCgroup(d); rmdirRetry(d);
      log(`removed orphaned cgroup ${d}`);
      cleaned++;
    }
  }
  return cleaned;
}

function tscontainCgroupParents(root = cgroupRoot()): string[] {
  if (detectVersion(root) === 2) return [join(root, 'tscontain')];
  let hier: string[] = [];
  try { hier = readdirSync(root); } catch { /* none */ }
  return hier.map((h) => join(root, h, 'tscontain')).filter((d) => existsSync(d));
}
