// Who owns a container while it starts, and how every part of tscontain tells whether that owner
// lives: one check (markAlive), mirrored in sh for the container's init (checkPidFile).
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPidFile } from '../../src/plan/plan.js';
import { lit } from '../../src/plan/sh.js';
import { gc, inspectContainer, markAlive, pidFileText, stagingName, startTicks } from '../../src/store/state.js';
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

test('pipePeerMark names the process at the other end of our pipe only: not a stranger, not a dead one', (t) => {
  // as bin/tscontain starts Node.js: in the background of a command substitution, fd 3 the pipe to it
  const stranger = spawn('sleep', ['30']);
  const state = new URL('../../src/store/state.js', import.meta.url).href;
  const code = `import { pipePeerMark } from ${JSON.stringify(state)}; import { writeSync } from 'node:fs';
    const [front, stranger, dead] = process.argv.slice(1).map(Number);
    writeSync(3, JSON.stringify([front, pipePeerMark(front, 3), pipePeerMark(stranger, 3), pipePeerMark(dead, 3),
      pipePeerMark(front, 0)]));`;
  const dead = Number(deadMark().split(' ')[0]);
  const r = spawnSync(
    'sh',
    [
      '-c',
      'out=$(node --input-type=module -e "$0" $$ "$1" "$2" 3>&1 >/dev/null </dev/null &); echo "$out"',
      code,
      String(stranger.pid),
      String(dead),
    ],
    { encoding: 'utf8' },
  );
  stranger.kill('SIGKILL');
  const [front, mark, strangers, deads, stdin] = JSON.parse(r.stdout.trim() || '[]');
  t.regex(String(mark), new RegExp(`^${front} [0-9]+$`), `the front end, reading the pipe (${r.stderr})`);
  t.is(strangers, null, 'alive, but without our pipe (a recycled pid looks like this)');
  t.is(deads, null, 'a process that has ended');
  t.is(stdin, null, 'fd 0 is no pipe to it');
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

test("gc removes the lock of a tscontain killed while it held it; not a live holder's", (t) => {
  const old = process.env.TSCONTAIN_CGROUP_ROOT;
  process.env.TSCONTAIN_CGROUP_ROOT = tempDir('tscontain-own-cg-');
  try {
    const r = store();
    mkdirSync(r.run, { recursive: true });
    writeFileSync(join(r.run, '.lock'), pidFileText());
    gc(r);
    t.true(readdirSync(r.run).includes('.lock'), 'held by a live process (this one): kept');
    writeFileSync(join(r.run, '.lock'), deadMark());
    gc(r);
    t.deepEqual(readdirSync(r.run), [], 'its holder is dead: gone');
  } finally {
    if (old === undefined) delete process.env.TSCONTAIN_CGROUP_ROOT;
    else process.env.TSCONTAIN_CGROUP_ROOT = old;
  }
});
