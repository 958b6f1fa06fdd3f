import test from 'ava';
import { MASKED_PATHS, READONLY_PATHS } from '../../src/kernel/masks.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  isRoot,
  tsc,
  start,
  waitFor,
  until,
  pidsOf,
  cgroupPath,
  cgroupLine,
  env,
  killStarted,
  privateStore,
  removeStoreContainers,
  BIN,
  CLEAN_FDS,
  CGROUP_VERSION,
} from './helpers.js';

const it = isRoot ? test : test.skip;
const S3138 = String(3000 + Math.floor(Math.random() * 90000)); // a marker no other test or run shares
const S3137 = String(3000 + Math.floor(Math.random() * 90000)); // a marker no other test or run shares
const S3139 = String(3000 + Math.floor(Math.random() * 90000)); // a marker no other test or run shares
test.after.always(async () => {
  await killStarted();
  await removeStoreContainers();
});
const serial = isRoot ? test.serial : test.serial.skip;

it('hostname: set inside, the host keeps its own', async (t) => {
  const before = hostname();
  const r = await tsc(['run', '--rm', '--hostname', 'box1', 'busybox', 'hostname']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), 'box1');
  t.is(hostname(), before);
  const d = await tsc(['run', '--rm', 'busybox', 'sh', '-c', 'echo $HOSTNAME $(hostname)']);
  t.regex(d.stdout.trim(), /^([0-9a-f]{12}) \1$/, 'default hostname is the short id');
});

it('PID namespace: the command is PID 1 and host processes are invisible', async (t) => {
  const r = await tsc([
    'run',
    '--rm',
    'busybox',
    'sh',
    '-c',
    'echo pid=$$; ls /proc | grep -c "^[0-9]"; cat /proc/1/cmdline | tr "\\0" " "',
  ]);
  t.is(r.code, 0, r.stderr);
  const [pid, count, cmd] = r.stdout.trim().split('\n');
  t.is(pid, 'pid=1');
  t.true(Number(count) <= 4, `only the container's processes: ${count}`);
  t.is(cmd.trim(), 'sh -c echo pid=$$; ls /proc | grep -c "^[0-9]"; cat /proc/1/cmdline | tr "\\0" " "');
  const ps = await tsc(['run', '--rm', 'busybox', 'ps', '-o', 'pid,comm']);
  t.deepEqual(
    ps.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.trim()),
    ['1 ps'],
  );
});

it('mount namespace: a mount made inside never appears on the host', async (t) => {
  const c = start(
    [
      'run',
      '--rm',
      '-i',
      '--cap-add',
      'SYS_ADMIN',
      'busybox',
      'sh',
      '-c',
      'mount -t tmpfs tscmarker /tmp && echo mounted && read go && grep -c tscmarker /proc/mounts',
    ],
    { openStdin: true },
  );
  await waitFor(c.stdout, /mounted/);
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes('tscmarker'));
  t.false(readFileSync('/proc/1/mountinfo', 'utf8').includes('overlay'), 'the root overlay is not on the host either');
  c.child.stdin!.end('go\n');
  const r = await c.done;
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim().split('\n').pop(), '1');
});

