// Detached containers and their lifecycle; crash safety; no leaks.
import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  isRoot,
  tsc,
  start,
  waitFor,
  until,
  sleep,
  privateStore,
  killStarted,
  removeStoreContainers,
  containerCgroup,
  type Result,
} from './helpers.js';
import { removeTempDirs } from '../fixtures/temp.js';

const it = isRoot ? test : test.skip;
const serial = isRoot ? test.serial : test.serial.skip;
test.after.always(async () => {
  await killStarted();
  await removeStoreContainers();
});

const ID = /^[0-9a-f]{64}$/;
const lines = (s: string) => s.trim().split('\n').filter(Boolean);

it('run -d prints the id; ps shows it Up; logs keep stdout and stderr; stop; ps -a shows Exited; rm', async (t) => {
  const env = privateStore();
  const run = await tsc(
    [
      'run',
      '-d',
      '--name',
      'ticker',
      'busybox',
      'sh',
      '-c',
      'echo out-1; echo err-1 >&2; sleep 0.3; echo out-2; exec sleep 3600',
    ],
    { env },
  );
  t.is(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  t.regex(id, ID);
  const ps = await tsc(['ps'], { env });
  t.regex(
    ps.stdout,
    new RegExp(`^${id.slice(0, 12)} +busybox +"sh -c echo out-1; echo err-1 >" +Up .* +\\d+ +ticker$`, 'm'),
  );
  const logs = await until(async () => {
    const l = await tsc(['logs', 'ticker'], { env });
    return /out-2/.test(l.stdout) && l;
  }, 'out-2 in the logs');
  t.deepEqual(lines(logs.stdout), ['out-1', 'out-2']);
  t.deepEqual(lines(logs.stderr), ['err-1']);
  const tail = await tsc(['logs', '--tail', '1', '-t', id.slice(0, 6)], { env });
  t.regex(tail.stdout.trim(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z out-2$/);
  t.is((await tsc(['stop', '-t', '1', 'ticker'], { env })).code, 0);
  const psa = await tsc(['ps', '-a', '--format', 'json'], { env });
  const [c] = JSON.parse(psa.stdout);
  t.is(c.name, 'ticker');
  t.false(c.running);
  t.is(c.exitCode, 137, 'sleep as PID 1 ignores TERM: killed after the grace period');
  t.regex(c.status, /^Exited \(137\)/);
  t.is((await tsc(['rm', 'ticker'], { env })).code, 0);
  t.deepEqual(readdirSync(join(env.TSCONTAIN_ROOT!, 'lib', 'containers')), []);
});

it('stats --no-stream shows CPU, memory against the limit and PIDs; run -d --rm removes itself', async (t) => {
  const env = privateStore();
  const id = (
    await tsc(
      [
        'run',
        '-d',
        '--rm',
        '--name',
        'statme',
        '-m',
        '64m',
        'busybox',
        'sh',
        '-c',
        'sleep 3600 & sleep 3600 & while :; do :; done',
      ],
      { env },
    )
  ).stdout.trim();
  t.teardown(() => tsc(['rm', '-f', id], { env }));
  // a loaded machine may starve the loop for a half-second sample: it must show before the deadline
  let row = '',
    cpu = 0;
  await until(
    async () => {
      const st = await tsc(['stats', '--no-stream', 'statme'], { env });
      t.is(st.code, 0, st.stderr);
      row = lines(st.stdout)[1];
      cpu = Number(/ (\d+\.\d+)%/.exec(row)?.[1]);
      return cpu > 5;
    },
    () => `the busy loop in stats: ${row}`,
  ).catch(() => undefined);
  t.regex(row, new RegExp(`^${id.slice(0, 12)} +statme +(\\d+\\.\\d+)% +[\\d.]+[KMG]iB / 64MiB +3$`));
  t.true(cpu > 5, `the busy loop shows: ${row}`);
  await tsc(['stop', '-t', '0', 'statme'], { env });
  t.false(existsSync(join(env.TSCONTAIN_ROOT!, 'lib', 'containers', id)), '--rm: gone once stopped');
  t.is(JSON.parse((await tsc(['ps', '-a', '--format', 'json'], { env })).stdout).length, 0);
});

it('logs -f follows a running container and ends when it exits', async (t) => {
  const env = privateStore();
  const id = (
    await tsc(
      [
        'run',
        '-d',
        'busybox',
        'sh',
        '-c',
        'echo line-1; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo line-2; sleep 0.3; echo line-3',
      ],
      { env },
    )
  ).stdout.trim();
  const f = start(['logs', '-f', id], { env });
  await waitFor(f.stdout, /line-1/);
  await sleep(300); // room for a follower that wrongly ends or prints ahead; nothing is awaited
  t.is(f.child.exitCode, null, 'still following the running container');
  t.notRegex(f.stdout(), /line-2/);
  await tsc(['exec', id, 'touch', '/tmp/go'], { env });
  const r = await f.done;
  t.is(r.code, 0);
  t.deepEqual(lines(r.stdout), ['line-1', 'line-2', 'line-3']);
  t.is((await tsc(['wait', id], { env })).stdout.trim(), '0');
});

it('logs are capped: a chatty container cannot fill the disk', async (t) => {
  const env = privateStore();
  const id = (
    await tsc(
      [
        'run',
        '-d',
        '--log-max-size',
        '64k',
        'busybox',
        'sh',
        '-c',
        'i=0; while [ $i -lt 2000 ]; do echo "line $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done',
      ],
      { env },
    )
  ).stdout.trim();
  await tsc(['wait', id], { env });
  const dir = join(env.TSCONTAIN_ROOT!, 'lib', 'containers', id);
  const total = readdirSync(dir)
    .filter((f) => f.startsWith('out.log'))
    .reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  t.true(total <= 64 * 1024 + 200, `kept ${total} bytes`);
  const last = lines((await tsc(['logs', '--tail', '1', id], { env })).stdout);
  t.regex(last[0], /^line 1999 /, 'the newest output is kept');
});

it('exec joins the namespaces, root, cgroup and limits of a running container', async (t) => {
  const env = privateStore();
  const id = (
    await tsc(
      [
        'run',
        '-d',
        '-h',
        'exechost',
        '--pids-limit',
        '12',
        '-e',
        'FROMRUN=1',
        'busybox',
        'sh',
        '-c',
        'echo data > /tmp/made-inside; exec sleep 3600',
      ],
      { env },
    )
  ).stdout.trim();
  const script = 'hostname; cat /tmp/made-inside; ps -o pid,args | sed -n 2p; echo $FROMRUN; cat /proc/self/cgroup';
  // PID 1 wrote the file and became sleep: then exec sees what the test expects
  const r = await until(async () => {
    const x = await tsc(['exec', id.slice(0, 8), 'sh', '-c', script], { env });
    return /sleep 3600/.test(x.stdout) && x;
  }, 'PID 1 to become sleep');
  t.is(r.code, 0, r.stderr);
  const [host, data, ps1, fromRun] = lines(r.stdout);
  t.is(host, 'exechost');
  t.is(data, 'data');
  t.regex(ps1, /^\s*1 sleep 3600$/);
  t.is(fromRun, '1');
  t.regex(
    r.stdout,
    /^0::\/$/m,
    "in the container's cgroup namespace (its cgroup, below, holds the exec'd processes to the limit)",
  );
  const u = await tsc(['exec', '-u', 'nobody', '-w', '/tmp', '-e', 'X=y', id, 'sh', '-c', 'id -un; pwd; echo $X'], {
    env,
  });
  t.deepEqual(lines(u.stdout), ['nobody', '/tmp', 'y']);
  const i = await tsc(['exec', '-i', id, 'cat'], { env, input: 'piped\n' });
  t.is(i.stdout, 'piped\n');
  await tsc(['exec', id, 'sh', '-c', 'for i in $(seq 30); do sleep 5 & done 2>/dev/null'], { env });
  const pids = containerCgroup(id, 'pids');
  t.true(Number(readFileSync(`${pids}/pids.current`, 'utf8')) <= 12, 'bound by the pids limit');
  t.regex(readFileSync(`${pids}/pids.events`, 'utf8'), /max [1-9]/, 'forks were refused');
  await tsc(['rm', '-f', id], { env });
});

it('stop: a container that traps TERM ends at once with its own code; kill -s sends any signal', async (t) => {
  const env = privateStore();
  const id = (
    await tsc(
      [
        'run',
        '-d',
        'busybox',
        'sh',
        '-c',
        'trap "echo got-usr1" USR1; trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done',
      ],
      { env },
    )
  ).stdout.trim();
  await until(async () => /ready/.test((await tsc(['logs', id], { env })).stdout), 'ready: the traps are set');
  t.is((await tsc(['kill', '-s', 'USR1', id], { env })).code, 0);
  await until(async () => /got-usr1/.test((await tsc(['logs', id], { env })).stdout), 'got-usr1 in the logs');
  // a stop that waited for the grace period takes at least that long, however fast the machine
  const t0 = Date.now();
  await tsc(['stop', '-t', '100', id], { env });
  t.true(Date.now() - t0 < 100_000, 'did not wait for the grace period');
  t.is((await tsc(['wait', id], { env })).stdout.trim(), '0');
  await tsc(['rm', id], { env });
});

it("a detached container's exit code and OOM kill are recorded with no tscontain running", async (t) => {
  const env = privateStore();
  const a = (await tsc(['run', '-d', 'busybox', 'sh', '-c', 'exit 7'], { env })).stdout.trim();
  const b = (
    await tsc(['run', '-d', '-m', '32m', 'busybox', 'sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a)'], {
      env,
    })
  ).stdout.trim();
  await until(
    () => [a, b].every((id) => existsSync(join(env.TSCONTAIN_ROOT!, 'lib', 'containers', id, 'state.json'))),
    'both to record their exit',
  );
  const state = (id: string) =>
    JSON.parse(readFileSync(join(env.TSCONTAIN_ROOT!, 'lib', 'containers', id, 'state.json'), 'utf8'));
  t.is(state(a).exitCode, 7);
  t.is(state(b).exitCode, 137);
  t.true(state(b).oomKilled);
  const ins = JSON.parse((await tsc(['inspect', b], { env })).stdout)[0];
  t.true(ins.State.OOMKilled);
  t.is(ins.State.ExitCode, 137);
  t.regex((await tsc(['logs', b], { env })).stderr, /ran out of memory \(limit 32MiB\)/);
  await tsc(['rm', a, b], { env });
});

it('bad input: unknown, ambiguous, running, stopped, taken names, bad timeouts; nothing changes', async (t) => {
  const env = privateStore();
  const id = (await tsc(['run', '-d', '--name', 'busy', 'busybox', 'sleep', '3600'], { env })).stdout.trim();
  const done = (await tsc(['run', '-d', 'busybox', 'true'], { env })).stdout.trim();
  await tsc(['wait', done], { env });
  const check = async (args: string[], re: RegExp) => {
    const r = await tsc(args, { env });
    t.not(r.code, 0, args.join(' '));
    t.regex(r.stderr, re);
    t.is(lines(r.stderr).length, 1, r.stderr);
  };
  await check(['rm', 'nosuch'], /no such container: nosuch/);
  await check(['logs', 'nosuch'], /no such container/);
  await check(['rm', 'busy'], /container busy is running: stop it first, or use rm -f/);
  await check(['exec', done, 'true'], /is not running/);
  await check(['run', '-d', '--name', 'busy', 'busybox', 'true'], /the name "busy" is already in use by container/);
  await check(['stop', '-t', '-1', 'busy'], /invalid stop timeout/);
  await check(['kill', '-s', 'BOGUS', 'busy'], /invalid signal "BOGUS"/);
  // an ambiguous prefix: a stopped container whose id shares its first 6 hex digits with another
  const twin = done.slice(0, 6) + (done[6] === 'f' ? '0' : 'f').repeat(58);
  mkdirSync(join(env.TSCONTAIN_ROOT!, 'lib', 'containers', twin));
  writeFileSync(
    join(env.TSCONTAIN_ROOT!, 'lib', 'containers', twin, 'config.json'),
    JSON.stringify({ id: twin, image: 'busybox', argv: ['true'] }),
  );
  writeFileSync(
    join(env.TSCONTAIN_ROOT!, 'lib', 'containers', twin, 'state.json'),
    JSON.stringify({ status: 'exited', exitCode: 0 }),
  );
  await check(['inspect', done.slice(0, 6)], /container id prefix "[0-9a-f]{6}" is ambiguous \(2 containers\)/);
  t.is((await tsc(['inspect', done.slice(0, 7)], { env })).code, 0, 'one more digit is unique');
  t.true(JSON.parse((await tsc(['inspect', 'busy'], { env })).stdout)[0].State.Running, 'still running');
  await tsc(['rm', '-f', id, done, twin], { env });
});

serial('of two `run --name x` at once exactly one wins', async (t) => {
  const env = privateStore();
  const rs = await Promise.all(
    [0, 1, 2].map(() => tsc(['run', '-d', '--name', 'x', 'busybox', 'sleep', '3600'], { env })),
  );
  t.is(rs.filter((r) => r.code === 0).length, 1, rs.map((r) => r.stderr).join('|'));
  for (const r of rs.filter((x) => x.code !== 0)) t.regex(r.stderr, /the name "x" is already in use/);
  t.is(JSON.parse((await tsc(['ps', '-a', '--format', 'json'], { env })).stdout).length, 1, 'the losers left nothing');
  await tsc(['rm', '-f', 'x'], { env });
});

serial('20 detached containers at once: all listed, all stopped, all removed, nothing left', async (t) => {
  const env = privateStore();
  const runs: Result[] = await Promise.all(
    Array.from({ length: 20 }, (_, i) => tsc(['run', '-d', '--name', `c${i}`, 'busybox', 'sleep', '3600'], { env })),
  );
  t.deepEqual(
    runs.map((r) => r.code),
    Array(20).fill(0),
    runs.map((r) => r.stderr).join(''),
  );
  const ps = JSON.parse((await tsc(['ps', '--format', 'json'], { env })).stdout);
  t.is(ps.length, 20);
  t.true(ps.every((c: { running: boolean; pid: number }) => c.running && c.pid > 0));
  const stop = await tsc(['stop', '-t', '0', ...runs.map((r) => r.stdout.trim())], { env });
  t.is(stop.code, 0, stop.stderr);
  t.is(JSON.parse((await tsc(['ps', '--format', 'json'], { env })).stdout).length, 0);
  const rm = await tsc(['rm', ...Array.from({ length: 20 }, (_, i) => `c${i}`)], { env });
  t.is(rm.code, 0, rm.stderr);
  t.deepEqual(readdirSync(join(env.TSCONTAIN_ROOT!, 'lib', 'containers')), []);
  t.deepEqual(
    readdirSync(join(env.TSCONTAIN_ROOT!, 'run')).filter((d) => ID.test(d)),
    [],
  );
  t.deepEqual(readdirSync(join(env.TSCONTAIN_ROOT!, 'lib', 'names')), []);
});

interface PsRow {
  id: string;
  running: boolean;
  pid: number | null;
  status: string;
}
const psAll = async (env: NodeJS.ProcessEnv) =>
  JSON.parse((await tsc(['ps', '-a', '--format', 'json'], { env })).stdout) as PsRow[];

/**
 * Wait until no container is half-way: a supervisor that outlived the killed tscontain is still
 * starting its container (not yet Up) or still removing one whose PID 1 is gone.
 */
async function settled(env: NodeJS.ProcessEnv) {
  let ps: PsRow[] = [];
  await until(
    async () => (ps = await psAll(env)).every((c) => !c.running || (c.pid && c.status.startsWith('Up'))),
    () => `every container to be Up or stopped: ${JSON.stringify(ps)}`,
  );
}

/** ps, gc and the host agree: every container ps calls running has processes, and no other cgroup of ours exists. */
async function agree(t: ExecutionContext, env: NodeJS.ProcessEnv) {
  await settled(env);
  await tsc(['gc'], { env });
  const ps = await psAll(env);
  for (const c of ps) {
    const cg = existsSync(containerCgroup(c.id, 'memory'));
    if (c.running) {
      t.truthy(c.pid, `${c.id} running with a pid`);
      t.truthy(cg, `${c.id} running has a cgroup`);
    } else t.falsy(cg, `${c.id} stopped has no cgroup`);
    t.false(
      existsSync(join(env.TSCONTAIN_ROOT!, 'run', c.id)) && !c.running,
      'no runtime state for a stopped container',
    );
  }
  return ps;
}

serial(
  'tscontain SIGKILLed during run -d and rm: afterwards ps, gc and the host agree and nothing leaks',
  async (t) => {
    const env = privateStore();
    for (const ms of [5, 30, 60, 100, 150, 250]) {
      const c = start(['run', '-d', 'busybox', 'sleep', '3600'], { env });
      await sleep(ms);
      c.child.kill('SIGKILL');
      await c.done;
    }
    let ps = await agree(t, env);
    for (const ms of [5, 30, 80, 150]) {
      const running = ps.filter((c) => c.running);
      if (!running.length) break;
      const c = start(['rm', '-f', running[0].id], { env });
      await sleep(ms);
      c.child.kill('SIGKILL');
      await c.done;
      ps = await agree(t, env);
    }
    await tsc(['rm', '-f', ...ps.map((c) => c.id)], { env });
    ps = await agree(t, env);
    t.is(ps.length, 0);
  },
);

test.after.always(removeTempDirs);
