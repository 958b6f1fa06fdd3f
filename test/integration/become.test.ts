// become.pl against the kernel, as root: what /proc/self/status, /proc/self/cgroup and the
// terminal of the command it becomes say. Run on the host (the command is a child of the test:
// whatever it gets, only it has), in test cgroups of its own, in `unshare --mount` for the
// cgroupfs mounts, and once the real way: after pivot_root, from the detached old root, via ld.so.
import test from 'ava';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { allCaps, capabilityMask, capHex, DEFAULT_CAPS, statusMask } from '../../src/kernel/capabilities.js';
import { hostTools } from '../../src/host/tools.js';
import { env as tscEnv, isRoot, REPO, tsc } from './helpers.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

const it = isRoot ? test : test.skip;
const BECOME = join(REPO, 'src', 'kernel', 'become.pl');
const PATH = 'PATH=/usr/sbin:/usr/bin:/sbin:/bin';
const HOST_BND = statusMask(readFileSync('/proc/self/status', 'utf8'), 'CapBnd')!;
const CGROUPS = ['/sys/fs/cgroup/pids', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'].filter(
  (d, _i, a) =>
    existsSync(join(d, 'cgroup.procs')) && !(d === '/sys/fs/cgroup' && a.slice(0, 2).some((x) => existsSync(x))),
);
const CG_NAME = `tscontain-test-become-${process.pid}`;
const made: string[] = [];

test.after.always(async () => {
  removeTempDirs();
  for (const d of made)
    await poll(() => {
      try {
        rmdirSync(d);
        return true;
      } catch {
        return !existsSync(d);
      }
    });
});

async function poll(ok: () => boolean, ms = 10000) {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
    if (ok()) return true;
  }
  return false;
}

type Run = SpawnSyncReturns<string>;
/** perl become.pl ARGS, started as the plan must start it: with an empty environment. */
const become = (args: string[], cwd = '/'): Run =>
  spawnSync('perl', [BECOME, ...args], { encoding: 'utf8', env: {}, cwd });
/** the same, with sh before it (as root, full capabilities) to set things up: sh -c SCRIPT sh ARGS... */
const viaSh = (script: string, args: string[]): Run =>
  spawnSync('sh', ['-c', script, 'sh', ...args], { encoding: 'utf8', env: {} });

const field = (status: string, name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1].trim();
const SHOW = ['sh', '-c', 'cat /proc/self/status; echo "cwd=$(pwd)"; env'];

function caps(r: Run) {
  const f = (n: string) => capHex(statusMask(r.stdout, n as 'CapEff')!);
  return { eff: f('CapEff'), prm: f('CapPrm'), bnd: f('CapBnd'), inh: f('CapInh'), amb: f('CapAmb') };
}

it("root with docker's set: bounding, effective and permitted are the set; nothing inheritable or ambient", (t) => {
  // the caller has inheritable and ambient capabilities, a supplementary group and an environment: none of
  // them may reach the command
  const caller = ['--inh-caps', '+net_admin,+sys_admin', '--ambient-caps', '+net_admin,+sys_admin', '--groups', '4'];
  const args = [BECOME, '--caps', capHex(DEFAULT_CAPS), '--env', PATH, '--env', 'A=b c', '--', ...SHOW];
  const r = spawnSync('setpriv', [...caller, 'perl', ...args], { encoding: 'utf8', env: { CALLER: 'x' } });
  t.is(r.status, 0, r.stderr);
  const want = capHex(DEFAULT_CAPS & HOST_BND);
  t.deepEqual(caps(r), { eff: want, prm: want, bnd: want, inh: '0000000000000000', amb: '0000000000000000' });
  t.is(field(r.stdout, 'NoNewPrivs'), '0');
  t.is(field(r.stdout, 'Uid'), '0\t0\t0\t0');
  t.is(field(r.stdout, 'Groups'), '', 'no supplementary groups of the caller');
  t.regex(r.stdout, /^cwd=\/$/m);
  const env = r.stdout
    .slice(r.stdout.indexOf('cwd='))
    .split('\n')
    .slice(1)
    .filter((l) => l && !/^(PWD|SHLVL|_)=/.test(l));
  t.deepEqual(env.sort(), ['A=b c', PATH], 'the environment is exactly --env');
});