it('root filesystem: pivot_root leaves no host root behind; /proc own, /sys read-only, minimal /dev, /tmp usable', async (t) => {
  const r = await tsc([
    'run',
    '--rm',
    'busybox',
    'sh',
    '-c',
    [
      'cut -d" " -f5 /proc/self/mountinfo | sort | tr "\\n" " "; echo',
      'grep " /sys " /proc/mounts | cut -d" " -f4 | cut -d, -f1',
      'ls -A /dev | tr "\\n" " "; echo',
      'echo data > /tmp/f && cat /tmp/f',
      'touch /sys/x 2>/dev/null && echo sys-writable || echo sys-ro',
      'echo x > /dev/mine && echo dev-writable',
    ].join('; '),
  ]);
  t.is(r.code, 0, r.stderr);
  const [mounts, sys, dev, tmp, sysw, devw] = r.stdout.trim().split('\n');
  const own = ['/', '/dev', '/dev/pts', '/dev/shm', '/proc', '/sys'];
  const masked: string[] = [...MASKED_PATHS, ...READONLY_PATHS];
  t.deepEqual(
    mounts
      .trim()
      .split(' ')
      .filter((m) => !masked.includes(m) && !/thermal_throttle$/.test(m)),
    own,
  );
  t.true(mounts.includes('/proc/sys'), 'and the masked and read-only paths');
  t.is(sys, 'ro');
  t.is(dev.trim(), 'fd full null ptmx pts random shm stderr stdin stdout tty urandom zero');
  t.is(tmp, 'data');
  t.is(sysw, 'sys-ro');
  t.is(devw, 'dev-writable');
  // /dev is the shared skeleton under each container's own layer: a write stays in its container
  t.false(existsSync(join(env.TSCONTAIN_ROOT, 'run', 'dev', 'mine')), 'the skeleton is unchanged');
  const other = await tsc([
    'run',
    '--rm',
    'busybox',
    'sh',
    '-c',
    'ls /dev/mine 2>&1; echo hi > /dev/null && echo null-works',
  ]);
  t.regex(other.stdout, /No such file[\s\S]*null-works/);
});

it("IPC namespace: the host's message queues are invisible", async (t) => {
  const id = execFileSync('ipcmk', ['-Q']).toString().match(/(\d+)/)![1];
  try {
    t.true(readFileSync('/proc/sysvipc/msg', 'utf8').trim().split('\n').length > 1, 'the host has a queue');
    const r = await tsc(['run', '--rm', 'busybox', 'sh', '-c', 'cat /proc/sysvipc/msg | wc -l']);
    t.is(r.stdout.trim(), '1', 'only the header line');
  } finally {
    execFileSync('ipcrm', ['-q', id]);
  }
});

it("network: --network none has only lo, up; --network host sees the host's links", async (t) => {
  const r = await tsc(['run', '--rm', '--network', 'none', 'busybox', 'ip', '-o', 'link']);
  t.is(r.code, 0, r.stderr);
  const links = r.stdout.trim().split('\n');
  t.is(links.length, 1);
  t.regex(links[0], /^1: lo: <LOOPBACK,UP,LOWER_UP>/);
  // the host's own interface (the one of its default route) is there with --network host
  const dev = /dev (\S+)/.exec(execFileSync('ip', ['route', 'show', 'default']).toString())?.[1] ?? 'lo';
  const h = await tsc(['run', '--rm', '--network', 'host', 'busybox', 'ip', '-o', 'link']);
  t.regex(h.stdout, new RegExp(`^\\d+: ${dev}[:@]`, 'm'));
});

it("the container's environment is its own: nothing of tscontain's (LANG, LC_ALL, a host variable), on both paths", async (t) => {
  for (const node of [false, true]) {
    const r = await tsc(['run', '--rm', '-e', 'ONLY=this', 'busybox', 'env'], {
      node,
      env: { ...env, LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8', HOST_SECRET: 'x' },
    });
    t.is(r.code, 0, r.stderr);
    const names = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('=')[0])
      .sort();
    t.deepEqual(names, ['HOME', 'HOSTNAME', 'ONLY', 'PATH'], `${node ? 'node' : 'sh'} path: ${r.stdout}`);
  }
});

