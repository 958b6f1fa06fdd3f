// Root in a container is not root on the host: the default container against breakout probes.
// Every probe is harmless even where the isolation fails: kernel files are opened for append and
// never written, a disk is only read for a marker this test planted, mounts are the container's own.
import test from 'ava';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isRoot, tsc } from './helpers.js';
import { DEFAULT_CAPS, capHex, statusMask } from '../../src/kernel/capabilities.js';
import { cgroupRoot, detectVersion } from '../../src/kernel/cgroup.js';

const it = isRoot ? test : test.skip;
const v2 = detectVersion(cgroupRoot()) === 2;

/** Run a busybox sh script in a default container (plus options); stdout and stderr. */
async function probe(script: string, opts: string[] = []) {
  const r = await tsc(['run', '--rm', ...opts, 'busybox', 'sh', '-c', script]);
  return { ...r, all: r.stdout + r.stderr };
}

it("capabilities: docker's set in bounding, effective and permitted; none inheritable or ambient", async (t) => {
  const r = await probe('cat /proc/self/status');
  for (const f of ['CapBnd', 'CapEff', 'CapPrm'] as const) t.is(statusMask(r.stdout, f), DEFAULT_CAPS, f);
  t.is(statusMask(r.stdout, 'CapInh'), 0n);
  t.is(statusMask(r.stdout, 'CapAmb'), 0n);
  t.regex(r.stdout, /^NoNewPrivs:\s+0$/m, "docker's default");
  t.regex(r.stdout, /^Seccomp:\s+2$/m, 'a filter');
});

it('a non-root user gets no effective capabilities', async (t) => {
  const r = await probe('cat /proc/self/status', ['-u', '1000']);
  t.is(statusMask(r.stdout, 'CapEff'), 0n);
  t.is(statusMask(r.stdout, 'CapBnd'), DEFAULT_CAPS);
});

it('--cap-add, --cap-drop ALL, --privileged, no-new-privileges do what they say', async (t) => {
  const add = await probe('cat /proc/self/status', ['--cap-add', 'sys_admin']);
  t.is(statusMask(add.stdout, 'CapEff'), DEFAULT_CAPS | (1n << 21n));
  const none = await probe('cat /proc/self/status; chown 1 /tmp 2>&1 || echo chown-denied', ['--cap-drop', 'ALL']);
  t.is(statusMask(none.stdout, 'CapEff'), 0n);
  t.regex(none.stdout, /chown-denied/);
  const host = statusMask(readFileSync('/proc/self/status', 'utf8'), 'CapBnd');
  const priv = await probe('cat /proc/self/status', ['--privileged']);
  t.is(statusMask(priv.stdout, 'CapEff'), host, 'every capability root has here');
  t.regex(priv.stdout, /^Seccomp:\s+0$/m);
  const nnp = await probe('cat /proc/self/status', ['--security-opt', 'no-new-privileges']);
  t.regex(nnp.stdout, /^NoNewPrivs:\s+1$/m);
  t.is(capHex(DEFAULT_CAPS), '00000000a80425fb');
});

it('kernel settings: /proc/sys and friends are read-only, sysrq and core_pattern cannot be opened for writing', async (t) => {
  const r = await probe(
    [
      '( : >> /proc/sys/kernel/core_pattern ) 2>/dev/null && echo core_pattern-OPEN || echo core_pattern-refused',
      '( : >> /proc/sys/vm/drop_caches ) 2>/dev/null && echo drop_caches-OPEN || echo drop_caches-refused',
      '[ ! -e /proc/sysrq-trigger ] || { ( : >> /proc/sysrq-trigger ) 2>/dev/null && echo sysrq-OPEN || echo sysrq-refused; }',
      'mount -o remount,rw /sys 2>/dev/null && echo sys-RW || echo sys-stays-ro',
      'mkdir -p /mnt/s; mount -t sysfs sysfs /mnt/s 2>/dev/null && echo sysfs-MOUNTED || echo sysfs-refused',
    ].join('; '),
  );
  t.regex(r.stdout, /core_pattern-refused/);
  t.regex(r.stdout, /drop_caches-refused/);
  t.notRegex(r.stdout, /sysrq-OPEN/);
  t.regex(r.stdout, /sys-stays-ro/);
  t.regex(r.stdout, /sysfs-refused/);
});