it('--cap-drop ALL, --cap-add, --privileged: the masks reach the kernel (what root has of them)', (t) => {
  const options = [
    { capDrop: ['ALL'] },
    { capDrop: ['ALL'], capAdd: ['NET_BIND_SERVICE'] },
    { capAdd: ['SYS_ADMIN'] },
    { privileged: true },
  ];
  for (const o of options) {
    const mask = capabilityMask(o);
    const r = become(['--caps', capHex(mask), '--', 'cat', '/proc/self/status']);
    t.is(r.status, 0, r.stderr);
    const want = capHex(mask & HOST_BND);
    t.like(caps(r), { eff: want, prm: want, bnd: want, inh: '0000000000000000' }, JSON.stringify(o));
  }
});

it('a non-root user: no effective or permitted capabilities, the bounding set as asked; ids and groups', (t) => {
  const ids = ['--uid', '65534', '--gid', '65533', '--groups', '10,20,65533'];
  const r = become(['--caps', capHex(DEFAULT_CAPS), ...ids, '--', 'cat', '/proc/self/status']);
  t.is(r.status, 0, r.stderr);
  const none = '0000000000000000';
  t.deepEqual(caps(r), { eff: none, prm: none, bnd: capHex(DEFAULT_CAPS & HOST_BND), inh: none, amb: none });
  t.is(field(r.stdout, 'Uid'), '65534\t65534\t65534\t65534');
  t.is(field(r.stdout, 'Gid'), '65533\t65533\t65533\t65533');
  t.is(field(r.stdout, 'Groups'), '10 20 65533');
});

it('--wd: a directory only the user may enter, and one only root may enter', (t) => {
  const d = tempDir('tscontain-become-');
  const mine = join(d, 'mine');
  mkdirSync(mine, { mode: 0o700 });
  chownSync(mine, 65534, 65534);
  chmodSync(d, 0o755);
  const r = become(['--caps', '0', '--uid', '65534', '--gid', '65534', '--wd', mine, '--', 'sh', '-c', 'pwd']);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.trim(), mine);
  const rootOnly = join(d, 'root');
  mkdirSync(rootOnly, { mode: 0o700 });
  const s = become(['--caps', capHex(DEFAULT_CAPS), '--uid', '65534', '--gid', '65534', '--wd', rootOnly, '--', 'pwd']);
  t.is(s.status, 0, s.stderr);
  t.is(s.stdout.trim(), rootOnly, 'entered as root, like runc; the user cannot reopen it');
  const m = become(['--caps', '0', '--wd', join(d, 'missing'), '--', 'true']);
  t.is(m.status, 125);
  t.regex(m.stderr, /^tscontain: cannot change to the working directory .*missing: No such file or directory\n$/);
});

it('--nnp sets no_new_privs, for root and for a user', (t) => {
  for (const ids of [[], ['--uid', '65534', '--gid', '65534']]) {
    const r = become(['--caps', capHex(DEFAULT_CAPS), ...ids, '--nnp', '--', 'cat', '/proc/self/status']);
    t.is(r.status, 0, r.stderr);
    t.is(field(r.stdout, 'NoNewPrivs'), '1');
    t.is(field(become(['--caps', '0', ...ids, '--', 'cat', '/proc/self/status']).stdout, 'NoNewPrivs'), '0');
  }
});

