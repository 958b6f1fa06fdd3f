// Both cgroup drivers against fake cgroupfs trees in a temp dir: the planned shell lines are run
// with sh and the files they write are checked. No root needed.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cgroupDriver, detectVersion, sharesToWeight } from '../../src/kernel/cgroup.js';
import { TscError } from '../../src/errors.js';
import { lit, type Sh } from '../../src/plan/sh.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';
import { fakeCgroupV1, fakeCgroupV2 } from './helpers.js';

const ID = 'a'.repeat(64);
const limits = { memory: 32 * 1024 * 1024, pids: 20, cpus: 0.2, cpuShares: 512 };

const fakeV1 = () => fakeCgroupV1(['memory', 'pids', 'cpu', 'cpuacct', 'cpuset']);
const fakeV2 = (controllers = 'cpuset cpu io memory pids') => fakeCgroupV2(controllers);
const text = (lines: (string | Sh)[]) => lines.map((l) => (typeof l === 'string' ? l : l.text)).join('\n');
const sh = (lines: (string | Sh)[]) => execFileSync('/bin/sh', ['-ec', `tsc_id=${ID}\n${text(lines)}`]);
/** as the plan runs its cleanup: without set -e */
const shNoE = (lines: (string | Sh)[]) => execFileSync('/bin/sh', ['-c', `tsc_id=${ID}\n${text(lines)}`]);

test('detects v1 (hybrid) and v2 layouts', (t) => {
  t.is(detectVersion(fakeV1()), 1);
  t.is(detectVersion(fakeV2()), 2);
});

test('v1: one cgroup per hierarchy under tscontain/<id>, limits in v1 files', (t) => {
  const root = fakeV1();
  const d = cgroupDriver(ID, limits, root);
  t.is(d.version, 1);
  t.is(d.dirs.memory, join(root, 'memory', 'tscontain', ID));
  t.false('cpuset' in d.dirs);
  sh([...d.vars(), `mkdir -p ${text(d.mkdirs()).replace(/\n/g, ' ')}`, ...d.setLimits()]);
  const rd = (c: string, f: string) => readFileSync(join(root, c, 'tscontain', ID, f), 'utf8').trim();
  t.is(rd('memory', 'memory.limit_in_bytes'), String(32 * 1024 * 1024));
  t.is(rd('pids', 'pids.max'), '20');
  t.is(rd('cpu', 'cpu.cfs_quota_us'), '20000');
  t.is(rd('cpu', 'cpu.cfs_period_us'), '100000');
  t.is(rd('cpu', 'cpu.shares'), '512');
  sh([...d.vars(), ...d.join()]);
  t.is(rd('pids', 'cgroup.procs'), '0');
  // nothing written outside tscontain/
  t.is(readFileSync(join(root, 'memory', 'cgroup.procs'), 'utf8'), '');
});

