import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gc, pidFileText, startTicks, writerAlive } from '../../src/store/state.js';
import { writePidFile } from '../../src/plan/plan.js';
import { lit } from '../../src/plan/sh.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';
import { until } from '../fixtures/poll.js';
import { fakeCgroupV1, shScript, writeDeadMark } from './helpers.js';

test.after.always(removeTempDirs);

/** Run fn with gc's cgroup root moved to a fake tree (TSCONTAIN_CGROUP_ROOT), put back after. */
function withCgroupRoot(root: string, fn: () => void) {
  const old = process.env.TSCONTAIN_CGROUP_ROOT;
  process.env.TSCONTAIN_CGROUP_ROOT = root;
  try {
    fn();
  } finally {
    if (old === undefined) delete process.env.TSCONTAIN_CGROUP_ROOT;
    else process.env.TSCONTAIN_CGROUP_ROOT = old;
  }
}

test('a pid file names its writer by pid and start time; the wall clock plays no part', (t) => {
  const dir = tempDir('tscontain-state-');
  const f = join(dir, 'supervisor');
  writeFileSync(f, pidFileText());
  t.is(writerAlive(f), process.pid);
  // the clock stepped: the file looks written an hour before (or after) its writer started
  utimesSync(f, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
  t.is(writerAlive(f), process.pid, 'a clock step does not make a live writer look dead');
  utimesSync(f, new Date(Date.now() + 3600_000), new Date(Date.now() + 3600_000));
  t.is(writerAlive(f), process.pid);
  // the same pid with another start time is a recycled pid: not the writer
  writeFileSync(f, `${process.pid} ${Number(startTicks('self')) + 1}`);
  t.is(writerAlive(f), undefined);
  writeFileSync(f, String(process.pid));
  t.is(writerAlive(f), undefined, 'no start time, no trust');
  writeFileSync(f, '');
  t.is(writerAlive(f), undefined);
  t.is(writerAlive(join(dir, 'nope')), undefined);
});

test('the plan script writes the same pid file from sh, with builtins only', async (t) => {
  const dir = tempDir('tscontain-state-');
  const f = join(dir, 'supervisor');
  // the plan's own line, run by a sh that waits so we can check it while it lives
  const line = `${shScript(writePidFile(lit('"$1"')))}\nread x`;
  const sh = spawn('/bin/sh', ['-c', line, 'sh', f], { stdio: ['pipe', 'ignore', 'inherit'] });
  await until(() => writerAlive(f), 'the pid file').catch(() => undefined);
  t.is(writerAlive(f), sh.pid);
  sh.stdin!.end('\n');
  await new Promise((r) => sh.on('exit', r));
  t.is(writerAlive(f), undefined, 'gone once it exited');
  t.is(spawnSync('/bin/sh', ['-n', '-c', line]).status, 0);
});

test('gc: a container whose starter died before its plan ran (directories made, no config) leaves nothing', (t) => {
  const base = tempDir('tscontain-gc-');
  const r = { lib: join(base, 'lib'), run: join(base, 'run') };
  const cg = fakeCgroupV1(['memory', 'pids']);
  const id = 'c'.repeat(64);
  // what tscontain run does before it hands the plan over: `starting` names the shell that will run it
  mkdirSync(join(r.run, id), { recursive: true });
  writeDeadMark(join(r.run, id, 'starting')); // the plan's own line, by a shell that is gone now
  for (const d of ['upper', 'work', 'dev/upper', 'dev/work', 'rootfs'])
    mkdirSync(join(r.lib, 'containers', id, d), { recursive: true });
  withCgroupRoot(cg, () => {
    t.is(gc(r), 1);
  });
  t.false(existsSync(join(r.run, id)), 'its run directory is gone');
  t.false(existsSync(join(r.lib, 'containers', id)), 'and its layer: no config, so nothing to keep');
  t.deepEqual(
    readdirSync(join(r.lib, 'containers')).filter((d) => !d.startsWith('.')),
    [],
  );
});

test('gc: a dead container whose cgroup is still busy keeps its record, and a later gc removes both', (t) => {
  const base = tempDir('tscontain-gc-');
  const r = { lib: join(base, 'lib'), run: join(base, 'run') };
  const cg = fakeCgroupV1(['memory']);
  const id = 'd'.repeat(64);
  mkdirSync(join(r.run, id), { recursive: true });
  writeDeadMark(join(r.run, id, 'supervisor')); // gone now
  mkdirSync(join(r.lib, 'containers', id), { recursive: true });
  writeFileSync(join(r.lib, 'containers', id, 'config.json'), JSON.stringify({ id, rm: true }));
  // a fake cgroup rmdir(2) cannot remove while it holds a file: as the kernel's while a process is reaped
  const busy = join(cg, 'memory', 'tscontain', id);
  mkdirSync(busy, { recursive: true });
  writeFileSync(join(busy, 'cgroup.procs'), '');
  withCgroupRoot(cg, () => {
    t.is(gc(r), 0, 'nothing done while the cgroup is busy');
    t.true(existsSync(join(r.run, id)), 'its record stays for the next gc');
    rmSync(join(busy, 'cgroup.procs'));
    t.is(gc(r), 1);
  });
  t.false(existsSync(busy), 'the cgroup is gone');
  t.false(existsSync(join(r.run, id)), 'and the run directory');
  t.false(existsSync(join(r.lib, 'containers', id)), 'and, with --rm, the container');
});

test("gc: an address held by another store's live container (its run dir there) is nothing to do: no lock taken", (t) => {
  const base = tempDir('tscontain-gc-');
  // r.run cannot be made (a file is in the way): taking the lock would throw
  writeFileSync(join(base, 'file'), '');
  const r = { lib: join(base, 'lib'), run: join(base, 'file', 'run'), net: join(base, 'net') };
  const other = join(base, 'other-store-run', 'e'.repeat(64));
  mkdirSync(other, { recursive: true });
  mkdirSync(join(r.net, 'addresses'), { recursive: true });
  writeFileSync(join(r.net, 'addresses', '172.17.0.2'), `${'e'.repeat(64)} ${other}\n`);
  withCgroupRoot(fakeCgroupV1(['memory']), () => {
    t.is(gc(r), 0);
  });
  t.true(existsSync(join(r.net, 'addresses', '172.17.0.2')), 'its address stays');
});