it('exit codes as docker: 127 not found, 126 not executable, one line on stderr', (t) => {
  const d = tempDir('tscontain-become-');
  writeFileSync(join(d, 'prog'), '#!/bin/sh\necho found $0\n', { mode: 0o755 });
  writeFileSync(join(d, 'data'), 'x', { mode: 0o644 });
  const cases: [string[], number, RegExp][] = [
    [['--env', `PATH=${d}`, '--', 'nosuch'], 127, /^tscontain: exec "nosuch": executable file not found in \$PATH\n$/],
    [['--', '/nosuch/x'], 127, /^tscontain: exec "\/nosuch\/x": no such file or directory\n$/],
    [['--', join(d, 'data')], 126, /: permission denied\n$/],
    [['--', d], 126, /: permission denied\n$/],
    [['--', 'bad\x1b[2Jname'], 127, /^tscontain: exec "bad\\x1b\[2Jname": executable file not found in \$PATH\n$/],
    [['--env', `PATH=/nosuch:${d}`, '--', 'prog', 'a'], 0, /^$/],
  ];
  for (const [args, code, err] of cases) {
    const r = become(['--caps', '0', ...args]);
    t.is(r.status, code, args.join(' '));
    t.regex(r.stderr, err);
  }
  const found = become(['--caps', '0', '--env', `PATH=${d}`, '--', 'prog', 'a']);
  t.is(found.stdout, `found ${join(d, 'prog')}\n`, 'PATH of --env searched');
});

it('only fds 0, 1, 2 and --preserve-fds reach the command', (t) => {
  const script = 'exec 3</dev/null 4</dev/null 7</dev/null; exec "$@"';
  const show = ['--', 'sh', '-c', 'for f in 3 4 7; do [ -e /proc/$$/fd/$f ] && echo $f; done; :'];
  const none = viaSh(script, ['perl', BECOME, '--caps', '0', ...show]);
  t.is(none.status, 0, none.stderr);
  t.is(none.stdout, '');
  const two = viaSh(script, ['perl', BECOME, '--caps', '0', '--preserve-fds', '2', ...show]);
  t.is(two.stdout, '3\n4\n');
  const closed = viaSh('exec 3</dev/null; exec "$@"', ['perl', BECOME, '--caps', '0', '--preserve-fds', '2', ...show]);
  t.is(closed.status, 125);
  t.regex(closed.stderr, /fd 4 \(--preserve-fds\) is not open/);
});

it('the environment of the caller: refused, the loader and perl would have read it', (t) => {
  for (const v of ['LD_PRELOAD', 'PERL5OPT', 'PERL5LIB', 'GLIBC_TUNABLES']) {
    const r = spawnSync('perl', [BECOME, '--caps', '0', '--', 'true'], { encoding: 'utf8', env: { [v]: '' } });
    t.is(r.status, 125, v);
    t.regex(r.stderr, new RegExp(`clean environment \\("${v}" is set\\)`));
  }
});

// ---- cgroup namespace ----

/** The test's own cgroups (v1 pids and v2), made once. */
function testCgroups(): string[] {
  return CGROUPS.map((root) => {
    const d = join(root, CG_NAME);
    if (!existsSync(d)) {
      mkdirSync(d);
      made.push(d);
    }
    return d;
  });
}
const joinThen = 'for d in $CGS; do echo $$ > "$d/cgroup.procs"; done; exec "$@"';
const inCgroups = (args: string[], cgs: string[], wrap: string[] = []) =>
  spawnSync('sh', ['-c', joinThen, 'sh', ...wrap, 'perl', BECOME, ...args], {
    encoding: 'utf8',
    env: { CGS: cgs.join(' ') },
  });

it('--cgroupns: /proc/self/cgroup shows / for every hierarchy (it shows the cgroup without)', (t) => {
  if (!CGROUPS.length) return t.pass('no cgroupfs');
  const cgs = testCgroups();
  const r = inCgroups(['--cgroupns', '--caps', capHex(DEFAULT_CAPS), '--', 'cat', '/proc/self/cgroup'], cgs);
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  for (const l of lines) t.regex(l, /^\d+:[^:]*:\/$/);
  if (cgs.some((d) => d.includes('/pids/'))) t.true(lines.some((l) => /^\d+:pids:\/$/.test(l)));
  const without = inCgroups(['--caps', capHex(DEFAULT_CAPS), '--', 'cat', '/proc/self/cgroup'], cgs);
  t.regex(without.stdout, new RegExp(`:/${CG_NAME}$`, 'm'));
});

