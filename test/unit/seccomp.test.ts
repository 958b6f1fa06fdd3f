import test from 'ava';
import { DOCKER_DEFAULT_CAPS } from '../../src/kernel/capabilities.js';
import {
  compileSeccomp,
  defaultProfile,
  seccompCacheKey,
  seccompCheck,
  parseProfile,
  seccompFlags,
  seccompFromOption,
  seccompSummary,
  hostSeccompArch,
  type SeccompTarget,
  type SeccompProfile,
} from '../../src/kernel/seccomp.js';
import { TscError } from '../../src/errors.js';
import { AUDIT, check, decode, disasm, run, seccompData } from '../fixtures/cbpf.js';

// Syscall numbers written out here, not taken from the compiler's tables, so a wrong table shows.
const X64 = {
  read: 0,
  write: 1,
  execve: 59,
  mount: 165,
  unshare: 272,
  keyctl: 250,
  add_key: 248,
  kexec_load: 246,
  bpf: 321,
  clone: 56,
  clone3: 435,
  socket: 41,
  personality: 135,
  reboot: 169,
  chroot: 161,
  ptrace: 101,
  io_uring_setup: 425,
  open_by_handle_at: 304,
  name_to_handle_at: 303,
  setns: 308,
  futex_waitv: 449,
};
const I386 = { read: 3, mount: 21, socket: 359, unshare: 310, clone: 120, personality: 136 };
const A64 = {
  read: 63,
  write: 64,
  execve: 221,
  mount: 40,
  unshare: 97,
  clone: 220,
  socket: 198,
  keyctl: 219,
  bpf: 280,
};

const ALLOW = 0x7fff0000;
const KILL_PROCESS = 0x80000000;
const errno = (e: number) => 0x00050000 | e;
const EPERM = errno(1),
  ENOSYS = errno(38);

const DOCKER_CAPS = [...DOCKER_DEFAULT_CAPS];
const x86: SeccompTarget = { arch: 'x86_64', caps: DOCKER_CAPS, kernel: '6.18.44-fc' };
const arm: SeccompTarget = { arch: 'aarch64', caps: DOCKER_CAPS, kernel: '6.1.0-18-arm64' };

const CLONE_NEWNS = 0x20000,
  CLONE_NEWUSER = 0x10000000,
  CLONE_NEWNET = 0x40000000,
  SIGCHLD = 17;
const THREAD_FLAGS = 0x3d0f00; // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
const AF_INET = 2,
  AF_UNIX = 1,
  AF_KCM = 38,
  AF_QIPCRTR = 42,
  AF_VSOCK = 40;

function verdictOf(filter: Buffer) {
  const p = decode(filter);
  check(p);
  return (nr: number, arch: number, args: Array<number | bigint> = []) => run(p, seccompData(nr, arch, args));
}

test("docker's default profile on x86_64: arch check first, every jump in range, far below the kernel's 4096", (t) => {
  const f = compileSeccomp(defaultProfile(), x86);
  const p = decode(f);
  t.notThrows(() => check(p));
  t.deepEqual(p[0], { code: 0x20, jt: 0, jf: 0, k: 4 }, 'ld seccomp_data.arch');
  t.is(p[1].code, 0x15, 'jeq on the arch');
  t.true([AUDIT.X86_64, AUDIT.I386].includes(p[1].k as 0xc000003e));
  t.true(p.every((i) => i.jt <= 255 && i.jf <= 255));
  t.true(p.length < 1024, `${p.length} instructions`);
  t.is(f.length, p.length * 8);
});