it('kernel information: kallsyms shows no addresses, /proc/keys and /proc/timer_list are empty, /sys/firmware too', async (t) => {
  const r = await probe(
    [
      'head -1 /proc/kallsyms | cut -d" " -f1',
      'echo keys=$(wc -c < /proc/keys)',
      '[ ! -e /proc/timer_list ] || echo timer_list=$(wc -c < /proc/timer_list)',
      'echo firmware=$(ls -A /sys/firmware 2>/dev/null | wc -l)',
    ].join('; '),
  );
  t.regex(r.stdout, /^0+$/m, 'kallsyms addresses are zero');
  t.regex(r.stdout, /^keys=0$/m);
  t.notRegex(r.stdout, /^timer_list=[1-9]/m);
  t.regex(r.stdout, /^firmware=0$/m);
});

it("devices: a node the container makes for /dev/kmsg or the host's disk cannot be opened", async (t) => {
  const root = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === '/')!
    .split(' ')[2];
  const [maj, min] = root.split(':');
  const marker = `/tscontain-marker-${process.pid}`;
  writeFileSync(marker, 'host-secret\n');
  try {
    const r = await probe(
      [
        'mknod /tmp/kmsg c 1 11 && echo mknod-ok',
        'head -c 1 /tmp/kmsg >/dev/null 2>&1 && echo kmsg-READ || echo kmsg-refused',
        'head -c 1 /dev/kmsg >/dev/null 2>&1 && echo devkmsg-READ || echo devkmsg-absent',
        `mknod /tmp/disk b ${maj} ${min}`,
        'head -c 512 /tmp/disk >/dev/null 2>&1 && echo disk-READ || echo disk-refused',
        `mkdir -p /mnt/h && mount -o ro /tmp/disk /mnt/h 2>/dev/null && cat /mnt/h${marker}`,
        'echo data > /dev/null && echo null-works',
      ].join('; '),
    );
    t.regex(r.stdout, /mknod-ok/, 'MKNOD is kept, as docker keeps it');
    t.regex(r.stdout, /kmsg-refused/);
    t.regex(r.stdout, /devkmsg-absent/);
    t.regex(r.stdout, /disk-refused/);
    t.notRegex(r.stdout, /host-secret/);
    t.regex(r.stdout, /null-works/);
  } finally {
    rmSync(marker, { force: true });
  }
});

it('cgroups: the container sees only its own cgroup, and cannot mount the hierarchy without SYS_ADMIN', async (t) => {
  const r = await probe(
    'cat /proc/self/cgroup; mkdir -p /mnt/cg; mount -t cgroup -o memory cgroup /mnt/cg 2>/dev/null && echo MOUNTED || echo mount-refused',
  );
  for (const l of r.stdout.split('\n').filter((x) => /^\d+:/.test(x))) t.regex(l, /:\/$/, l);
  t.regex(r.stdout, /mount-refused/);
  // with SYS_ADMIN a cgroupfs mounted inside is rooted at the container's own cgroup
  const fs = v2 ? 'mount -t cgroup2 none /mnt/cg' : 'mount -t cgroup -o pids cgroup /mnt/cg';
  const a = await probe(`mkdir -p /mnt/cg; ${fs} && ls /mnt/cg; echo procs=$(wc -l < /mnt/cg/cgroup.procs)`, [
    '--cap-add',
    'SYS_ADMIN',
  ]);
  t.regex(a.stdout, /cgroup\.procs/, `mounted: ${a.stderr}`);
  t.notRegex(a.stdout, /tscontain/, 'no other cgroup in sight');
  t.notRegex(a.stdout, /release_agent/, "not the hierarchy's root");
});

it("seccomp: docker's profile denies unshare and keyctl-like calls with EPERM; unconfined lifts it", async (t) => {
  const r = await probe('unshare -U true 2>&1; echo rc=$?');
  t.regex(r.stdout, /Operation not permitted/);
  t.regex(r.stdout, /rc=1/);
  const u = await probe('unshare -U true; echo rc=$?', ['--security-opt', 'seccomp=unconfined']);
  t.regex(u.stdout, /rc=0/);
  const m = await probe('mkdir -p /mnt/t; mount -t tmpfs x /mnt/t 2>&1; echo rc=$?', [
    '--cap-add',
    'SYS_ADMIN',
    '--security-opt',
    'seccomp=unconfined',
  ]);
  t.regex(m.stdout, /rc=0/, 'mount with SYS_ADMIN and no filter');
});

