// The compiled filter against the real kernel: src/kernel/seccomp-load.pl loads it on the host (no
// container), each probe in its own child process. Probes are harmless even if the filter fails: the
// mount happens inside a private mount namespace on a directory the test made, the key goes to the
// probe's own process keyring, unshare -n only makes a network namespace that dies with the probe.
import test from 'ava';
import { DOCKER_DEFAULT_CAPS } from '../../src/kernel/capabilities.js';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { compileSeccomp, defaultProfile, hostSeccompArch, parseProfile } from '../../src/kernel/seccomp.js';
import { kernel_seccomp_load_pl } from '../../src/gen/assets.js';
import { isRoot, REPO } from './helpers.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

const arch = hostSeccompArch();
const it = isRoot && arch ? test : test.skip;
test.after.always(removeTempDirs);

const LOADER = join(REPO, 'src', 'kernel', 'seccomp-load.pl');
const DOCKER_CAPS = [...DOCKER_DEFAULT_CAPS];
// syscall numbers for perl's syscall(): [x86_64, aarch64]
const NR = {
  add_key: arch === 'aarch64' ? 217 : 248,
  keyctl: arch === 'aarch64' ? 219 : 250,
  clone3: 435,
  fchmodat2: 452,
  getpid: arch === 'aarch64' ? 172 : 39,
};

const dir = tempDir('tscontain-seccomp-');
function filterFile(name: string, caps = DOCKER_CAPS, profile = defaultProfile()): string {
  const f = join(dir, `${name}.bpf`);
  writeFileSync(f, compileSeccomp(profile, { arch: arch!, caps, kernel: release() }));
  return f;
}
const DEFAULT = filterFile('default');

interface Out {
  status: number | null;
  stdout: string;
  stderr: string;
}
function sh(argv: string[]): Out {
  const r = spawnSync(argv[0], argv.slice(1), {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, LC_ALL: 'C' },
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
/** The command under the filter (no filter: `null`, the unconfined run). */
const under = (filter: string | null, cmd: string[], opts: string[] = []) =>
  sh(filter ? ['perl', LOADER, ...opts, filter, ...cmd] : cmd);

/** A perl one-liner that prints the errno (0: success) of one raw syscall: safe to run on the host. */
// perl passes a string to syscall() as a pointer it may write through: literals go into variables first
const probe = (code: string) => ['perl', '-e', `my @s = @ARGV; my $r = ${code}; print $r < 0 ? $!+0 : 0`];
// -2: the probe's own process keyring
const addKey = [...probe(`syscall(${NR.add_key}, $s[0], $s[1], $s[2], 1, -2)`), 'user', 'tscontain-seccomp-test', 'x'];
const keyctl = probe(`syscall(${NR.keyctl}, 0, -2, 1)`); // KEYCTL_GET_KEYRING_ID of the process keyring
const clone3 = probe(`syscall(${NR.clone3}, 0, 0)`); // size 0: EINVAL when the kernel sees it
const fchmodat2 = [...probe(`syscall(${NR.fchmodat2}, -100, $s[0], 0, 0)`), '/nonexistent-tscontain']; // ENOENT if seen

it('the loader is what the build embeds', (t) => {
  t.is(sh(['cat', LOADER]).stdout, kernel_seccomp_load_pl);
});

it("ordinary commands work under docker's default profile", (t) => {
  t.is(under(DEFAULT, ['true']).status, 0);
  const ls = under(DEFAULT, ['ls', '-d', '/']);
  t.is(ls.stdout, '/\n');
  const shell = under(DEFAULT, [
    'sh',
    '-c',
    'echo hi > "$0" && cat "$0" && grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status',
    join(dir, 'f'),
  ]);
  t.is(shell.status, 0, shell.stderr);
  t.regex(shell.stdout, /^hi\nNoNewPrivs:\s+0\nSeccomp:\s+2\n$/);
  t.is(under(DEFAULT, probe(`syscall(${NR.getpid})`)).stdout, '0');
});

it('unshare, mount, add_key and keyctl fail with EPERM under the default profile and work unconfined', (t) => {
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  const unshare = under(DEFAULT, ['unshare', '-n', 'true']);
  t.is(unshare.status, 1);
  t.regex(unshare.stderr, /Operation not permitted/);
  t.is(under(null, ['unshare', '-n', 'true']).status, 0);

  // the mount namespace comes first and unfiltered, so a mount that gets through stays in it
  const mount = sh([
    'unshare',
    '-m',
    '--propagation',
    'private',
    'perl',
    LOADER,
    DEFAULT,
    'mount',
    '-t',
    'tmpfs',
    'x',
    mnt,
  ]);
  t.not(mount.status, 0);
  t.regex(mount.stderr, /permission denied|Operation not permitted/i);
  t.is(sh(['unshare', '-m', '--propagation', 'private', 'mount', '-t', 'tmpfs', 'x', mnt]).status, 0);

  t.is(under(DEFAULT, addKey).stdout, '1', 'add_key: EPERM');
  t.is(under(DEFAULT, keyctl).stdout, '1', 'keyctl: EPERM');
  t.is(under(null, addKey).stdout, '0');
  t.is(under(null, keyctl).stdout, '0');
});

it('clone3 and syscalls newer than the profile answer ENOSYS, so the C library falls back', (t) => {
  t.is(under(DEFAULT, clone3).stdout, '38');
  t.is(under(null, clone3).stdout, '22', 'the kernel itself: EINVAL');
  t.is(under(DEFAULT, fchmodat2).stdout, '38');
  // fchmodat2 came in Linux 6.6: an older kernel answers ENOSYS itself
  const [major, minor] = release().split('.').map(Number);
  const hasFchmodat2 = major > 6 || (major === 6 && minor >= 6);
  t.is(under(null, fchmodat2).stdout, hasFchmodat2 ? '2' : '38', 'the kernel itself');
});

it("CAP_SYS_ADMIN in the container's set lets unshare through", (t) => {
  const admin = filterFile('admin', [...DOCKER_CAPS, 'SYS_ADMIN']);
  t.is(under(admin, ['unshare', '-n', 'true']).status, 0);
});

it('a user profile: its errno comes back, the rest is allowed', (t) => {
  const p = parseProfile(
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
    }),
  )!;
  const f = filterFile('nomkdir', DOCKER_CAPS, p);
  const r = under(f, ['mkdir', join(dir, 'd1')]);
  t.is(r.status, 1);
  t.regex(r.stderr, /Permission denied/);
  t.is(under(f, ['ls', '-d', dir]).status, 0);
});