const x86Cases: Array<[string, number, Array<number | bigint>, number]> = [
  ['read', X64.read, [0, 0, 16], ALLOW],
  ['write', X64.write, [1], ALLOW],
  ['execve', X64.execve, [], ALLOW],
  ['futex_waitv (allowed, high in the table)', X64.futex_waitv, [], ALLOW],
  ['mount', X64.mount, [], EPERM],
  ['unshare', X64.unshare, [CLONE_NEWNET], EPERM],
  ['setns', X64.setns, [], EPERM],
  ['keyctl', X64.keyctl, [], EPERM],
  ['add_key', X64.add_key, [], EPERM],
  ['kexec_load', X64.kexec_load, [], EPERM],
  ['bpf', X64.bpf, [], EPERM],
  ['io_uring_setup', X64.io_uring_setup, [], EPERM],
  ['open_by_handle_at (needs CAP_DAC_READ_SEARCH)', X64.open_by_handle_at, [], EPERM],
  ['name_to_handle_at', X64.name_to_handle_at, [], ALLOW],
  ['reboot (needs CAP_SYS_BOOT)', X64.reboot, [], EPERM],
  ['chroot (CAP_SYS_CHROOT is a docker default)', X64.chroot, [], ALLOW],
  ['ptrace on a kernel >= 4.8', X64.ptrace, [], ALLOW],
  ['clone for fork', X64.clone, [SIGCHLD], ALLOW],
  ['clone for a thread', X64.clone, [THREAD_FLAGS], ALLOW],
  ['clone with CLONE_NEWNS', X64.clone, [SIGCHLD | CLONE_NEWNS], EPERM],
  ['clone with CLONE_NEWUSER', X64.clone, [CLONE_NEWUSER], EPERM],
  [
    'clone with namespace bits only in the high word (ignored: the mask is 32-bit)',
    X64.clone,
    [(1n << 40n) | 17n],
    ALLOW,
  ],
  ['clone3 (ENOSYS: the C library falls back to clone)', X64.clone3, [], ENOSYS],
  ['socket(AF_INET)', X64.socket, [AF_INET, 1, 0], ALLOW],
  ['socket(AF_UNIX)', X64.socket, [AF_UNIX], ALLOW],
  ['socket(AF_KCM)', X64.socket, [AF_KCM], EPERM],
  ['socket(39)', X64.socket, [39], ALLOW],
  ['socket(AF_VSOCK)', X64.socket, [AF_VSOCK], EPERM],
  ['socket(AF_QIPCRTR)', X64.socket, [AF_QIPCRTR], ALLOW],
  ['socket(AF_VSOCK) with high bits the kernel drops (family is an int)', X64.socket, [(1n << 32n) | 40n], EPERM],
  ['socket(AF_VSOCK) sign-extended', X64.socket, [0xffffffff00000028n], EPERM],
  ['personality(PER_LINUX)', X64.personality, [0], ALLOW],
  ['personality(PER_LINUX32)', X64.personality, [8], ALLOW],
  ['personality(UNAME26)', X64.personality, [0x20000], ALLOW],
  ['personality(PER_LINUX32|UNAME26)', X64.personality, [0x20008], ALLOW],
  ['personality(0xffffffff): query', X64.personality, [0xffffffff], ALLOW],
  ['personality(READ_IMPLIES_EXEC)', X64.personality, [0x0400000], EPERM],
  ['personality(ADDR_NO_RANDOMIZE)', X64.personality, [0x0040000], EPERM],
  ['personality(2^64-1): the kernel reads 0xffffffff, the query', X64.personality, [0xffffffffffffffffn], ALLOW],
  ['personality(ADDR_NO_RANDOMIZE) with high bits', X64.personality, [(1n << 32n) | 0x40000n], EPERM],
  ['a number above every known syscall', 1000, [], ENOSYS],
  ['the last number below the x32 bit', 0x3fffffff, [], ENOSYS],
  ['one above the highest number the profile names', 451, [], ENOSYS],
];
for (const [name, nr, args, want] of x86Cases) {
  test(`x86_64, docker's caps: ${name}`, (t) => {
    const v = verdictOf(compileSeccomp(defaultProfile(), x86));
    t.is(v(nr, AUDIT.X86_64, args).toString(16), want.toString(16));
  });
}