it("--cgroupns: a cgroupfs mounted inside (v2 and v1 pids) shows only the container's own cgroup", (t) => {
  if (!CGROUPS.length) return t.pass('no cgroupfs');
  const cgs = testCgroups();
  const mnt = tempDir('tscontain-become-mnt-');
  mkdirSync(join(mnt, 'v2'));
  mkdirSync(join(mnt, 'v1'));
  // read only: list the root of each mount and the pids in it
  const look = `mount -t cgroup2 none ${mnt}/v2 && ls ${mnt}/v2 && cat ${mnt}/v2/cgroup.procs && echo --- &&
    { ! [ -d /sys/fs/cgroup/pids ] ||
      { mount -t cgroup -o pids none ${mnt}/v1 && ls ${mnt}/v1 && cat ${mnt}/v1/cgroup.procs; }; }`;
  const wrap = ['unshare', '--mount', '--propagation', 'private'];
  const run = (ns: string[]) =>
    inCgroups([...ns, '--caps', capHex(allCaps()), '--', 'sh', '-c', `echo $$; ${look}`], cgs, wrap);
  const r = run(['--cgroupns']);
  t.is(r.status, 0, r.stderr);
  const [pid, ...rest] = r.stdout.split('\n');
  t.false(r.stdout.includes(CG_NAME), 'no other cgroup is visible');
  t.true(rest.includes(pid), 'its own process is in the root it sees');
  t.true(run([]).stdout.includes(CG_NAME), "without: the host's tree");
});

// ---- seccomp ----

const AUDIT_ARCH: Record<string, number> = { x64: 0xc000003e, arm64: 0xc00000b7 };
const NR: Record<string, Record<string, number[]>> = {
  x64: { mkdir: [83, 258], capset: [126], mount_setattr: [442] },
  arm64: { mkdir: [34], capset: [91], mount_setattr: [442] },
};
const bpf = (code: number, jt: number, jf: number, k: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(code, 0);
  b.writeUInt8(jt, 2);
  b.writeUInt8(jf, 3);
  b.writeUInt32LE(k >>> 0, 4);
  return b;
};
/** A filter that fails the given system calls with errno; other architectures are killed. */
function denyFilter(calls: string[], errno: number): string {
  const nrs = calls.flatMap((c) => NR[process.arch][c]);
  // ld arch; jeq ARCH ? skip : kill; ld nr; (jeq NR ? errno : next)...; allow
  const prog = [
    bpf(0x20, 0, 0, 4),
    bpf(0x15, 1, 0, AUDIT_ARCH[process.arch]),
    bpf(0x06, 0, 0, 0x80000000),
    bpf(0x20, 0, 0, 0),
  ];
  for (const nr of nrs) prog.push(bpf(0x15, 0, 1, nr), bpf(0x06, 0, 0, 0x50000 | errno));
  prog.push(bpf(0x06, 0, 0, 0x7fff0000));
  const f = join(tempDir('tscontain-become-'), 'filter.bpf');
  writeFileSync(f, Buffer.concat(prog));
  return f;
}
const ENOTSUP = 95; // a number mkdir never fails with by itself

