// Containers on this host, read from their directories: /var/lib/tscontain/containers/<id>
// (config.json, state.json once exited, logs, the overlay layer) and /run/tscontain/<id> (the
// plan, its supervisor's pid, the `started` marker) while it runs. And gc: reconcile what is
// recorded with what is running, so nothing leaks even when tscontain or a supervisor was SIGKILLed.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { cgroupRoot, detectVersion } from '../kernel/cgroup.js';
import { TscError } from '../errors.js';
import { containerDir, runDir, type Roots } from './paths.js';
import type { SecurityOpts } from '../kernel/capabilities.js';
import { gcNetwork } from '../kernel/network/gc.js';
import { hostBridge } from '../kernel/network/index.js';
import { readAllocations } from '../kernel/network/ipam.js';
import { parseNetworkOptions } from '../kernel/network/options.js';
import { readNetFacts } from '../kernel/network/probe.js';
import { netPaths } from '../kernel/network/store.js';

export interface ContainerConfig {
  id?: string;
  name?: string;
  image?: string;
  rootfs?: string;
  argv?: string[];
  env?: string[];
  hostname?: string;
  workdir?: string;
  user?: { uid: number; gid: number };
  network?: string;
  limits?: Record<string, number>;
  net?: Record<string, unknown>;
  rm?: boolean;
  detach?: boolean;
  readOnly?: boolean;
  pivot?: boolean;
  created?: string;
  caps?: string;
  privileged?: boolean;
  security?: SecurityOpts;
}
export interface ContainerState {
  status: string;
  exitCode?: number;
  oomKilled?: boolean;
  finishedAt?: string;
  note?: string;
}

export interface ContainerInfo {
  id: string;
  config: ContainerConfig;
  state?: ContainerState;
  /** its supervisor is alive, or it is being started by a live tscontain */
  running: boolean;
  supervisor?: number;
  /** the live process that is starting it, until its supervisor wrote its pid file */
  starter?: number;
  startedAt?: Date;
}

const ID = /^[0-9a-f]{64}$/;
const readJson = <T>(f: string): T | undefined => {
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as T;
  } catch {
    return undefined;
  }
};

/** Fields 3 on of /proc/PID/stat (after the command name, which may hold spaces and ')'); undefined if gone. */
function statFields(pid: number | 'self'): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** When a process started, in clock ticks since boot (proc(5) /proc/PID/stat field 22); undefined if gone or a zombie. */
export function startTicks(pid: number | 'self'): string | undefined {
  const fields = statFields(pid);
  return !fields || fields[0] === 'Z' ? undefined : fields[19];
}

/** What a pid file holds: "PID START-TICKS", so a recycled pid is never taken for its writer. */
export const pidFileText = (pid = process.pid) => `${pid} ${startTicks(pid === process.pid ? 'self' : pid)}`;

/**
 * The mark ("PID START-TICKS") of the process at the other end of our pipe on fd, e.g. the
 * bin/tscontain shell that reads the plan's path from it: undefined unless pid holds that very pipe.
 * Holding it after its start time was read proves the start time is its own and not that of a
 * process that took over its pid; and it is the one that reads what we write.
 */