test('x86_64: i386 and x32 processes get the same profile through their own numbers', (t) => {
  const v = verdictOf(compileSeccomp(defaultProfile(), x86));
  t.is(v(I386.read, AUDIT.I386), ALLOW);
  t.is(v(I386.mount, AUDIT.I386), EPERM);
  t.is(v(I386.unshare, AUDIT.I386), EPERM);
  t.is(v(I386.socket, AUDIT.I386, [AF_VSOCK]), EPERM);
  t.is(v(I386.socket, AUDIT.I386, [AF_INET]), ALLOW);
  t.is(v(I386.socket, AUDIT.I386, [(1n << 32n) | 40n]), EPERM, 'a 32-bit ABI compares the low word only');
  t.is(v(I386.clone, AUDIT.I386, [CLONE_NEWNS]), EPERM);
  t.is(v(I386.personality, AUDIT.I386, [8]), ALLOW);
  t.is(v(1000, AUDIT.I386), ENOSYS);
  const X32 = 0x40000000;
  t.is(v(X32 + X64.read, AUDIT.X86_64), ALLOW);
  t.is(v(X32 + X64.mount, AUDIT.X86_64), EPERM);
  t.is(v(X32 + X64.socket, AUDIT.X86_64, [AF_VSOCK]), EPERM);
  t.is(v(X32 + X64.personality, AUDIT.X86_64, [(1n << 32n) | 8n]), ALLOW, 'x32 compares the low word, as libseccomp');
  t.is(v(X32 + 13, AUDIT.X86_64), EPERM, 'x32 rt_sigaction is 512: 13 is no x32 call');
  t.is(v(X32 + 512, AUDIT.X86_64), ALLOW, 'x32 rt_sigaction');
  t.is(v(X32 + 1000, AUDIT.X86_64), ENOSYS);
  t.is(v(0xffffffff, AUDIT.X86_64), ENOSYS);
});

test('a process of another arch is killed', (t) => {
  const v = verdictOf(compileSeccomp(defaultProfile(), x86));
  t.is(v(X64.read, AUDIT.AARCH64), KILL_PROCESS);
  t.is(v(X64.read, AUDIT.ARM), KILL_PROCESS);
  t.is(v(X64.read, 0), KILL_PROCESS);
  const a = verdictOf(compileSeccomp(defaultProfile(), arm));
  t.is(a(A64.read, AUDIT.X86_64), KILL_PROCESS);
  t.is(a(A64.read, AUDIT.ARM), KILL_PROCESS, 'no 32-bit ARM table: its processes are killed');
});

test("without x32 in the profile, x32 calls are killed (libseccomp's bad-arch action)", (t) => {
  const p = parseProfile(
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['read', 'getpid'], action: 'SCMP_ACT_ALLOW' }],
    }),
  )!;
  const v = verdictOf(compileSeccomp(p, x86));
  t.is(v(X64.read, AUDIT.X86_64), ALLOW);
  t.is(v(X64.write, AUDIT.X86_64), EPERM);
  t.is(v(40, AUDIT.X86_64), ENOSYS, 'above getpid, the highest it names');
  t.is(v(0x40000000 + X64.read, AUDIT.X86_64), KILL_PROCESS);
  t.is(v(I386.read, AUDIT.I386), KILL_PROCESS, 'and i386, which is not listed either');
});

test('capabilities unlock their syscalls: SYS_ADMIN allows namespaces, mount and clone3', (t) => {
  const v = verdictOf(compileSeccomp(defaultProfile(), { ...x86, caps: [...DOCKER_CAPS, 'CAP_SYS_ADMIN'] }));
  t.is(v(X64.clone, AUDIT.X86_64, [SIGCHLD | CLONE_NEWNS]), ALLOW);
  t.is(v(X64.clone3, AUDIT.X86_64), ALLOW);
  t.is(v(X64.mount, AUDIT.X86_64), ALLOW);
  t.is(v(X64.unshare, AUDIT.X86_64), ALLOW);
  t.is(v(X64.keyctl, AUDIT.X86_64), EPERM, 'keyctl stays denied');
  const boot = verdictOf(compileSeccomp(defaultProfile(), { ...x86, caps: [...DOCKER_CAPS, 'sys_boot'] }));
  t.is(boot(X64.reboot, AUDIT.X86_64), ALLOW, 'cap names in any case, with or without CAP_');
  const dropped = verdictOf(compileSeccomp(defaultProfile(), { ...x86, caps: [] }));
  t.is(dropped(X64.chroot, AUDIT.X86_64), EPERM, '--cap-drop ALL takes chroot away too');
  t.is(dropped(X64.read, AUDIT.X86_64), ALLOW);
});

test('minKernel: ptrace is denied on a kernel older than 4.8', (t) => {
  t.is(
    verdictOf(compileSeccomp(defaultProfile(), { ...x86, kernel: '4.4.0-210-generic' }))(X64.ptrace, AUDIT.X86_64),
    EPERM,
  );
  t.is(verdictOf(compileSeccomp(defaultProfile(), { ...x86, kernel: '4.8' }))(X64.ptrace, AUDIT.X86_64), ALLOW);
});