const seccompIt = isRoot && AUDIT_ARCH[process.arch] ? test : test.skip;
seccompIt('--seccomp: the filter holds for the command, with and without no_new_privs, as root and as a user', (t) => {
  const f = denyFilter(['mkdir'], ENOTSUP);
  const d = tempDir('tscontain-become-');
  chmodSync(d, 0o1777);
  for (const ids of [[], ['--uid', '65534', '--gid', '65534']]) {
    for (const nnp of [[], ['--nnp']]) {
      const r = become([
        '--caps',
        capHex(DEFAULT_CAPS),
        ...ids,
        ...nnp,
        '--seccomp',
        f,
        '--wd',
        d,
        '--',
        'sh',
        '-c',
        'mkdir x 2>&1; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status; ls -d .',
      ]);
      const what = [...ids, ...nnp].join(' ') || 'root';
      t.is(r.status, 0, `${what}: ${r.stderr}`);
      t.regex(r.stdout, /mkdir: .*x.*: Operation not supported/, what);
      t.regex(r.stdout, /^Seccomp:\s+2$/m, what);
      t.regex(r.stdout, new RegExp(`^NoNewPrivs:\\s+${nnp.length}$`, 'm'), what);
      t.regex(r.stdout, /^\.$/m, 'other calls work');
    }
  }
  const none = become(['--caps', '0', '--wd', d, '--', 'sh', '-c', 'mkdir y && echo made']);
  t.is(none.stdout, 'made\n', 'without --seccomp: no filter');
});

seccompIt('--seccomp: loaded before the capabilities go without no_new_privs, after them with it', (t) => {
  // a filter that refuses capset shows which of become.pl's own calls run under it
  const f = denyFilter(['capset'], ENOTSUP);
  const early = become(['--caps', capHex(DEFAULT_CAPS), '--seccomp', f, '--', 'true']);
  t.is(early.status, 125);
  t.regex(early.stderr, /^tscontain: capset failed: Operation not supported\n$/);
  const late = become(['--caps', capHex(DEFAULT_CAPS), '--nnp', '--seccomp', f, '--', 'true']);
  t.is(late.status, 0, late.stderr);
});

// ---- terminal ----

// Test side: a new pty from the host's devpts; the child runs ARGS with PTY replaced by the slave's
// path; the parent relays the master's output until the child is gone.
const PTY_RUN = String.raw`
sysopen(my $m, '/dev/ptmx', 2 | 0400) or die "ptmx: $!";
my $z = pack('i', 0); ioctl($m, 0x40045431, $z) or die "unlock: $!";
my $n = pack('i', 0); ioctl($m, 0x80045430, $n) or die "ptn: $!";
my $path = '/dev/pts/' . unpack('i', $n);
my $pid = fork() // die "fork: $!";
if (!$pid) { close $m; exec { $ARGV[0] } map { $_ eq 'PTY' ? $path : $_ } @ARGV; die "exec: $!" }
my ($out, $st, $rin) = ('', undef, '');
vec($rin, fileno $m, 1) = 1;
while (1) {
  if (select(my $r = $rin, undef, undef, 0.1) > 0) { sysread($m, my $b, 65536) or last; $out .= $b; next }
  if (defined $st) { last } elsif (waitpid($pid, 1) > 0) { $st = $? }
}
waitpid($pid, 0) unless defined $st; $st //= $?;
print "PTY=$path\nSTATUS=", $st >> 8, "\n$out";
`;

it('--tty: a new session whose controlling terminal is the pty, on fds 0-2, owned by the user', (t) => {
  const helper = join(tempDir('tscontain-become-'), 'pty-run.pl');
  writeFileSync(helper, PTY_RUN);
  const show =
    'tty; readlink /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2; ' +
    'echo "$$ $(cut -d" " -f6,7 /proc/$$/stat)"; stat -c %u:%g "$(tty)"';
  for (const [uid, gid] of [
    [0, 0],
    [65534, 65533],
  ]) {
    const args = ['--caps', capHex(DEFAULT_CAPS), '--uid', String(uid), '--gid', String(gid), '--tty', 'PTY'];
    const r = spawnSync('perl', [helper, 'perl', BECOME, ...args, '--', 'sh', '-c', show], {
      encoding: 'utf8',
      env: {},
    });
    t.is(r.status, 0, r.stderr);
    const pty = /^PTY=(.*)$/m.exec(r.stdout)![1];
    t.regex(r.stdout, /^STATUS=0$/m, r.stdout);
    const lines = r.stdout
      .split('\n')
      .slice(2)
      .map((l) => l.replace(/\r$/, ''));
    t.is(lines[0], pty, 'tty names the slave');
    t.deepEqual(lines.slice(1, 4), [pty, pty, pty]);
    const [pid, sid, ttyNr] = lines[4].split(' ');
    t.is(sid, pid, 'a session leader');
    t.not(ttyNr, '0', 'with a controlling terminal');
    t.is(lines[5], `${uid}:${gid}`);
  }
});

