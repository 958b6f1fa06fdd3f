// src/kernel/init.pl as PID 1 of a new PID namespace (unshare --pid --fork --mount-proc), started
// as tscontain starts it: with an empty environment, the command's given as --env.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';
import { isRoot, REPO, waitFor, pidsOf } from './helpers.js';

const it = isRoot ? test : test.skip;
const INIT = join(REPO, 'src', 'kernel', 'init.pl');
const running = new Set<ChildProcess>();
test.after.always(() => {
  for (const c of running) c.kill('SIGKILL'); // unshare --kill-child takes init along
  removeTempDirs();
});

function init(args: string[], extraFd = false) {
  const stdio: ('pipe' | 'ignore' | number)[] = ['ignore', 'pipe', 'pipe'];
  if (extraFd) stdio.push('ignore', 'ignore', 'ignore', 'ignore', 'pipe'); // fd 7: something the host left open
  // started with SIGPIPE ignored, as a process may inherit it: the command must not
  const argv = ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc', 'env', '-i', 'perl', INIT, ...args];
  const child = spawn('sh', ['-c', 'trap "" PIPE; exec "$@"', 'sh', ...argv], { stdio });
  running.add(child);
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  let code: number | undefined;
  const done = new Promise<number>((res) =>
    child.on('close', (c, sig) => {
      running.delete(child);
      res((code = c ?? 128 + (sig === 'SIGKILL' ? 9 : 15)));
    }),
  );
  /** the exit code, or a failure after a while: a signal init does not forward would leave sleep running */
  const ended = async () => {
    await waitFor(() => (code === undefined ? '' : 'ended'), /ended/, 30000);
    return code;
  };
  /** init's host pid: unshare's only child (sh execs unshare) */
  const pid1 = () => children(child.pid!)[0];
  return { out: () => out, done, ended, pid1 };
}

const children = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
const state = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
  } catch {
    return 'gone';
  }
};
const marker = () => String(3000 + Math.floor(Math.random() * 90000));
const PATH = ['--env', 'PATH=/usr/bin:/bin'];

it('SIGTERM stops sleep at once, and an orphan that ended is reaped', async (t) => {
  const d = tempDir('tscontain-init-');
  const n = marker();
  // ( ( ... ) & ): the inner subshell is orphaned, waits until it is PID 1's, then ends: a zombie for init to reap
  const script = `( ( until read -r _ _ _ pp _ < /proc/self/stat; [ "$pp" = 1 ]; do sleep 0.01; done; : > ${d}/orphaned ) & ); exec sleep ${n}`;
  const c = init([...PATH, '--', 'sh', '-c', script]);
  await waitFor(() => (existsSync(join(d, 'orphaned')) && pidsOf('sleep', n).length ? 'up' : ''), /up/);
  const sleepPid = pidsOf('sleep', n)[0];
  const pid1 = c.pid1();
  // the orphan's end makes it a zombie child of init until init reaps it
  await waitFor(() => JSON.stringify(children(pid1)), new RegExp(`^\\[${sleepPid}\\]$`));
  t.is(state(sleepPid), 'S');
  process.kill(pid1, 'SIGTERM');
  t.is(await c.ended(), 143, c.out());
});

it('SIGINT (Ctrl-C forwarded by tscontain) stops sleep: 130', async (t) => {
  const n = marker();
  const c = init([...PATH, '--', 'sleep', n]);
  await waitFor(() => (pidsOf('sleep', n).length ? 'up' : ''), /up/);
  process.kill(c.pid1(), 'SIGINT');
  t.is(await c.ended(), 130, c.out());
});

it("the command's exit code, 128+N for signal N, 127 for a command not found", async (t) => {
  t.is(await init([...PATH, '--', 'sh', '-c', 'exit 7']).done, 7);
  t.is(await init([...PATH, '--', 'sh', '-c', 'kill -USR1 $$']).done, 138);
  const missing = init([...PATH, '--', 'no-such-command']);
  t.is(await missing.done, 127);
  t.regex(missing.out(), /no-such-command: No such file or directory/);
});

it('the command gets exactly the --env given, the working directory --wd, default signal actions, no fd above 2', async (t) => {
  const c = init(
    [
      '--wd',
      '/tmp',
      ...PATH,
      '--env',
      'A=x y',
      '--',
      'sh',
      '-c',
      'pwd; env | sort; ls /proc/$$/fd; grep SigIgn /proc/$$/status',
    ],
    true,
  );
  t.is(await c.done, 0, c.out());
  const [pwd, ...rest] = c.out().trim().split('\n');
  t.is(pwd, '/tmp');
  t.deepEqual(rest.slice(0, 3), ['A=x y', 'PATH=/usr/bin:/bin', 'PWD=/tmp']);
  t.deepEqual(
    rest.slice(3, -1),
    ['0', '1', '2'],
    'the fd 7 init was given does not reach the command (ls reads /proc/$$/fd of sh)',
  );
  t.regex(rest.at(-1)!, /^SigIgn:\s+0+$/);
});