export function pipePeerMark(pid: number, fd: number): string | undefined {
  let pipe: string;
  try {
    pipe = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
  const ticks = startTicks(pid);
  if (!ticks || !pipe.startsWith('pipe:')) return undefined;
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    /* gone */
  }
  const holds = fds.some((f) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${f}`) === pipe;
    } catch {
      return false;
    }
  });
  return holds && startTicks(pid) === ticks ? `${pid} ${ticks}` : undefined;
}

/**
 * THE ownership check, for every mark tscontain writes (the supervisor's pid file, `starting`, a
 * staging directory's name, the lock): is the process named by "PID START-TICKS" alive, and the
 * one that wrote it? Like runc, it is identified by pid and start time, both counted by the kernel;
 * never by the wall clock, which can be stepped (a forward step once made every running container
 * look dead). The plan's container_init has the same check in sh (plan.ts checkPidFile).
 */
export function markAlive(mark: string): number | undefined {
  const [pid, ticks] = mark.trim().split(/\s+/);
  return Number(pid) > 0 && ticks && startTicks(Number(pid)) === ticks ? Number(pid) : undefined;
}

/** markAlive of the mark in a pid file; undefined if there is none. */
export function writerAlive(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return markAlive(text);
}

/** A run dir made in the last few seconds is being started (its pid files may not be written yet). */
function justMade(dir: string): boolean {
  try {
    const st = statSync(dir);
    return Date.now() - (st.birthtimeMs || st.mtimeMs) < 5000;
  } catch {
    return false;
  }
}

/**
 * tscontain makes a container's run dir under a staging name that carries its owner's mark, writes
 * `starting` in it, then renames it: a run dir is never seen without its owner.
 */
export const stagingName = (id: string, mark: string) => `.new-${id}-${mark.replace(' ', '-')}`;
const stagingMark = (name: string) => name.split('-').slice(2).join(' ');

export function containerIds(r: Roots): string[] {
  const ids = new Set<string>();
  for (const base of [join(r.lib, 'containers'), r.run]) {
    try {
      for (const d of readdirSync(base)) if (ID.test(d)) ids.add(d);
    } catch {
      /* none yet */
    }
  }
  return [...ids];
}

export function inspectContainer(r: Roots, id: string): ContainerInfo {
  const dir = runDir(r, id);
  const config = readJson<ContainerConfig>(join(containerDir(r, id), 'config.json')) ?? {};
  const state = readJson<ContainerState>(join(containerDir(r, id), 'state.json'));
  const content = (f: string) => {
    try {
      return readFileSync(join(dir, f), 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  // Who owns it: its supervisor once that wrote its pid file; until then the process that started it
  // (`starting`: the bin/tscontain shell that will run the plan, or Node.js that spawns it).
  const sup = content('supervisor');
  const supervisor = sup ? markAlive(sup) : undefined;
  const start = sup ? undefined : content('starting');
  const starter = start ? markAlive(start) : undefined;
  // no mark at all in a run dir made seconds ago: a plan run on its own (sh plan.sh) is starting
  const unmarked = !sup && start === undefined && justMade(dir);
  const running = !!supervisor || (!state && (!!starter || unmarked));
  let startedAt: Date | undefined;
  try {
    const st = statSync(join(dir, 'started'));
    if (st.size > 0) startedAt = st.mtime;
  } catch {
    /* not started */
  }
  return { id, config, state, running, supervisor, starter, startedAt };
}

export function listContainers(r: Roots): ContainerInfo[] {
  return containerIds(r)
    .map((id) => inspectContainer(r, id))
    .sort((a, b) => (b.config.created ?? '').localeCompare(a.config.created ?? ''));
}

export const namesDir = (r: Roots) => join(r.lib, 'names');

/** The id of the container that holds a name, if that container still exists. */
export function nameOwner(r: Roots, name: string): string | undefined {
  let id: string;
  try {
    id = readFileSync(join(namesDir(r), name), 'utf8').trim();
  } catch {
    return undefined;
  }
  return ID.test(id) && (existsSync(containerDir(r, id)) || existsSync(runDir(r, id))) ? id : undefined;
}

/** Resolve a container by name, full id or unique id prefix. */
export function findContainer(r: Roots, ref: string): ContainerInfo {
  const byName = nameOwner(r, ref);
  if (byName) return inspectContainer(r, byName);
  if (!/^[0-9a-f]+$/.test(ref)) throw new TscError(`no such container: ${ref}`, 'see tscontain ps -a');
  const hits = containerIds(r).filter((id) => id.startsWith(ref));
  if (hits.length > 1)
    throw new TscError(
      `container id prefix "${ref}" is ambiguous (${hits.length} containers)`,
      'give more characters of the id, or the name',
    );
  if (hits.length === 0) throw new TscError(`no such container: ${ref}`, 'see tscontain ps -a');
  return inspectContainer(r, hits[0]);
}

/** The host pid of the container's PID 1: the child of unshare, the supervisor's child. */
export function pid1(c: ContainerInfo): number | undefined {
  if (!c.supervisor) return undefined;
  const kids = (p: number) => {
    try {
      return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  for (const k of kids(c.supervisor)) {
    let argv0 = '';
    try {
      argv0 = readFileSync(`/proc/${k}/cmdline`, 'utf8').split('\0')[0];
    } catch {
      continue;
    }
    if (argv0.endsWith('unshare')) return kids(k)[0];
  }
  return undefined;
}

/** Every cgroup directory tscontain could have made for a container id, v1 or v2. */
export function cgroupDirsFor(id: string, root = cgroupRoot()): string[] {
  return tscontainCgroupParents(root)
    .map((p) => join(p, id))
    .filter((d) => existsSync(d));
}

function tscontainCgroupParents(root = cgroupRoot()): string[] {
  if (detectVersion(root) === 2) return [join(root, 'tscontain')].filter((d) => existsSync(d));
  let hier: string[] = [];
  try {
    hier = readdirSync(root);
  } catch {
    /* none */
  }
  return hier.map((h) => join(root, h, 'tscontain')).filter((d) => existsSync(d));
}

function killCgroup(dir: string) {
  let pids: string[] = [];
  try {
    pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return;
  }
  for (const p of pids) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Kill what is left in a container's cgroups, then remove them; false if one is still there. */
function removeCgroups(id: string): boolean {
  const dirs = cgroupDirsFor(id);
  for (const d of dirs) killCgroup(d);
  return dirs.map(rmdirRetry).every(Boolean);
}

/** rmdir(2) of a cgroup, retried for a second while the kernel finishes reaping its last processes. */
function rmdirRetry(dir: string): boolean {
  for (let i = 0; i < 50; i++) {
    if (!existsSync(dir)) return true;
    try {
      rmdirSync(dir);
      return true;
    } catch {
      pause(20);
    }
  }
  return !existsSync(dir);
}

/**
 * A lock for commands that change containers they do not supervise (gc, rm): a file created with
 * O_EXCL (atomic) holding the owner's pid. A lock whose owner is dead is taken over; one whose
 * pid is not written yet is respected for a second.
 */
/** Is the lock's holder gone (a dead mark, or no mark written for a second)? undefined: no lock. */
function lockStale(lock: string): boolean | undefined {
  try {
    const owner = readFileSync(lock, 'utf8');
    return owner ? !markAlive(owner) : Date.now() - statSync(lock).mtimeMs > 1000;
  } catch {
    return undefined;
  }
}

export function withLock<T>(r: Roots, fn: () => T): T {
  const lock = join(r.run, '.lock');
  mkdirSync(r.run, { recursive: true });
  for (let i = 0; ; i++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, pidFileText());
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const stale = lockStale(lock);
      if (stale === undefined) continue; // released meanwhile
      if (stale) {
        try {
          unlinkSync(lock);
        } catch {
          /* someone else did */
        }
        continue;
      }
      if (i > 3000)
        throw new TscError(
          `${lock} is held by another tscontain`,
          'wait for it, or remove the file if no tscontain runs',
        );
      pause(10);
    }
  }
  try {
    return fn();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      /* gone */
    }
  }
}

/** Remove a stopped container: renamed away first (atomic), so a crash leaves no half-container. */
export function removeContainer(r: Roots, c: ContainerInfo): void {
  const gone = join(r.lib, 'containers', `.removing-${c.id}`);
  try {
    renameSync(containerDir(r, c.id), gone);
  } catch {
    /* only a run dir */
  }
  if (c.config.name && nameOwner(r, c.config.name) === undefined)
    rmSync(join(namesDir(r), c.config.name), { force: true });
  rmSync(runDir(r, c.id), { recursive: true, force: true });
  rmSync(gone, { recursive: true, force: true });
  removeCgroups(c.id); // nothing of it may outlive it
}

/** Reconcile: containers whose supervisor is gone get their processes killed, cgroups removed and state recorded. */
export function gc(r: Roots, log: (s: string) => void = () => {}): number {
  // the cheap common case, nothing to do, costs a few readdirs however many containers there are
  // (this runs before every command)
  const list = (d: string) => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  };
  const stored = list(join(r.lib, 'containers'));
  const runEntries = list(r.run);
  const running = new Set(runEntries.filter((d) => ID.test(d)));
  // a run dir being made whose owner died before it was renamed into place
  const staged = runEntries.filter((d) => d.startsWith('.new-') && !markAlive(stagingMark(d)));
  // the /dev skeleton half made by a container that is gone (its plan makes it as dev.ID, then renames it)
  const devs = runEntries.filter((d) => /^dev\.[0-9a-f]{64}$/.test(d));
  const ids = [...new Set([...stored.filter((d) => ID.test(d)), ...running])];
  const removing = stored.filter((d) => d.startsWith('.removing-'));
  const cgroups = tscontainCgroupParents().flatMap((p) =>
    list(p)
      .filter((k) => ID.test(k))
      .map((k) => ({ id: k, dir: join(p, k) })),
  );
  const known = new Set(ids);
  const orphanCgroups = cgroups.filter((c) => !known.has(c.id)).map((c) => c.dir);
  const withCgroup = new Set(cgroups.map((c) => c.id));
  const suspects = ids.filter((id) => running.has(id) || withCgroup.has(id));
  // addresses (and published ports) of containers that died without their exit steps
  const addrs = readAllocations(netPaths(r).addresses);
  // (by the rule freeDeadAddresses applies: another store's container, its run dir there, is alive)
  const netStale = addrs.some((a) => a.id !== '' && !running.has(a.id) && !(a.runDir && existsSync(a.runDir)));
  // the lock of a tscontain killed while it held it (withLock removes it)
  const staleLock = runEntries.includes('.lock') && lockStale(join(r.run, '.lock')) === true;
  if (
    !suspects.length &&
    !removing.length &&
    !orphanCgroups.length &&
    !staged.length &&
    !devs.length &&
    !netStale &&
    !staleLock
  )
    return 0;
  return withLock(r, () => {
    let cleaned = 0;
    for (const id of suspects) {
      const c = inspectContainer(r, id);
      if (c.running) continue;
      // a cgroup still busy: its record stays, so the next command's gc tries again (once the
      // record is gone the cgroup would be an orphan, which is left alone for a minute)
      if (!removeCgroups(id)) {
        log(`container ${id.slice(0, 12)}: its cgroup is still busy; the next command retries`);
        continue;
      }
      // --rm, or never got as far as its config (tscontain made its directories, then died before
      // the plan ran): nothing of it is kept
      if (c.config.rm || !c.config.id) removeContainer(r, c);
      else {
        if (existsSync(containerDir(r, id)) && !c.state) {
          const f = join(containerDir(r, id), 'state.json');
          writeFileSync(
            f + '.tmp',
            JSON.stringify({
              status: 'exited',
              exitCode: 137,
              oomKilled: false,
              finishedAt: new Date().toISOString(),
              note: 'its supervisor died; cleaned up by tscontain gc',
            }) + '\n',
          );
          renameSync(f + '.tmp', f);
        }
        rmSync(runDir(r, id), { recursive: true, force: true });
      }
      log(`removed leftovers of container ${id.slice(0, 12)}`);
      cleaned++;
    }
    for (const d of devs) {
      if (existsSync(runDir(r, d.slice(4)))) continue; // its container lives
      rmSync(join(r.run, d), { recursive: true, force: true });
      log(`removed the unfinished /dev skeleton of ${d.slice(4, 16)}`);
      cleaned++;
    }
    for (const d of staged) {
      rmSync(join(r.run, d), { recursive: true, force: true });
      log(`removed the unfinished ${d.slice(5, 17)}`);
      cleaned++;
    }
    for (const d of removing) {
      rmSync(join(r.lib, 'containers', d), { recursive: true, force: true });
      log(`finished removing ${d.slice(10, 22)}`);
      cleaned++;
    }
    // A cgroup of ours that no container here knows: another store's (TSCONTAIN_ROOT) container may
    // own it, so only an empty one that has been there for a minute is removed; no process is killed.
    for (const d of orphanCgroups) {
      let empty = false,
        old = false;
      try {
        empty = readFileSync(join(d, 'cgroup.procs'), 'utf8').trim() === '';
        old = Date.now() - statSync(d).mtimeMs > 60_000;
      } catch {
        continue;
      }
      if (!empty || !old) continue;
      try {
        rmdirSync(d);
        log(`removed orphaned cgroup ${d}`);
        cleaned++;
      } catch {
        /* busy */
      }
    }
    // networking: with the dead containers' run dirs gone, what still names one of them goes too
    if (addrs.length) {
      const live = new Set(list(r.run).filter((d) => ID.test(d)));
      try {
        const facts = readNetFacts({ subnetFile: netPaths(r).subnet });
        const res = gcNetwork(hostBridge({ facts, roots: r, net: parseNetworkOptions({}) }), live);
        for (const a of res.freed) {
          log(`freed address ${a}`);
          cleaned++;
        }
      } catch {
        /* another store's bridge: its own gc frees its addresses */
      }
    }
    // names whose container is gone
    try {
      for (const n of readdirSync(namesDir(r))) if (!nameOwner(r, n)) rmSync(join(namesDir(r), n), { force: true });
    } catch {
      /* none */
    }
    return cleaned;
  });
}