test('v1: OOM count read from memory.oom_control', (t) => {
  const root = fakeV1();
  const d = cgroupDriver(ID, limits, root);
  sh([...d.vars(), `mkdir -p ${text(d.mkdirs()).replace(/\n/g, ' ')}`, ...d.setLimits()]);
  writeFileSync(join(d.dirs.memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n');
  t.is(
    execFileSync('/bin/sh', ['-c', `tsc_id=${ID}\n${text([...d.vars(), ...d.oomCount()])}\necho $tsc_oom`])
      .toString()
      .trim(),
    '3',
  );
});

test('v2: one cgroup, controllers enabled in tscontain/ only, limits in v2 files', (t) => {
  const root = fakeV2();
  const d = cgroupDriver(ID, limits, root);
  t.is(d.version, 2);
  t.deepEqual(d.all, [join(root, 'tscontain', ID)]);
  sh([...d.vars(), `mkdir -p ${text(d.mkdirs()).replace(/\n/g, ' ')}`, ...d.setLimits()]);
  const rd = (f: string) => readFileSync(join(root, 'tscontain', ID, f), 'utf8').trim();
  t.is(rd('memory.max'), String(32 * 1024 * 1024));
  t.is(rd('pids.max'), '20');
  t.is(rd('cpu.max'), '20000 100000');
  t.is(rd('cpu.weight'), '59', 'cpu-shares 512');
  t.is(readFileSync(join(root, 'tscontain', 'cgroup.subtree_control'), 'utf8').trim(), '+memory +pids +cpu');
  t.is(
    readFileSync(join(root, 'cgroup.subtree_control'), 'utf8').trim(),
    'cpuset cpu io memory pids',
    'the root cgroup is never written',
  );
  writeFileSync(join(d.all[0], 'memory.events'), 'low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n');
  t.is(
    execFileSync('/bin/sh', ['-c', `tsc_id=${ID}\n${text([...d.vars(), ...d.oomCount()])}\necho $tsc_oom`])
      .toString()
      .trim(),
    '1',
  );
});

test('v2: a limit whose controller is not enabled is a clear error', (t) => {
  const root = fakeV2('cpu pids');
  const e = t.throws(() => cgroupDriver(ID, { memory: 1 << 26 }, root), { instanceOf: TscError });
  t.regex(e!.message, /"memory" controller is not enabled/);
  t.notThrows(() => cgroupDriver(ID, { pids: 5 }, root));
});

test('v1: a missing hierarchy is a clear error', (t) => {
  const root = tempDir('tscontain-fakecg1-');
  mkdirSync(join(root, 'memory'));
  writeFileSync(join(root, 'memory', 'cgroup.procs'), '');
  t.throws(() => cgroupDriver(ID, { pids: 5 }, root), { message: /"pids" hierarchy is missing/ });
  t.false(existsSync(join(root, 'memory', 'tscontain')), 'nothing created');
});

test("cpu-shares to cpu.weight: the ends and docker's default map to v2's, like runc and crun", (t) => {
  const table: [number, number][] = [
    [2, 1],
    [3, 2],
    [100, 17],
    [512, 59],
    [1000, 99],
    [1024, 100],
    [2048, 174],
    [4096, 303],
    [262143, 10000],
    [262144, 10000],
  ];
  t.deepEqual(
    table.map(([s]) => [s, sharesToWeight(s)]),
    table,
  );
  const bad: string[] = [];
  for (let s = 3, last = 1; s <= 262144; s += 97) {
    const w = sharesToWeight(s);
    if (!(w >= last && w <= 10000 && Number.isInteger(w))) bad.push(`${s} -> ${w} after ${last}`);
    last = w;
  }
  t.deepEqual(bad, [], 'whole numbers, never decreasing, within 1..10000');
});

test("v2: --cpu-shares 1024 and no flag give the same weight (the kernel's default, 100)", (t) => {
  const root = fakeV2();
  const d = cgroupDriver(ID, { cpuShares: 1024 }, root);
  sh([...d.vars(), `mkdir -p ${text(d.mkdirs()).replace(/\n/g, ' ')}`, ...d.setLimits()]);
  t.is(readFileSync(join(root, 'tscontain', ID, 'cpu.weight'), 'utf8').trim(), '100');
  t.false(
    cgroupDriver(ID, {}, root)
      .setLimits()
      .some((l) => l.text.includes('cpu.weight')),
    'no flag: the weight is left at the default',
  );
});

test.after.always(removeTempDirs);

test("removeWith: the container's files and its cgroup directory go in one find; control files and other cgroups are never touched", (t) => {
  for (const root of [fakeV1(), fakeV2()]) {
    const d = cgroupDriver(ID, {}, root);
    const base = tempDir('tscontain-rm-');
    const ctr = join(base, 'ctr'),
      run = join(base, 'run');
    mkdirSync(join(ctr, 'upper/etc'), { recursive: true });
    writeFileSync(join(ctr, 'upper/etc/x'), 'x');
    mkdirSync(join(ctr, 'work/work'), { recursive: true });
    mkdirSync(run);
    writeFileSync(join(run, 'plan.sh'), '');
    for (const c of d.all) mkdirSync(c, { recursive: true });
    const other = join(dirname(d.all[0]), 'c'.repeat(64));
    mkdirSync(other);
    writeFileSync(join(other, 'cgroup.procs'), '');
    shNoE([...d.vars(), `tsc_ctr=${ctr}`, `tsc_run=${run}`, ...d.removeWith([lit('"$tsc_ctr"'), lit('"$tsc_run"')])]);
    t.false(existsSync(ctr));
    t.false(existsSync(run));
    for (const c of d.all) t.false(existsSync(c), `${c} removed`);
    t.true(existsSync(join(other, 'cgroup.procs')), "another container's cgroup is untouched");
    // a control file is never unlinked (in cgroupfs rmdir removes them with the cgroup; here the directory stays)
    for (const c of d.all) {
      mkdirSync(c, { recursive: true });
      writeFileSync(join(c, 'cgroup.procs'), '');
    }
    shNoE([
      ...d.vars(),
      `tsc_ctr=${ctr}`,
      `tsc_run=${run}`,
      ...d.removeWith([lit('"$tsc_ctr"'), lit('"$tsc_run"')]).map((l) => l.text.replace('1 2 3 4 5 6 7 8 9 10', '1')),
    ]);
    for (const c of d.all) t.true(existsSync(join(c, 'cgroup.procs')));
  }
});