// ---- the real way ----

/**
 * As the plan runs it: a new mount and PID namespace, a busybox root on a tmpfs, pivot_root,
 * the old root detached and kept as cwd, perl started from it through ld.so by relative paths.
 * The container's root has no perl library directory at all. The filter is reached either by a
 * path relative to the old root, or (where it lives on another mount, such as a tmpfs /run, which
 * the detached old root no longer shows) through fd 5, opened before pivot_root.
 */
const PIVOT = `set -e
img=$1 T=$2 ldso=$3 libs=$4 mode=$5 script=$6 filter=$7; shift 7
[ -z "$filter" ] || exec 5< "$filter"
mount -t tmpfs -o size=32m tmpfs "$T"
cp -a "$img/." "$T/"
mkdir -p "$T/proc" "$T/dev/shm"
mount -t proc proc "$T/proc"
: > "$T/dev/null"; mount --bind /dev/null "$T/dev/null"
cd "$T"
pivot_root . dev/shm
cd /dev/shm
."$ldso" --library-path "$libs" ./usr/bin/umount -l /dev/shm
if [ "$mode" = file ]; then exec ."$ldso" --library-path "$libs" ./usr/bin/perl ."$script" "$@"; fi
exec ."$ldso" --library-path "$libs" ./usr/bin/perl -e "$script" -- "$@"
`;

it('the real way: after pivot_root, from the detached old root through ld.so, with no @INC', async (t) => {
  const img = join(tscEnv.TSCONTAIN_ROOT!, 'lib', 'images', 'busybox', 'rootfs');
  if (!existsSync(img)) t.is((await tsc(['rootfs', 'build', 'busybox'])).code, 0);
  const tools = hostTools({ ip: false, awk: false, perl: false });
  if (!tools.ldso) return t.fail('no dynamic loader found');
  const libs = tools.libPath.map((p) => '.' + p).join(':');
  const show =
    'cat /proc/self/status; echo "cwd=$(pwd)"; ls /; ' +
    'ls /usr/share/perl5 /usr/lib/x86_64-linux-gnu 2>&1 | head -2; mkdir x || :; ! [ -e /proc/self/fd/5 ] || echo fd5';
  const bpf = AUDIT_ARCH[process.arch] ? denyFilter(['mkdir'], ENOTSUP) : '';
  // by file only where the project is on the root's filesystem: after `umount -l` the old root
  // reaches no other mount (the v2 guest's project disk), which is why the plan uses perl -e
  const sameFs = statSync(BECOME).dev === statSync('/').dev;
  for (const [mode, script] of [...(sameFs ? [['file', BECOME]] : []), ['e', readFileSync(BECOME, 'utf8')]]) {
    const T = tempDir('tscontain-become-root-');
    const filter = !bpf ? [] : ['--seccomp', mode === 'file' ? '.' + bpf : '/proc/self/fd/5'];
    const r = spawnSync(
      'unshare',
      [
        '--mount',
        '--pid',
        '--fork',
        '--propagation',
        'private',
        'sh',
        '-c',
        PIVOT,
        'sh',
        img,
        T,
        tools.ldso,
        libs,
        mode,
        script,
        bpf,
        '--caps',
        capHex(DEFAULT_CAPS),
        '--uid',
        '1000',
        '--gid',
        '1000',
        '--nnp',
        ...filter,
        '--wd',
        '/tmp',
        '--env',
        'PATH=/bin',
        '--',
        'sh',
        '-c',
        show,
      ],
      { encoding: 'utf8', env: {} },
    );
    t.is(r.status, 0, `${mode}: ${r.stderr}`);
    t.is(field(r.stdout, 'CapBnd'), capHex(DEFAULT_CAPS & HOST_BND), mode);
    t.is(field(r.stdout, 'CapEff'), '0000000000000000', mode);
    t.is(field(r.stdout, 'Uid'), '1000\t1000\t1000\t1000', mode);
    t.is(field(r.stdout, 'NoNewPrivs'), '1', mode);
    t.regex(r.stdout, /^cwd=\/tmp$/m, mode);
    t.regex(r.stdout, /^linuxrc$/m, 'the busybox root');
    t.notRegex(r.stdout, /^work$/m, "not the host's");
    t.regex(r.stdout, /No such file or directory/, 'no perl library directory in the container');
    if (bpf) t.regex(r.stderr, /mkdir: .*Operation not supported/, mode);
    t.notRegex(r.stdout, /^fd5$/m, "the filter's fd does not reach the command");
  }
});

