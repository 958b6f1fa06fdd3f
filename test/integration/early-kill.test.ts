// `tscontain run` killed at any moment of its start (SIGKILL: an OOM-killed shell, a cancelled CI
// job; SIGTERM: a polite stop) leaves nothing behind once gc ran: no mount, cgroup, run dir,
// container dir, name or process; and it prints no stack trace or raw errno text on the way.
// The front end is killed after a sweep of delays (fractions of a measured start) and at the first
// sight of each program the start runs (found by watching the process tree in /proc), on the
// hand-off path (bin/tscontain runs the plan itself) and on the Node.js path.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cgroupDirsFor } from '../../src/store/state.js';
import { isRoot, killStarted, NODE_BIN, privateStore, removeStoreContainers, start, tsc } from './helpers.js';
import { SLOWDOWN } from '../fixtures/poll.js';

const it = isRoot ? test.serial : test.serial.skip;
test.after.always(async () => {
  await killStarted();
  await removeStoreContainers();
});

const ID = /^[0-9a-f]{64}$/;
const DELAYS = 8; // kills spread over one measured start
const SETTLE_MS = 30_000; // a deadline for what must happen quickly: generous for a slow machine
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

const read = (f: string) => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
};
const list = (d: string) => {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
};

/** Every process below pid, found through /proc/PID/task/PID/children. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    const kids = (read(`/proc/${p}/task/${p}/children`) ?? '').split(' ').filter(Boolean).map(Number);
    out.push(...kids);
    todo.push(...kids);
  }
  return out;
}

/**
 * The Node.js process planning for the front end `front` (bin/tscontain starts it in the background,
 * so it need not stay front's descendant): named by its TSCONTAIN_HANDOFF; undefined once it ended.
 */
function planner(front: number): number | undefined {
  for (const d of list('/proc')) {
    if (!/^[0-9]+$/.test(d) || /\) Z /.test(read(`/proc/${d}/stat`) ?? ') Z ')) continue;
    if ((read(`/proc/${d}/environ`) ?? '').split('\0').includes(`TSCONTAIN_HANDOFF=3 ${front}`)) return Number(d);
  }
  return undefined;
}

/** What a process is, for the sweep: its program's name ("init" for the plan run as PID 1). */
function label(pid: number): string | undefined {
  const argv = read(`/proc/${pid}/cmdline`)?.split('\0');
  if (!argv?.[0]) return undefined;
  const b = basename(argv[0]);
  return b === 'sh' || b === 'dash' ? (argv.includes('--init') ? 'init' : 'sh') : b;
}

/** Processes of a store: its tscontain (environment), the plan's programs (a path in the store), the command. */
function processesOf(root: string, token?: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    const cmd = read(`/proc/${d}/cmdline`);
    if (cmd === undefined) continue;
    const mine =
      cmd.includes(root) ||
      (token !== undefined && cmd.endsWith(`\0${token}\0`)) ||
      (read(`/proc/${d}/environ`) ?? '').includes(`TSCONTAIN_ROOT=${root}\0`);
    if (mine) out.push(`${d}: ${cmd.split('\0').join(' ').trim()}`);
  }
  return out;
}

/** Container ids the store holds now (a staging run dir is named .new-ID-...). */
function idsIn(root: string): string[] {
  return [...list(join(root, 'run')), ...list(join(root, 'lib', 'containers'))]
    .map((d) => d.replace(/^\.new-/, '').slice(0, 64))
    .filter((d) => ID.test(d));
}

type Trigger = { after: number } | { program: string; later: string[] };
interface Batch {
  node: boolean;
  signal: 'SIGKILL' | 'SIGTERM';
  env: NodeJS.ProcessEnv;
  root: string;
  ids: Set<string>;
  n: number;
  notes: string[];
  noisy: string[];
}

/**
 * One start, killed at its trigger (or as soon as it ran past it), then waited for until no process
 * of it is left. A SIGTERM that reached a running PID 1 without a handler is ignored (as with
 * docker): then the front end is killed with SIGKILL, as a user would.
 */
let starts = 0;