it('the ordering rule: without no_new_privs the kernel takes the filter only from a holder of CAP_SYS_ADMIN', (t) => {
  const noAdmin = ['setpriv', '--bounding-set', '-sys_admin', '--inh-caps', '-sys_admin'];
  const refused = sh([...noAdmin, 'perl', LOADER, DEFAULT, 'true']);
  t.is(refused.status, 125);
  t.regex(refused.stderr, /seccomp\(SECCOMP_SET_MODE_FILTER\): Permission denied \(needs CAP_SYS_ADMIN or --nnp\)/);
  const nnp = sh([
    ...noAdmin,
    'perl',
    LOADER,
    '--nnp',
    DEFAULT,
    'grep',
    '-E',
    '^(NoNewPrivs|Seccomp):',
    '/proc/self/status',
  ]);
  t.is(nnp.status, 0, nnp.stderr);
  t.regex(nnp.stdout, /NoNewPrivs:\s+1\nSeccomp:\s+2/);
});

it('the loader: a filter from an fd, flags, and its errors', (t) => {
  const fd = spawnSync('sh', ['-c', 'exec perl "$0" fd:3 ls -l /proc/self/fd 3<"$1"', LOADER, DEFAULT], {
    encoding: 'utf8',
  });
  t.is(fd.status, 0, fd.stderr);
  t.notRegex(fd.stdout, /default\.bpf/, "the filter's fd was closed before exec");
  t.regex(fd.stdout, /\/proc\/\d+\/fd/, 'ls ran');
  t.is(under(DEFAULT, ['true'], ['--flags=2']).status, 0, 'SECCOMP_FILTER_FLAG_LOG');
  // 13 bytes: no whole number of 8-byte instructions
  const text = join(tempDir('tscontain-notfilter-'), 'notes.txt');
  writeFileSync(text, 'not a filter\n');
  const notFilter = under(text, ['true']);
  t.is(notFilter.status, 125);
  t.regex(notFilter.stderr, /^tscontain: seccomp: .*notes\.txt: not a seccomp filter/);
  t.is(under(join(dir, 'missing.bpf'), ['true']).status, 125);
  t.is(under(DEFAULT, ['/nonexistent-tscontain']).status, 127);
  t.is(under(DEFAULT, ['--bogus', 'true']).status, 127, 'after the filter, everything is the command');
  t.is(under(DEFAULT, ['true'], ['--bogus']).status, 125);
});