it('-u, -e, --env-file, -w: user, environment and working directory', async (t) => {
  const envFile = `/tmp/tscontain-envfile-${process.pid}`;
  (await import('node:fs')).writeFileSync(envFile, '# comment\nFROMFILE=yes\nFOO=overridden-by-e\n');
  const r = await tsc([
    'run',
    '--rm',
    '-u',
    '65534:65534',
    '--env-file',
    envFile,
    '-e',
    'FOO=bar baz',
    '-w',
    '/var/tmp',
    'busybox',
    'sh',
    '-c',
    'id -u; id -g; pwd; echo "$FOO|$FROMFILE|$HOME"; touch /root/x 2>/dev/null || echo cannot-write-root',
  ]);
  (await import('node:fs')).rmSync(envFile);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), [
    '65534',
    '65534',
    '/var/tmp',
    'bar baz|yes|/nonexistent',
    'cannot-write-root',
  ]);
  const n = await tsc(['run', '--rm', '-u', 'nobody', '-w', '/newdir', 'busybox', 'sh', '-c', 'id -un; pwd']);
  t.deepEqual(n.stdout.trim().split('\n'), ['nobody', '/newdir'], 'names from the image; a missing workdir is created');
});

it("file descriptors tscontain inherited do not reach the container; bin/tscontain's process becomes the supervisor", async (t) => {
  const { spawn } = await import('node:child_process');
  const cases: [string, string, boolean][] = [
    ['fds 3-9: closed by bin/tscontain, which then execs the plan', '3</dev/null 4</dev/null 9</dev/null', true],
    ['an fd above 9 (sh cannot close it): Node.js runs the plan and closes it', '12</dev/null', false],
  ];
  for (const [what, fds, handedOff] of cases) {
    const e = privateStore();
    const c = spawn(
      '/bin/sh',
      [
        CLEAN_FDS,
        '/bin/bash',
        '-c',
        `exec ${fds}; exec "$0" "$@"`,
        BIN,
        'run',
        '--rm',
        'busybox',
        'sh',
        '-c',
        `ls /proc/self/fd; exec sleep ${S3139}`,
      ],
      { env: e, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    await waitFor(() => String(pidsOf('sleep', S3139).length), /^1$/);
    const run = join(e.TSCONTAIN_ROOT!, 'run');
    const id = readdirSync(run).find((d) => /^[0-9a-f]{64}$/.test(d))!;
    const pidIn = (f: string) => Number(readFileSync(join(run, id, f), 'utf8').split(' ')[0]);
    t.is(
      pidIn('supervisor') === c.pid,
      handedOff,
      `${what}: the supervisor is ${handedOff ? '' : 'not '}the process that was started`,
    );
    t.is(
      pidIn('starting'),
      c.pid!,
      `${what}: until the plan ran, the container was claimed by the process that was started`,
    );
    process.kill(pidsOf('sleep', S3139)[0], 'SIGKILL');
    const code = await new Promise((res) => c.on('close', res));
    t.is(code, 137, what);
    t.deepEqual(
      out
        .trim()
        .split(/\s+/)
        .map(Number)
        .sort((a, b) => a - b),
      [0, 1, 2, 3],
      `${what}: stdin, stdout, stderr and ls's own directory`,
    );
  }
});

/** Where cgroup2 is mounted: /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified on a hybrid one. */
function cgroup2Mount(): string | undefined {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - cgroup2 /.test(l));
  return ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'].find((d) => mounts.some((l) => l.split(' ')[4] === d));
}
const CG2 = cgroup2Mount();

// The v2 driver for real: join, limits where the tree has the controllers (pure v2), removal. On a
// hybrid machine the v2 tree (/sys/fs/cgroup/unified) has no controllers: join and removal only.
(isRoot && CG2 ? test : test.skip)('the cgroup v2 driver on a real cgroup2 tree', async (t) => {
  const root = CG2!;
  const enabled = readFileSync(join(root, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
  const limits = ['memory', 'pids', 'cpu'].every((c) => enabled.includes(c));
  t.log(`cgroup2 at ${root}, controllers enabled for children: ${enabled.join(' ') || 'none'}`);
  const args = limits ? ['-m', '48m', '--pids-limit', '33', '--cpus', '0.5', '--cpu-shares', '1024'] : [];
  const c = start(
    ['run', '--rm', '-i', '--cgroupns', 'host', ...args, 'busybox', 'sh', '-c', 'cat /proc/self/cgroup; read go'],
    { env: { ...env, TSCONTAIN_CGROUP_ROOT: root }, openStdin: true },
  );
  const id = (await waitFor(c.stdout, /^0::\/tscontain\/([0-9a-f]{64})$/m))[1];
  const dir = join(root, 'tscontain', id);
  const read = (f: string) => readFileSync(join(dir, f), 'utf8').trim();
  t.true(existsSync(dir), `${dir} exists while the container runs`);
  if (limits) {
    t.is(read('memory.max'), String(48 * 1024 * 1024));
    t.is(read('pids.max'), '33');
    t.is(read('cpu.max'), '50000 100000');
    t.is(read('cpu.weight'), '100', "docker's default shares give the kernel's default weight");
  }
  c.child.stdin!.end('go\n');
  const r = await c.done;
  t.is(r.code, 0, r.stderr);
  t.false(existsSync(dir), 'removed when the container ended');
});

it('-i passes stdin; without -i the container reads /dev/null', async (t) => {
  const r = await tsc(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'read line; echo got:$line'], { input: 'hello\n' });
  t.is(r.stdout.trim(), 'got:hello');
  const n = await tsc(['run', '--rm', 'busybox', 'cat'], { input: 'ignored\n' });
  t.is(n.stdout, '');
  t.is(n.code, 0);
});

it('-it gives a working interactive shell (under script(1) for a terminal)', async (t) => {
  const cmd = `TSCONTAIN_ROOT=${env.TSCONTAIN_ROOT} sh ${CLEAN_FDS} ${BIN} run -it --rm -h itbox busybox sh`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { input: 'echo $((6*7)) $TERM; hostname\nexit 5\n', env });
  t.is(r.status, 5);
  t.regex(r.stdout.toString(), /42 xterm/);
  t.regex(r.stdout.toString(), /itbox/);
});

it('exit codes: own code, 127 not found, 126 not executable, 125 runtime errors', async (t) => {
  t.is((await tsc(['run', '--rm', 'busybox', 'sh', '-c', 'exit 3'])).code, 3);
  const nf = await tsc(['run', '--rm', 'busybox', 'nosuchcmd']);
  t.is(nf.code, 127);
  t.regex(nf.stderr, /executable file not found/);
  const ne = await tsc(['run', '--rm', 'busybox', '/etc/passwd']);
  t.is(ne.code, 126);
  t.is((await tsc(['run', '--rm', 'busybox', 'sh', '-c', 'nosuch-inside'])).code, 127, 'the shell inside says 127 too');
});

it('a container killed by SIGKILL exits 137', async (t) => {
  const c = start(['run', '--rm', 'busybox', 'sleep', S3137]);
  await waitFor(() => String(pidsOf('sleep', S3137).length), /^1$/);
  process.kill(pidsOf('sleep', S3137)[0], 'SIGKILL');
  const r = await c.done;
  t.is(r.code, 137);
  t.notRegex(r.stderr, /sigprocmask/);
});

serial('OOM: a memory hog under -m 32m exits 137 and says so', async (t) => {
  const r = await tsc([
    'run',
    '--rm',
    '-m',
    '32m',
    'busybox',
    'sh',
    '-c',
    'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived',
  ]);
  t.is(r.code, 137);
  t.notRegex(r.stdout, /survived/);
  t.regex(r.stderr, /ran out of memory \(limit 32MiB\) and was killed/);
});

// PID 1 shares the 20 pids with the bomb, and busybox sh exits when one of its forks fails: after
// the bomb it uses builtins only (read, a glob, echo) and waits for the test on stdin.
const BOMB =
  'cat /proc/self/cgroup; echo bombing; bomb() { bomb | bomb & }; bomb 2>/dev/null; read go; set -- /proc/[0-9]*; echo procs=$#';

serial('pids: a fork bomb under --pids-limit 20 is contained and the host keeps working', async (t) => {
  const c = start(['run', '--rm', '-i', '--cgroupns', 'host', '--pids-limit', '20', 'busybox', 'sh', '-c', BOMB], {
    openStdin: true,
  });
  const seen = () => `stdout: ${c.stdout()}\nstderr: ${c.stderr()}`;
  await waitFor(c.stdout, /bombing/);
  const cg = cgroupPath(c.stdout(), 'pids');
  const events = await until(
    () => readFileSync(`${cg}/pids.events`, 'utf8').match(/max [1-9]/),
    () => `refused forks in ${cg}/pids.events; ${seen()}`,
  );
  t.truthy(events, 'the limit was hit');
  const host = spawnSync('/bin/echo', ['host ok']);
  t.is(host.stdout.toString().trim(), 'host ok', 'the host can still start processes');
  const current = Number(readFileSync(`${cg}/pids.current`, 'utf8'));
  t.true(current <= 20, `pids.current ${current}; ${seen()}`);
  c.child.stdin!.end('go\n');
  const r = await c.done;
  const procs = Number(r.stdout.match(/procs=(\d+)/)?.[1] ?? 99);
  t.true(procs <= 20, `at most 20 processes: ${procs}; ${seen()}`);
  t.is(r.code, 0, seen());
  t.false(existsSync(cg), 'its cgroup is gone');
});

serial('cpus: a busy loop under --cpus 0.2 is throttled', async (t) => {
  const c = start(
    [
      'run',
      '--rm',
      '-i',
      '--cgroupns',
      'host',
      '--cpus',
      '0.2',
      'busybox',
      'sh',
      '-c',
      'cat /proc/self/cgroup; sh -c "while :; do :; done" & echo spinning; read go; kill $!; echo done',
    ],
    { openStdin: true },
  );
  await waitFor(c.stdout, /spinning/);
  const cpu = cgroupPath(c.stdout(), 'cpu');
  const acct = CGROUP_VERSION === 1 ? cpu.replace('/cpu/', '/cpuacct/') : cpu;
  const usage = () =>
    CGROUP_VERSION === 1
      ? Number(readFileSync(`${acct}/cpuacct.usage`, 'utf8')) / 1e9
      : Number(readFileSync(`${acct}/cpu.stat`, 'utf8').match(/usage_usec (\d+)/)![1]) / 1e6;
  // the quota caps the loop at 0.2 CPU-seconds per second however fast or loaded the machine is:
  // wait until it used 0.4 of them, which takes at least 2 s, and compare with the time it took
  const u0 = usage();
  const t0 = Date.now();
  await until(
    () => usage() - u0 >= 0.4,
    () => `the loop to use 0.4 CPU-seconds (used ${(usage() - u0).toFixed(2)})`,
  );
  const share = (usage() - u0) / ((Date.now() - t0) / 1000);
  const stat = readFileSync(`${cpu}/cpu.stat`, 'utf8');
  t.true(Number(stat.match(/nr_throttled (\d+)/)![1]) > 0, stat);
  t.true(share < 0.3, `used ${share.toFixed(2)} CPUs`);
  c.child.stdin!.end('go\n');
  t.regex((await c.done).stdout, /done/);
});

it("signals: a container that traps TERM exits with its trap's code when tscontain gets SIGTERM", async (t) => {
  const c = start([
    'run',
    '--rm',
    'busybox',
    'sh',
    '-c',
    'trap "echo got-TERM; exit 42" TERM; echo ready; while :; do sleep 0.1; done',
  ]);
  await waitFor(c.stdout, /ready/);
  c.child.kill('SIGTERM');
  const r = await c.done;
  t.is(r.code, 42);
  t.regex(r.stdout, /got-TERM/);
});

it('signals: HUP, USR1, USR2, INT, QUIT reach PID 1', async (t) => {
  const c = start([
    'run',
    '--rm',
    'busybox',
    'sh',
    '-c',
    'for s in HUP USR1 USR2 INT QUIT; do trap "echo got-$s" $s; done; trap "exit 7" TERM; echo ready; while :; do sleep 0.1; done',
  ]);
  await waitFor(c.stdout, /ready/);
  for (const s of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGQUIT'] as const) {
    c.child.kill(s);
    await waitFor(c.stdout, new RegExp(`got-${s.slice(3)}`));
  }
  c.child.kill('SIGTERM');
  const r = await c.done;
  t.is(r.code, 7);
  t.is(r.stdout.match(/got-/g)!.length, 5);
});

it("SIGKILL of tscontain kills the container; what it left is removed (by Node.js's supervisor at once, else by the next command)", async (t) => {
  for (const node of [true, false]) {
    const what = node ? 'node bin/tscontain.cjs' : 'bin/tscontain';
    const c = start(
      ['run', '--rm', '--cgroupns', 'host', 'busybox', 'sh', '-c', `cat /proc/self/cgroup; sleep ${S3138}`],
      { node },
    );
    await waitFor(() => String(pidsOf('sleep', S3138).length), /^1$/);
    await waitFor(c.stdout, cgroupLine('memory'));
    const cg = cgroupPath(c.stdout(), 'memory');
    const id = cg.split('/').pop()!;
    c.child.kill('SIGKILL');
    await c.done;
    await until(() => !pidsOf('sleep', S3138).length, `${what}: the container to die with it`).catch(() => undefined);
    t.deepEqual(pidsOf('sleep', S3138), [], `${what}: the container died with it`);
    // the supervisor itself was killed: the next command reconciles (each command tries again)
    await until(async () => (node || (await tsc(['ps']))) && !existsSync(cg), `${what}: ${cg} to be removed`).catch(
      () => undefined,
    );
    t.false(existsSync(cg), `${what}: cgroup removed`);
    t.false(existsSync(`${env.TSCONTAIN_ROOT}/run/${id}`), `${what}: runtime state removed`);
    t.false(existsSync(`${env.TSCONTAIN_ROOT}/lib/containers/${id}`), `${what}: --rm honoured`);
  }
});

it('without --rm the container is kept, listed by ps -a and removed by rm', async (t) => {
  const r = await tsc(['run', '--name', `kept${process.pid}`, 'busybox', 'sh', '-c', 'exit 4']);
  t.is(r.code, 4);
  const ps = await tsc(['ps', '-a']);
  t.regex(ps.stdout, new RegExp(`Exited \\(4\\).*kept${process.pid}`));
  const rm = await tsc(['rm', `kept${process.pid}`]);
  t.is(rm.code, 0, rm.stderr);
  t.notRegex((await tsc(['ps', '-a'])).stdout, new RegExp(`kept${process.pid}`));
});

it('--no-pivot runs with chroot', async (t) => {
  const r = await tsc(['run', '--rm', '--no-pivot', 'busybox', 'sh', '-c', 'echo $$; ls /']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^1\n/);
  t.regex(r.stdout, /\bproc\b/);
});

it('the image is never changed by a container', async (t) => {
  const r = await tsc(['run', '--rm', 'busybox', 'sh', '-c', 'echo x > /etc/changed && rm /bin/ls && echo ok']);
  t.is(r.stdout.trim(), 'ok');
  const img = `${env.TSCONTAIN_ROOT}/lib/images/busybox/rootfs`;
  t.false(existsSync(`${img}/etc/changed`));
  t.true(readdirSync(`${img}/bin`).includes('ls'));
  const ro = await tsc(['run', '--rm', '--read-only', 'busybox', 'sh', '-c', 'touch /x 2>/dev/null || echo read-only']);
  t.is(ro.stdout.trim(), 'read-only');
});