test('aarch64: its own numbers, the same decisions', (t) => {
  const f = compileSeccomp(defaultProfile(), arm);
  const v = verdictOf(f);
  t.is(decode(f)[1].k, AUDIT.AARCH64);
  t.is(v(A64.read, AUDIT.AARCH64), ALLOW);
  t.is(v(A64.write, AUDIT.AARCH64), ALLOW);
  t.is(v(A64.execve, AUDIT.AARCH64), ALLOW);
  t.is(v(A64.mount, AUDIT.AARCH64), EPERM);
  t.is(v(A64.unshare, AUDIT.AARCH64), EPERM);
  t.is(v(A64.keyctl, AUDIT.AARCH64), EPERM);
  t.is(v(A64.bpf, AUDIT.AARCH64), EPERM);
  t.is(v(A64.clone, AUDIT.AARCH64, [CLONE_NEWNS]), EPERM);
  t.is(v(A64.clone, AUDIT.AARCH64, [SIGCHLD]), ALLOW);
  t.is(v(A64.socket, AUDIT.AARCH64, [AF_VSOCK]), EPERM);
  t.is(v(A64.socket, AUDIT.AARCH64, [AF_INET]), ALLOW);
  t.is(v(1000, AUDIT.AARCH64), ENOSYS);
});

/** Every comparison operator against a reference written with BigInt, on the edges of both words. */
test('argument comparisons: 64-bit on x86_64 (high word, then low), low word only on i386', (t) => {
  const values = [0n, 1n, 0x7fffffffn, 0xffffffffn, 1n << 32n, (1n << 32n) + 5n, 0xffffffffffffffffn, 0x123456789n];
  const ops: Array<[string, (a: bigint, v: bigint) => boolean]> = [
    ['SCMP_CMP_EQ', (a, v) => a === v],
    ['SCMP_CMP_NE', (a, v) => a !== v],
    ['SCMP_CMP_LT', (a, v) => a < v],
    ['SCMP_CMP_LE', (a, v) => a <= v],
    ['SCMP_CMP_GT', (a, v) => a > v],
    ['SCMP_CMP_GE', (a, v) => a >= v],
  ];
  const lo = (x: bigint) => x & 0xffffffffn;
  for (const [op, cmp] of ops) {
    for (const value of values) {
      const p = parseProfile(
        JSON.stringify({
          defaultAction: 'SCMP_ACT_ERRNO',
          architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
          syscalls: [
            { names: ['getpid'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: value.toString(), op }] },
          ],
        }),
      )!;
      const v = verdictOf(compileSeccomp(p, x86));
      for (const a of values) {
        t.is(v(39, AUDIT.X86_64, [0, 0, a]), cmp(a, value) ? ALLOW : EPERM, `x86_64 ${a} ${op} ${value}`);
        t.is(v(20, AUDIT.I386, [0, 0, a]), cmp(lo(a), lo(value)) ? ALLOW : EPERM, `i386 ${a} ${op} ${value}`);
      }
    }
  }
});

test('arguments the kernel reads as int compare their low word only: no way past a rule with high bits', (t) => {
  const TIOCSTI = 0x5412;
  const p = parseProfile(
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['ioctl'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: TIOCSTI, op: 'SCMP_CMP_EQ' }] },
      ],
    }),
  )!;
  const v = verdictOf(compileSeccomp(p, x86));
  t.is(v(16, AUDIT.X86_64, [0, TIOCSTI]), EPERM);
  t.is(v(16, AUDIT.X86_64, [0, (1n << 32n) | BigInt(TIOCSTI)]), EPERM);
  t.is(v(16, AUDIT.X86_64, [0, 0x5413]), ALLOW);
  t.is(v(0x40000000 + 514, AUDIT.X86_64, [0, (1n << 32n) | BigInt(TIOCSTI)]), EPERM, 'x32 ioctl is 514');
});

test('MASKED_EQ: value is the mask, valueTwo the datum', (t) => {
  const p = parseProfile(
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        {
          names: ['getpid'],
          action: 'SCMP_ACT_ALLOW',
          args: [{ index: 0, value: '0xff000000ff', valueTwo: 0x12, op: 'SCMP_CMP_MASKED_EQ' }],
        },
      ],
    }),
  )!;
  const v = verdictOf(compileSeccomp(p, x86));
  t.is(v(39, AUDIT.X86_64, [0x12]), ALLOW);
  t.is(v(39, AUDIT.X86_64, [0xabcd0012]), ALLOW);
  t.is(v(39, AUDIT.X86_64, [0x13]), EPERM);
  t.is(v(39, AUDIT.X86_64, [(1n << 32n) | 0x12n]), EPERM, 'a masked bit of the high word is set');
  t.is(v(39, AUDIT.X86_64, [(1n << 40n) | 0x12n]), ALLOW, 'an unmasked bit of the high word');
});