/**
 * As the plan runs it, with --detach /dev/shm (become.pl makes the old root read-only, then detaches
 * it), and the loader on the old root kept as fd 3 for the command. With a filter, become.pl runs
 * under it (seccomp-load.pl loads it first, from fd 5).
 */
const DETACH = `set -e
img=$1 T=$2 ldso=$3 libs=$4 load=$5 filter=$6 script=$7 marker=$8; shift 8
[ -z "$filter" ] || exec 5< "$filter"
mount -t tmpfs -o size=32m tmpfs "$T"
cp -a "$img/." "$T/"
mkdir -p "$T/proc" "$T/dev/shm"
mount -t proc proc "$T/proc"
: > "$T/dev/null"; mount --bind /dev/null "$T/dev/null"
cd "$T"
pivot_root . dev/shm
cd /dev/shm
exec 3< ."$ldso" 4< ."$marker"
[ -n "$filter" ] || exec ."$ldso" --library-path "$libs" ./usr/bin/perl -e "$script" -- "$@"
exec ."$ldso" --library-path "$libs" ./usr/bin/perl -e "$load" -- fd:5 \
  ."$ldso" --library-path "$libs" ./usr/bin/perl -e "$script" -- "$@"
`;

it("--detach: the old root is read-only first, so the host's loader never opens for writing", async (t) => {
  const img = join(tscEnv.TSCONTAIN_ROOT!, 'lib', 'images', 'busybox', 'rootfs');
  if (!existsSync(img)) t.is((await tsc(['rootfs', 'build', 'busybox'])).code, 0);
  const tools = hostTools({ ip: false, awk: false, perl: false });
  if (!tools.ldso) return t.fail('no dynamic loader found');
  const libs = tools.libPath.map((p) => '.' + p).join(':');
  const load = readFileSync(join(REPO, 'src', 'kernel', 'seccomp-load.pl'), 'utf8');
  // an open for append that writes nothing, as in every probe of the host's files. An open of the
  // loader says ETXTBSY before EROFS while any container runs it (an --init PID 1 does for its whole
  // life), so fd 4 is a file of the test's own on the loader's mount, which no one executes
  const mountOf = (p: string) => spawnSync('findmnt', ['-n', '-o', 'TARGET', '-T', p], { encoding: 'utf8' }).stdout;
  // a temp dir on the loader's mount: the usual one, or /var/tmp (the v2 guest's /tmp is another mount)
  let dir = tempDir('tscontain-become-marker-');
  if (mountOf(dir) !== mountOf(tools.ldso)) {
    const v = mkdtempSync('/var/tmp/tscontain-become-marker-');
    t.teardown(() => rmSync(v, { recursive: true, force: true }));
    if (mountOf(v) === mountOf(tools.ldso)) dir = v;
  }
  const marker = mountOf(dir) === mountOf(tools.ldso) ? join(dir, 'marker') : tools.ldso;
  writeFileSync(join(dir, 'marker'), 'marker\n');
  const show =
    'for i in $(seq 100); do o=$( ( : >> /proc/self/fd/4 ) 2>&1 ); case $o in *busy*) sleep 0.05 ;; *) break ;; esac; done; ' +
    'echo "$o"; readlink /proc/self/fd/3';
  // ENOSYS from mount_setattr(2), as on Linux < 5.12: the fallback remounts the old root's top mount
  const ENOSYS = 38;
  const filters = [
    ['mount_setattr', ''],
    ...(AUDIT_ARCH[process.arch] ? [['mount', denyFilter(['mount_setattr'], ENOSYS)]] : []),
  ];
  // the fallback reaches the loader only where it is on the host's root filesystem
  const onRoot =
    spawnSync('findmnt', ['-n', '-o', 'TARGET', '-T', tools.ldso], { encoding: 'utf8' }).stdout.trim() === '/';
  for (const [what, filter] of filters) {
    const args = ['--caps', capHex(DEFAULT_CAPS), '--preserve-fds', '2', '--detach', '/dev/shm', '--env', 'PATH=/bin'];
    const r = spawnSync(
      'unshare',
      [
        '--mount',
        '--pid',
        '--fork',
        '--propagation',
        'private',
        'sh',
        '-c',
        DETACH,
        'sh',
        img,
        tempDir('tscontain-become-root-'),
        tools.ldso,
        libs,
        load,
        filter,
        readFileSync(BECOME, 'utf8'),
        marker,
        ...args,
        '--',
        'sh',
        '-c',
        show,
      ],
      { encoding: 'utf8', env: {} },
    );
    if (what === 'mount' && !onRoot) {
      t.is(r.status, 125, r.stdout);
      t.regex(r.stderr, /the host's loader is still writable/);
      continue;
    }
    t.is(r.status, 0, `${what}: ${r.stderr}`);
    t.regex(r.stdout, /can't create \/proc\/self\/fd\/4: Read-only file system\n/, `${what}: ${r.stdout}`);
    t.is(readFileSync(join(dir, 'marker'), 'utf8'), 'marker\n');
    t.regex(r.stdout, /ld-linux|ld-/, `${what}: fd 3 is the loader`);
  }
});

// ---- cost ----

it('cost: perl become.pl ... -- true against true alone, in the same run (logged)', (t) => {
  // a sh loop, so that Node.js's own cost of starting a process is not in the figures
  const loop = 'i=0; while [ $i -lt 50 ]; do "$@" || exit 1; i=$((i+1)); done';
  const time = (argv: string[]) => {
    const s = process.hrtime.bigint();
    const r = spawnSync('sh', ['-c', loop, 'sh', ...argv], { env: {} });
    t.is(r.status, 0);
    return Number(process.hrtime.bigint() - s) / 1e6 / 50;
  };
  const args = ['--caps', capHex(DEFAULT_CAPS), '--uid', '1000', '--gid', '1000', '--nnp', '--wd', '/', '--env', PATH];
  const rounds = [0, 1, 2].map(() => [time(['/bin/true']), time(['perl', BECOME, ...args, '--', '/bin/true'])]);
  const [bare, full] = rounds.sort((a, b) => a[1] - b[1])[1];
  t.log(
    `per start (median of 3 rounds of 50): true ${bare.toFixed(2)} ms, perl become.pl ... -- true ` +
      `${full.toFixed(2)} ms: ratio ${(full / bare).toFixed(1)}, +${(full - bare).toFixed(2)} ms`,
  );
});