async function killedStart(t: ExecutionContext, b: Batch, trigger: Trigger): Promise<{ seen: string[]; ms: number }> {
  const i = b.n++;
  const token = String(3_000_000 + (process.pid % 1000) * 1000 + starts++); // sleep's argument: unique to this start
  const s = start(['run', '--rm', '--name', `early-${i}`, 'busybox', 'sleep', token], { env: b.env, node: b.node });
  const front = s.child.pid!;
  let exited = false;
  s.child.on('exit', () => {
    exited = true;
  });
  const seen: string[] = [];
  const look = () => {
    if (!b.node && !seen.includes('node') && planner(front)) seen.push('node');
    for (const p of descendants(front)) {
      const l = label(p);
      if (l && !seen.includes(l)) seen.push(l);
    }
    for (const id of idsIn(b.root)) b.ids.add(id);
  };
  const t0 = Date.now();
  const running = () => seen.includes('sleep');
  for (;;) {
    look();
    if (exited || running()) break; // ran past any trigger
    const due =
      'after' in trigger
        ? Date.now() - t0 >= trigger.after
        : [trigger.program, ...trigger.later].some((l) => seen.includes(l));
    if (due) break;
    if (Date.now() - t0 > SETTLE_MS) {
      t.fail(`case ${i}: no start after ${SETTLE_MS} ms`);
      break;
    }
    await pause(1); // a timer, not a busy loop: the start being watched needs the CPU
  }
  const ms = Date.now() - t0;
  try {
    process.kill(front, b.signal);
  } catch {
    /* ended by itself: it must not have */
  }
  const end = Date.now() + SETTLE_MS;
  for (let killed = b.signal === 'SIGKILL'; ; await pause(20)) {
    look();
    const left = processesOf(b.root, token);
    if (exited && !left.length) break;
    if (!killed && !exited && pidsWithCommand(front, token)) {
      process.kill(front, 'SIGKILL');
      killed = true;
    }
    if (Date.now() > end) {
      // ours: they must not outlive the test
      for (const p of left) {
        try {
          process.kill(Number(p.split(':')[0]), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      t.fail(`case ${i} (${JSON.stringify(trigger)}): processes left: ${left.join('; ')}`);
      break;
    }
  }
  const r = await s.done;
  const text = r.stderr.trim();
  if (/EPIPE|errno|Error\b|^\s+at /m.test(text) || text.split('\n').length > 1) b.noisy.push(`case ${i}: ${text}`);
  const at = 'after' in trigger ? `${trigger.after} ms` : trigger.program;
  b.notes.push(`${at}: killed after ${ms} ms, seen ${seen.join(' ')}`);
  return { seen, ms };
}

/** The container's command runs (a PID 1 that ignored SIGTERM). */
const pidsWithCommand = (front: number, token: string) =>
  descendants(front).some((p) => read(`/proc/${p}/cmdline`) === `sleep\0${token}\0`);

async function sweep(t: ExecutionContext, node: boolean, signal: Batch['signal']) {
  const env = privateStore();
  const b: Batch = { node, signal, env, root: env.TSCONTAIN_ROOT!, ids: new Set(), n: 0, notes: [], noisy: [] };
  // the first start of a store makes the /dev skeleton (cp, ln, mv): killed while it does
  await killedStart(t, b, { program: 'cp', later: ['ln', 'mv', 'env', 'setpriv', 'unshare', 'init', 'sleep'] });
  // then a start like every later one is measured
  t.is((await tsc(['run', '--rm', 'busybox', 'true'], { env })).code, 0);
  // measured: the programs of a start, in order, and its length until the command runs
  const cal = await killedStart(t, b, { program: 'sleep', later: [] });
  t.true(cal.seen.includes('sleep'), `the command was reached: ${cal.seen.join(' ')}`);
  for (let k = 0; k < DELAYS; k++) await killedStart(t, b, { after: Math.round((cal.ms * k) / DELAYS) });
  const programs = cal.seen.filter((l) => l !== 'sleep');
  for (const [j, p] of programs.entries()) await killedStart(t, b, { program: p, later: cal.seen.slice(j + 1) });

  const gc = await tsc(['gc'], { env });
  t.is(gc.code, 0, gc.stderr);
  const root = b.root;
  t.deepEqual(
    list(join(root, 'run')).filter((d) => d !== 'dev'),
    [],
    'no run dir (nor one being made)',
  );
  t.deepEqual(list(join(root, 'lib', 'containers')), [], 'no container dir');
  t.deepEqual(list(join(root, 'lib', 'names')), [], 'no name');
  t.deepEqual(
    [...b.ids].flatMap((id) => cgroupDirsFor(id)),
    [],
    'no cgroup',
  );
  t.deepEqual(
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(root)),
    [],
    'no mount',
  );
  t.deepEqual(processesOf(root), [], 'no process');
  const ps = await tsc(['ps', '-a', '--format', 'json'], { env });
  t.deepEqual(JSON.parse(ps.stdout), [], 'ps -a shows nothing');
  t.true(b.ids.size > 0, 'the sweep made containers');
  t.deepEqual(b.noisy, [], 'what the killed tscontain printed: silence or one line, no stack trace or raw errno text');
  t.log(`${b.n} starts, ${b.ids.size} containers made; ${b.notes.join('; ')}`);
}

// the v2 guest (TSCONTAIN_TEST_LEAN: its time is short) sweeps the hand-off path only: the Node.js path
// runs the same plan under another owner, and the native suite sweeps both
for (const node of [false, true])
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    const path = node ? 'Node.js path' : 'hand-off path';
    (node && process.env.TSCONTAIN_TEST_LEAN ? test.skip : it)(
      `${path}: run killed by ${signal} at any moment of its start leaves nothing after gc`,
      (t) => sweep(t, node, signal),
    );
  }

/** Nothing of a store's containers is left (the /dev skeleton is shared by all of them). */
function storeIsEmpty(t: ExecutionContext, root: string, what: string) {
  t.deepEqual(
    list(join(root, 'run')).filter((d) => d !== 'dev'),
    [],
    `${what}: no run dir`,
  );
  t.deepEqual(list(join(root, 'lib', 'containers')), [], `${what}: no container dir`);
}

/** Node.js as bin/tscontain starts it for a hand-off, fd 3 a pipe to us, which we close at once. */
function handOffTo(frontEnd: number, env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const c = spawn(process.execPath, [NODE_BIN, 'run', '--rm', '--name', 'gone', 'busybox', 'true'], {
    env: { ...env, TSCONTAIN_HANDOFF: `3 ${frontEnd}` },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  (c.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy(); // the front end, dead: nobody reads the plan
  let out = '';
  c.stdout!.on('data', (d) => (out += d));
  c.stderr!.on('data', (d) => (out += d));
  return new Promise((res) => c.on('close', (code) => res({ code, out })));
}

it('front end gone before Node.js handed the plan over: nothing is made, or it is removed; silently', async (t) => {
  const env = privateStore();
  const root = env.TSCONTAIN_ROOT!;
  const dead = spawnSync('/bin/true').pid!; // a process that has ended
  const before = await handOffTo(dead, env);
  t.deepEqual(before, { code: 125, out: '' }, 'already gone when Node.js looks: it stops');
  storeIsEmpty(t, root, 'already gone');
  // alive when Node.js looks, but the plan cannot be handed over (EPIPE)
  const after = await handOffTo(process.pid, env);
  t.deepEqual(after, { code: 125, out: '' }, 'gone by the time the plan is handed over: it stops');
  storeIsEmpty(t, root, 'gone meanwhile');
  t.deepEqual(list(join(root, 'lib', 'names')), []);
});

it('rm -f of a container being started (its owner stopped before running the plan) is immediate', async (t) => {
  const env = privateStore();
  const root = env.TSCONTAIN_ROOT!;
  const s = start(['run', '--rm', 'busybox', 'sleep', '3141'], { env });
  const front = s.child.pid!;
  // stopped while it waits for Node.js: Node.js makes the container and hands the plan over, which is never read
  const end = Date.now() + SETTLE_MS;
  while (!planner(front) && Date.now() < end) await pause(1);
  process.kill(front, 'SIGSTOP');
  let id: string | undefined;
  while (Date.now() < end) {
    id = list(join(root, 'run')).find((d) => ID.test(d) && existsSync(join(root, 'run', d, 'plan.sh')));
    if (id && !planner(front)) break; // Node.js ended
    await pause(20);
  }
  t.truthy(id, 'the container was made');
  const ps = await tsc(['ps', '-a', '--format', 'json'], { env });
  t.is(JSON.parse(ps.stdout)[0]?.status, 'Starting', ps.stdout);
  // before its command was reached its PID 1 may not have switched root yet: exec must not join it
  const ex = await tsc(['exec', id!, 'true'], { env });
  t.is(ex.code, 125, ex.stdout + ex.stderr);
  t.regex(ex.stderr, /is still starting/);
  const t0 = Date.now();
  const rm = await tsc(['rm', '-f', id!], { env });
  const ms = Date.now() - t0;
  t.is(rm.code, 0, rm.stderr);
  // without a PID 1 to kill it used to wait 10 s for nothing (a machine SLOWDOWN times slower gets more)
  t.true(ms < 8000 * SLOWDOWN, `rm -f took ${ms} ms`);
  t.log(`rm -f took ${ms} ms`);
  t.is((await s.done).code, 137, 'its owner was killed');
  storeIsEmpty(t, root, 'after rm -f');
  t.deepEqual(cgroupDirsFor(id!), []);
});