test("one rule's conditions all hold (AND); two on one argument are alternatives (OR), as in runc", (t) => {
  const p = parseProfile(
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        {
          names: ['getpid'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: 1, op: 'SCMP_CMP_EQ' },
            { index: 1, value: 2, op: 'SCMP_CMP_EQ' },
          ],
        },
        {
          names: ['getppid'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: 1, op: 'SCMP_CMP_EQ' },
            { index: 0, value: 2, op: 'SCMP_CMP_EQ' },
          ],
        },
      ],
    }),
  )!;
  const v = verdictOf(compileSeccomp(p, x86));
  t.is(v(39, AUDIT.X86_64, [1, 2]), ALLOW);
  t.is(v(39, AUDIT.X86_64, [1, 3]), EPERM);
  t.is(v(39, AUDIT.X86_64, [2, 2]), EPERM);
  t.is(v(110, AUDIT.X86_64, [1]), ALLOW);
  t.is(v(110, AUDIT.X86_64, [2]), ALLOW);
  t.is(v(110, AUDIT.X86_64, [3]), EPERM);
});

test('actions, errnoRet and defaultErrnoRet', (t) => {
  const p = parseProfile(
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 38,
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { names: ['write'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        { names: ['open'], action: 'SCMP_ACT_ERRNO' },
        { names: ['close'], action: 'SCMP_ACT_KILL' },
        { names: ['stat'], action: 'SCMP_ACT_KILL_PROCESS' },
        { names: ['fstat'], action: 'SCMP_ACT_KILL_THREAD' },
        { names: ['lstat'], action: 'SCMP_ACT_TRAP' },
        { names: ['poll'], action: 'SCMP_ACT_TRACE', errnoRet: 7 },
        { names: ['lseek'], action: 'SCMP_ACT_LOG' },
      ],
    }),
  )!;
  const v = verdictOf(compileSeccomp(p, x86));
  const want = [ALLOW, errno(13), errno(1), 0, KILL_PROCESS, 0, 0x00030001, 0x7ff00007, 0x7ffc0000, errno(38)];
  t.deepEqual(
    want.map((_, nr) => v(nr, AUDIT.X86_64)),
    want,
  );
});

test('a permissive default needs no ENOSYS above the known numbers', (t) => {
  const p = parseProfile(
    JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ERRNO' }] }),
  )!;
  const v = verdictOf(compileSeccomp(p, x86));
  t.is(v(X64.mount, AUDIT.X86_64), EPERM);
  t.is(v(1000, AUDIT.X86_64), ALLOW);
  t.is(v(X64.read, AUDIT.X86_64), ALLOW);
});

test('long runs of argument rules still keep every jump under 256 (trampolines)', (t) => {
  const many = Array.from({ length: 300 }, (_, i) => ({
    names: ['mprotect'],
    action: 'SCMP_ACT_ALLOW',
    args: [{ index: 1, value: 0x5400 + i, op: 'SCMP_CMP_EQ' }],
  }));
  const names = ['read', 'write', 'close', 'getpid', 'exit', 'exit_group'].map((n) => ({
    names: [n],
    action: 'SCMP_ACT_ALLOW',
  }));
  const p = parseProfile(JSON.stringify({ defaultAction: 'SCMP_ACT_KILL_PROCESS', syscalls: [...names, ...many] }))!;
  const f = compileSeccomp(p, x86);
  const v = verdictOf(f);
  t.true(decode(f).length > 1200);
  t.is(v(10, AUDIT.X86_64, [1, 0x5400]), ALLOW);
  t.is(v(10, AUDIT.X86_64, [1, 0x5400 + 299]), ALLOW);
  t.is(v(10, AUDIT.X86_64, [1, 0x5400 + 300]), KILL_PROCESS);
  t.is(v(231, AUDIT.X86_64), ALLOW);
  t.is(v(X64.mount, AUDIT.X86_64), KILL_PROCESS);
});