it('the plan says plainly that --privileged is not isolated', async (t) => {
  const r = await tsc(['plan', '--privileged', 'busybox', 'true']);
  t.regex(r.stdout, /NOT isolated/);
});

it("-t: a terminal of the container's own (tty says /dev/pts/0), and no fd of the caller's", async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { BIN, CLEAN_FDS, env } = await import('./helpers.js');
  const inner = `sh ${CLEAN_FDS} ${BIN} run -t --rm busybox sh -c 'tty; ls -l /proc/$$/fd/; sleep 0.1'`;
  const r = spawnSync('script', ['-qec', inner, '/dev/null'], { env, encoding: 'utf8', timeout: 60000 });
  const lines = r.stdout
    .replace(/\r/g, '')
    .split('\n')
    .map((l) => l.replace(/^\0/, '').trim())
    .filter(Boolean);
  t.is(lines[0], '/dev/pts/0', r.stdout + r.stderr);
  const fds = lines.filter((l) => l.includes(' -> '));
  t.deepEqual(
    fds.map((l) => l.replace(/.* (\d+) -> /, '$1 ')),
    ['0 /dev/pts/0', '1 /dev/pts/0', '2 /dev/pts/0'],
    r.stdout,
  );
});

it('--init: PID 1 forwards SIGTERM, so a sleep stops at once; without it the signal is ignored', async (t) => {
  const { start, waitFor } = await import('./helpers.js');
  const c = start(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'echo ready; exec sleep 300']);
  await waitFor(c.stdout, /ready/);
  c.child.kill('SIGTERM');
  const r = await c.done;
  t.is(r.code, 143, r.stderr);
});

it("the container's environment never reaches a host program: LD_PRELOAD from an image or -e loads nowhere", async (t) => {
  const r = await probe('echo ok', ['-e', 'LD_PRELOAD=/nonexistent-tscontain.so']);
  t.is(r.code, 0, r.stderr);
  t.notRegex(r.all, /cannot be preloaded/, 'no host program (sh, setpriv, unshare, umount, perl) read it');
});

it('exec: a process joining the container gets its capabilities, seccomp filter and cgroup namespace, and no host fd', async (t) => {
  const { tsc: run } = await import('./helpers.js');
  const d = await run(['run', '-d', '--rm', '-e', 'LD_PRELOAD=/nonexistent-tscontain.so', 'busybox', 'sleep', '120']);
  t.is(d.code, 0, d.stderr);
  const id = d.stdout.trim();
  try {
    const e = await run(['exec', id, 'sh', '-c', 'cat /proc/self/status; cat /proc/self/cgroup']);
    t.is(e.code, 0, e.stderr);
    t.is(statusMask(e.stdout, 'CapEff'), DEFAULT_CAPS);
    t.is(statusMask(e.stdout, 'CapBnd'), DEFAULT_CAPS);
    t.regex(e.stdout, /^Seccomp:\s+2$/m);
    for (const l of e.stdout.split('\n').filter((x) => /^\d+:[^:]*:\//.test(x))) t.regex(l, /:\/$/, l);
    // the fds of an exec'd process, read from the host while it runs: stdin, stdout and stderr only
    const { start: begin, pidsOf } = await import('./helpers.js');
    const s = begin(['exec', id, 'sleep', '3141']);
    let pid: number | undefined;
    for (const end = Date.now() + 30000; !pid && Date.now() < end; await new Promise((r) => setTimeout(r, 20)))
      pid = pidsOf('sleep', '3141')[0];
    t.truthy(pid, "the exec'd sleep runs");
    t.deepEqual((await import('node:fs')).readdirSync(`/proc/${pid}/fd`).sort(), ['0', '1', '2']);
    s.child.kill('SIGKILL');
    process.kill(pid!, 'SIGKILL');
    await s.done;
    t.notRegex(e.stderr, /cannot be preloaded/);
  } finally {
    await run(['rm', '-f', id]);
  }
});
