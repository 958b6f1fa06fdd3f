// Who owns a container while it starts, and how every part of tscontain tells whether that owner
// lives: one check (markAlive), mirrored in sh for the container's init (checkPidFile).
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPidFile } from '../../src/plan/plan.js';
import { lit } from '../../src/plan/sh.js';
import {
  ancestorMark,
  gc,
  inspectContainer,
  markAlive,
  pidFileText,
  stagingName,
  startTicks,
} from '../../src/store/state.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';
import { shScript, writeDeadMark } from './helpers.js';

test.after.always(removeTempDirs);

const ID = 'd'.repeat(64);
const store = () => {
  const b = tempDir('tscontain-own-');
  return { lib: join(b, 'lib'), run: join(b, 'run') };
};
/** The mark of a process that has ended (and was reaped): its pid and start time, both stale. */
function deadMark(): string {
  const f = join(tempDir('tscontain-own-'), 'pid');
  writeDeadMark(f); // the plan's own line
  const mark = readFileSync(f, 'utf8').trim();
  if (!/^\d+ \d+$/.test(mark)) throw new Error(`no mark: ${mark}`);
  return mark;
}
/** The sh copy of the check, run on a pid file: true if it says alive. */
const shAlive = (file: string) =>
  spawnSync('/bin/sh', ['-c', shScript(checkPidFile(lit('"$1"'))), 'sh', file]).status === 0;

test("the sh check of the container's init agrees with markAlive: live, dead, recycled pid, zombie, no mark", (t) => {
  const dir = tempDir('tscontain-own-');
  const f = join(dir, 'supervisor');
  const zombie = spawn('/bin/sh', ['-c', 'exit 0']); // not reaped while this test runs synchronously
  let zmark = '';
  for (let i = 0; i < 1e6 && !zmark; i++) {
    // until the kernel shows it as a zombie
    const st = readFileSync(`/proc/${zombie.pid}/stat`, 'utf8');
    if (/\) Z /.test(st)) zmark = `${zombie.pid} ${st.slice(st.lastIndexOf(')') + 2).split(' ')[19]}`;
  }
  const cases: [string, string, boolean][] = [
    ['this process', pidFileText(), true],
    ['a process that ended', deadMark(), false],
    ['a recycled pid (another start time)', `${process.pid} ${Number(startTicks('self')) + 1}`, false],
    ['no start time', String(process.pid), false],
    ['empty', '', false],
    ['garbage', 'x y z', false],
  ];
  if (zmark) cases.push(['a zombie', zmark, false]);
  for (const [what, mark, alive] of cases) {
    writeFileSync(f, mark + '\n');
    t.is(!!markAlive(mark), alive, `markAlive: ${what}`);
    t.is(shAlive(f), alive, `sh: ${what}`);
  }
  t.false(shAlive(join(dir, 'nope')), 'sh: no file');
  t.truthy(zmark, 'a zombie was seen');
});

test('ancestorMark names a live ancestor only: not a stranger, not a dead process', async (t) => {
  t.is(ancestorMark(process.ppid), `${process.ppid} ${startTicks(process.ppid)}`);
  t.is(ancestorMark(Number(deadMark().split(' ')[0])), undefined);
  const stranger = spawn('sleep', ['30']);
  await new Promise((r) => stranger.on('spawn', r));
  t.is(ancestorMark(stranger.pid!), undefined, 'alive, but not an ancestor (a recycled pid looks like this)');
  stranger.kill('SIGKILL');
});

test('the owner of a run dir: its supervisor once that wrote its pid file, before that `starting`', (t) => {
  const r = store();
  const dir = join(r.run, ID);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'starting'), pidFileText());
  t.true(inspectContainer(r, ID).running, 'its starter lives');
  t.is(inspectContainer(r, ID).starter, process.pid);
  writeFileSync(join(dir, 'supervisor'), '');
  t.true(inspectContainer(r, ID).running, 'a pid file being written: still the starter');
  writeFileSync(join(dir, 'supervisor'), deadMark());
  t.false(inspectContainer(r, ID).running, 'its supervisor died: a live starter does not keep it');
  writeFileSync(join(dir, 'supervisor'), pidFileText());
  writeFileSync(join(dir, 'starting'), deadMark());
  t.true(inspectContainer(r, ID).running);
  t.is(inspectContainer(r, ID).supervisor, process.pid);
});

test("gc removes a dead owner's staging run dir, a gone container's half-made /dev skeleton; not live ones", (t) => {
  const r = store();
  const live = 'e'.repeat(64);
  const keep = [stagingName(live, pidFileText()), live, `dev.${live}`];
  const gone = [stagingName(ID, deadMark()), `dev.${ID}`];
  for (const d of [...keep, ...gone]) mkdirSync(join(r.run, d), { recursive: true });
  writeFileSync(join(r.run, live, 'supervisor'), pidFileText());
  const old = process.env.TSCONTAIN_CGROUP_ROOT;
  process.env.TSCONTAIN_CGROUP_ROOT = tempDir('tscontain-own-cg-');
  try {
    t.is(gc(r), 2);
  } finally {
    if (old === undefined) delete process.env.TSCONTAIN_CGROUP_ROOT;
    else process.env.TSCONTAIN_CGROUP_ROOT = old;
  }
  t.deepEqual(readdirSync(r.run).sort(), keep.sort());
});