test('a filter over 4096 instructions is refused in one line', (t) => {
  const many = Array.from({ length: 1400 }, (_, i) => ({
    names: ['mprotect'],
    action: 'SCMP_ACT_ALLOW',
    args: [{ index: 1, value: i, op: 'SCMP_CMP_EQ' }],
  }));
  const p = parseProfile(JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: many }))!;
  t.throws(() => compileSeccomp(p, x86), { instanceOf: TscError, message: /more than the kernel takes \(4096\)/ });
});

test('the summary: what the default profile covers on x86_64', (t) => {
  const s = seccompSummary(defaultProfile(), x86);
  t.is(s.instructions, decode(compileSeccomp(defaultProfile(), x86)).length);
  t.deepEqual(s.abis.map((a) => a.abi).sort(), ['i386', 'x32', 'x86_64']);
  const x = s.abis.find((a) => a.abi === 'x86_64')!;
  t.deepEqual(x.conditional, ['clone', 'personality', 'socket']);
  t.true(x.syscalls > 250, `${x.syscalls} syscalls allowed`);
});

test("parseProfile: docker's profile format, errors in one line naming the field", (t) => {
  const bad = (profile: unknown, msg: RegExp) => {
    const e = t.throws(() => parseProfile(JSON.stringify(profile), 'f.json'), { instanceOf: TscError });
    t.regex(e!.message, msg);
    t.false(e!.message.includes('\n'));
  };
  t.throws(() => parseProfile('{', 'f.json'), { message: /^f\.json: not JSON/ });
  bad([], /f\.json: must be a JSON object/);
  bad({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] }, /defaultAction is missing/);
  bad({ defaultAction: 'SCMP_ACT_DENY' }, /defaultAction: "SCMP_ACT_DENY" is not one of SCMP_ACT_KILL/);
  bad({ defaultAction: 'SCMP_ACT_NOTIFY' }, /seccomp agent/);
  bad(
    {
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64'],
      archMap: [{ architecture: 'SCMP_ARCH_X86_64' }],
    },
    /both "architectures" and "archMap"/,
  );
  bad(
    { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ name: 'read', names: ['write'], action: 'SCMP_ACT_ALLOW' }] },
    /syscalls\[0\]: has both "name" and "names"/,
  );
  bad(
    { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: 'read', action: 'SCMP_ACT_ALLOW' }] },
    /syscalls\[0\]\.names: must be a list of strings/,
  );
  bad(
    {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }],
    },
    /args\[0\]\.index: must be 0 to 5/,
  );
  bad(
    {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'EQ' }] }],
    },
    /args\[0\]\.op: "EQ" is not one of/,
  );
  bad(
    {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }],
    },
    /value: -1 is not an unsigned 64-bit/,
  );
  bad(
    {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2 ** 60, op: 'SCMP_CMP_EQ' }] },
      ],
    },
    /above 2\^53.*write it as a string/,
  );
  bad(
    {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: 'four' } }],
    },
    /includes\.minKernel: "four" is not a kernel version/,
  );
  bad({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 70000 }, /defaultErrnoRet: 70000 is not an errno/);
  bad(
    { defaultAction: 'SCMP_ACT_ERRNO', flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] },
    /flags: "SECCOMP_FILTER_FLAG_NEW_LISTENER" is not one of/,
  );
  t.is(parseProfile('{}'), null, 'no defaultAction and no syscalls: docker takes it as unconfined');
  t.is(parseProfile('{"syscalls": []}'), null);
});

test("parseProfile takes docker's old and new spellings; unknown names are skipped per arch", (t) => {
  const p = parseProfile(
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64'],
      comment: 'x',
      syscalls: [
        { name: 'read', action: 'SCMP_ACT_ALLOW', args: null, comment: '', includes: {}, excludes: {} },
        { names: ['no_such_call', 's390_runtime_instr', 'write'], action: 'SCMP_ACT_ALLOW', args: [] },
        {
          names: ['getpid'],
          action: 'SCMP_ACT_ALLOW',
          args: [{ index: 0, value: '18446744073709551615', op: 'SCMP_CMP_EQ' }],
        },
      ],
    }),
  )!;
  const v = verdictOf(compileSeccomp(p, x86));
  t.is(v(X64.read, AUDIT.X86_64), ALLOW);
  t.is(v(X64.write, AUDIT.X86_64), ALLOW);
  t.is(v(39, AUDIT.X86_64, [-1n]), ALLOW);
  t.is(v(39, AUDIT.X86_64, [0xffffffff]), EPERM);
});

