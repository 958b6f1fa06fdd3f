// The printed plan runs by hand and does what run does; demos show what they claim; doctor; --explain.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, tsc, env, REPO, BIN, CLEAN_FDS, waitFor, pidsOf, cgroupLine, containerCgroup } from './helpers.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

const it = isRoot ? test : test.skip;
const S3141 = String(3000 + Math.floor(Math.random() * 90000)); // a marker no other test or run shares

async function planFile(args: string[]): Promise<string> {
  const r = await tsc(['plan', ...args]);
  if (r.code !== 0) throw new Error(r.stderr);
  const f = join(tempDir('tscontain-planfile-'), 'plan.sh');
  writeFileSync(f, r.stdout);
  return f;
}

const idOf = (script: string) => readFileSync(script, 'utf8').match(/^tsc_id=([0-9a-f]{64})$/m)![1];

it('a printed plan, run by hand with sh (no node), starts the same container and cleans up', async (t) => {
  const f = await planFile([
    '--rm',
    '-h',
    'byhand',
    '--cgroupns',
    'host',
    '--pids-limit',
    '10',
    'busybox',
    'sh',
    '-c',
    'hostname; echo $$; cat /proc/self/cgroup; exit 3',
  ]);
  const id = idOf(f);
  const r = spawnSync('/bin/sh', [f], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, encoding: 'utf8' });
  t.is(r.status, 3, r.stderr);
  const [host, pid] = r.stdout.split('\n');
  t.is(host, 'byhand');
  t.is(pid, '1');
  t.regex(r.stdout, cgroupLine('pids', id), "in the container's cgroup");
  t.false(existsSync(containerCgroup(id, 'pids')), 'cgroup removed');
  t.false(existsSync(join(env.TSCONTAIN_ROOT, 'run', id)));
  t.false(existsSync(join(env.TSCONTAIN_ROOT, 'lib', 'containers', id)));
});

it('a printed plan cleans up on Ctrl-C: the trap runs; a container that ignores it dies at the third', async (t) => {
  const f = await planFile([
    '--rm',
    'busybox',
    'sh',
    '-c',
    'trap "echo got-INT; exit 130" INT; echo ready; while :; do sleep 0.1; done',
  ]);
  const c = spawn('/bin/sh', [f], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  const cExited = new Promise((res) => c.on('exit', res));
  let out = '';
  c.stdout.on('data', (d) => (out += d));
  await waitFor(() => out, /ready/);
  c.kill('SIGINT');
  const code = await cExited;
  t.is(code, 130);
  t.regex(out, /got-INT/);
  t.false(existsSync(join(env.TSCONTAIN_ROOT, 'run', idOf(f))));

  // PID 1 traps INT and carries on; it says so, so the test presses Ctrl-C again only once the
  // supervisor has forwarded the last one (a shell runs its trap once for signals that arrive together)
  const argv = ['sh', '-c', 'trap "echo got-INT" INT; echo ready; while :; do sleep 0.1; done', `ignores-int-${S3141}`];
  const g = await planFile(['--rm', 'busybox', ...argv]);
  const d = spawn('/bin/sh', [g], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  const exited = new Promise((res) => d.on('exit', res));
  let out2 = '';
  d.stdout.on('data', (b) => (out2 += b));
  await waitFor(() => out2, /ready/);
  for (const n of [1, 2]) {
    d.kill('SIGINT');
    await waitFor(() => String(out2.match(/got-INT/g)?.length ?? 0), new RegExp(`^${n}$`));
  }
  d.kill('SIGINT');
  const code2 = await exited;
  t.is(code2, 137);
  t.deepEqual(pidsOf(...argv), [], 'the container is gone');
  t.false(existsSync(join(env.TSCONTAIN_ROOT, 'lib', 'containers', idOf(g))));
});

it('--explain narrates each step with its kernel feature; plain without a terminal', async (t) => {
  const r = await tsc(['run', '--rm', '--explain', 'busybox', 'true']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /\[1\] Create the container's directories/);
  t.regex(r.stderr, /pivot_root\(2\)/);
  t.regex(r.stderr, /uts_namespaces\(7\)/);
  t.notRegex(r.stderr, /\x1b\[/, 'no colour codes when not a terminal');
  const tty = spawnSync('script', ['-qec', `sh ${CLEAN_FDS} ${BIN} run --rm --explain busybox true`, '/dev/null'], {
    env: { ...env, NO_COLOR: '' },
    encoding: 'utf8',
  });
  t.regex(tty.stdout, /\x1b\[[0-9;]*m\[1\]/, 'colour on a terminal');
});

it('doctor passes on this machine and says why', (t) => {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/tscontain.cjs'), 'doctor'], { env, encoding: 'utf8' });
  t.is(r.status, 0, r.stdout);
  t.regex(r.stdout, /namespace pid\s+PID 1: works/);
  t.regex(r.stdout, /tscontain run can work here/);
});

const demos: [string, RegExp[]][] = [
  [
    'demo-uts',
    [
      /hostname inside the container: demo-container/,
      /host's hostname before: (\S+)\nhostname inside the container: demo-container\nhost's hostname after: {2}\1/,
    ],
  ],
  ['demo-pid', [/^\s+1 ps -o pid,args$/m]],
  ['demo-mount', [/^\/tmp demo-tmpfs$/m, /^\/proc proc$/m, /mounts on the host made for containers: 0 /]],
  ['demo-chroot', [/ESCAPED: this is the host's \/etc\/os-release/]],
  ['demo-pivot', [/NOT ESCAPED/]],
  [
    'demo-cgroup-pids',
    [
      /pids.max = 20, refused forks \(pids.events\): max [1-9]/,
      /processes in the container: ([0-9]|1[0-9]|20) /,
      /the host still runs programs: yes/,
    ],
  ],
  ['demo-cgroup-memory', [/ran out of memory \(limit 32MiB\)/, /exit code: 137/]],
  ['demo-cgroup-cpu', [/nr_throttled [1-9]/]],
];
for (const [target, res] of demos) {
  (isRoot ? test.serial : test.serial.skip)(`make ${target} shows what it claims`, (t) => {
    const r = spawnSync('make', ['-s', '-C', REPO, target], { env, encoding: 'utf8', timeout: 600_000 });
    t.is(r.status, 0, r.stderr);
    for (const re of res) t.regex(r.stdout + r.stderr, re);
  });
}

test.after.always(removeTempDirs);