test('two rules giving one syscall different unconditional actions are refused, as libseccomp does', (t) => {
  const p = parseProfile(
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { names: ['read'], action: 'SCMP_ACT_KILL' },
      ],
    }),
  )!;
  t.throws(() => compileSeccomp(p, x86), {
    instanceOf: TscError,
    message: /read has two rules with different actions/,
  });
});

test('the --security-opt seccomp= value, flags, and the host arch', (t) => {
  const read = (path: string) => {
    if (path === 'p.json')
      return '{"defaultAction":"SCMP_ACT_LOG","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}';
    throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  };
  t.is(seccompFromOption(undefined, read), defaultProfile());
  t.is(seccompFromOption('unconfined', read), null);
  const p = seccompFromOption('p.json', read) as SeccompProfile;
  t.is(p.defaultAction, 'SCMP_ACT_LOG');
  t.is(seccompFlags(p), 6);
  t.is(seccompFlags(defaultProfile()), 0);
  t.throws(() => seccompFromOption('missing.json', read), {
    instanceOf: TscError,
    message: 'seccomp profile missing.json: ENOENT',
  });
  t.is(hostSeccompArch('x64'), 'x86_64');
  t.is(hostSeccompArch('arm64'), 'aarch64');
  t.is(hostSeccompArch('riscv64'), undefined);
});

test('the interpreter itself: it rejects what the kernel rejects', (t) => {
  const f = compileSeccomp(defaultProfile(), x86);
  const p = decode(f);
  t.throws(() => check([...p.slice(0, -1), { code: 0x15, jt: 0, jf: 0, k: 0 }]), {
    message: /does not end with a return|leaves the program/,
  });
  t.throws(
    () =>
      check([
        { code: 0x15, jt: 5, jf: 0, k: 0 },
        { code: 0x06, jt: 0, jf: 0, k: 0 },
      ]),
    { message: /leaves the program/ },
  );
  t.throws(
    () =>
      check([
        { code: 0x20, jt: 0, jf: 0, k: 64 },
        { code: 0x06, jt: 0, jf: 0, k: 0 },
      ]),
    { message: /outside seccomp_data/ },
  );
  t.notThrows(() => disasm(p));
});

test('the cache key: equal for equal inputs, different when caps, arch, kernel or profile differ', (t) => {
  const k = seccompCacheKey(defaultProfile(), x86);
  t.regex(k, /^[0-9a-f]{32}$/);
  t.is(seccompCacheKey(defaultProfile(), { ...x86, caps: [...DOCKER_CAPS].reverse().map((c) => `CAP_${c}`) }), k);
  t.is(seccompCacheKey(defaultProfile(), { ...x86, kernel: '6.18.1-other' }), k, 'only major.minor counts');
  t.not(seccompCacheKey(defaultProfile(), { ...x86, caps: [...DOCKER_CAPS, 'SYS_ADMIN'] }), k);
  t.not(seccompCacheKey(defaultProfile(), { ...x86, kernel: '4.4' }), k);
  t.not(seccompCacheKey(defaultProfile(), arm), k);
  const p = parseProfile(
    '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW",' +
      '"args":[{"index":0,"value":"18446744073709551615","op":"SCMP_CMP_EQ"}]}]}',
  )!;
  t.not(seccompCacheKey(p, x86), k);
});

test('doctor: seccomp needs filter support in the kernel, a syscall table and perl', (t) => {
  const facts = {
    arch: 'x64',
    perl: '/usr/bin/perl',
    actionsAvail: 'kill_process kill_thread trap errno user_notif trace log allow',
    kernel: '6.1.0',
  };
  const ok = seccompCheck(facts);
  t.is(ok.status, 'ok');
  t.regex(ok.detail, /^docker's default profile on x86_64: \d+ BPF instructions, loaded by \/usr\/bin\/perl$/);
  t.is(seccompCheck({ ...facts, perl: undefined }).status, 'fail');
  t.is(seccompCheck({ ...facts, actionsAvail: undefined }).status, 'warn');
  t.regex(
    seccompCheck({ ...facts, actionsAvail: 'kill_thread trap errno trace allow' }).detail,
    /lacks seccomp actions: kill_process/,
  );
  t.regex(seccompCheck({ ...facts, arch: 'riscv64' }).detail, /no syscall table for riscv64/);
});
