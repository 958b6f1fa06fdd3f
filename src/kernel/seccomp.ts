// seccomp(2): docker's seccomp profiles, compiled to classic BPF in TypeScript and loaded by perl-base.
//
// Data in, bytes out: compileSeccomp(profile, { arch, caps, kernel }) returns the filter as a Buffer of
// `struct sock_filter` (8 bytes each, host byte order), ready for seccomp(SECCOMP_SET_MODE_FILTER).
// It follows docker (moby profiles/seccomp: which rules apply for the container's capabilities, the host's
// arch and the running kernel), runc (rules with the default action are dropped; syscall numbers above
// the highest the profile knows answer ENOSYS, so a C library falls back from a call the profile predates,
// as runc's patchbpf does) and libseccomp (an arch check first; x32 told apart by its syscall-number bit;
// 64-bit argument comparisons on the high then the low 32-bit word, only the low word on 32-bit ABIs and,
// unlike libseccomp, on arguments the kernel reads as int: see INT_ARGS).
// Names unknown to an ABI are skipped for that ABI, as runc and libseccomp do.
//
// Loading (src/kernel/seccomp-load.pl, or the same few lines inside another perl program): the kernel
// takes a filter from a process that has no_new_privs set or that holds CAP_SYS_ADMIN. Docker leaves
// no_new_privs off by default, so the filter must be loaded while CAP_SYS_ADMIN is still held, i.e.
// before capabilities are dropped and the user is switched; the syscalls made after it (capset, prctl,
// setgroups, setresuid, execve) then run under the filter, which docker's profile allows. With
// `--security-opt no-new-privileges`, set it first and load the filter last, right before the execve of
// the container's command (as runc does, libcontainer/standard_init_linux.go).
import { createHash } from 'node:crypto';
import { TscError } from '../errors.js';
import { DOCKER_DEFAULT_PROFILE_JSON } from './seccomp-default.js';
import { AARCH64, I386, X32, X86_64, type SyscallRuns } from './seccomp-syscalls.js';

export const SECCOMP_MAN = 'seccomp(2)';

/** Host arches the compiler targets (the name `uname -m` prints). */
import { type SeccompArch, hostSeccompArch, SECCOMP_COMPILER_VERSION } from './seccomp-target.js';

export { type SeccompArch, hostSeccompArch, SECCOMP_COMPILER_VERSION };

export interface SeccompTarget {
  arch: SeccompArch;
  /** the container's bounding set, with or without CAP_ */
  caps: readonly string[];
  /** the running kernel's release, e.g. '6.1.0-18-amd64' (only major.minor counts, as in docker) */
  kernel: string;
}

const ACTIONS = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
] as const;
export type SeccompAction = (typeof ACTIONS)[number];
const OPS = [
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
] as const;
export type SeccompOp = (typeof OPS)[number];
const FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
};

export interface SeccompArg {
  index: number;
  value: bigint;
  valueTwo: bigint;
  op: SeccompOp;
}
export interface SeccompCondition {
  caps: string[];
  arches: string[];
  minKernel?: readonly [number, number];
}
export interface SeccompRule {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args: SeccompArg[];
  includes: SeccompCondition;
  excludes: SeccompCondition;
}
/** A validated profile in docker's format (moby profiles/seccomp/default.json). */
export interface SeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures: string[];
  archMap: { architecture: string; subArchitectures: string[] }[];
  flags: string[];
  syscalls: SeccompRule[];
}

// ---------------------------------------------------------------------------------------------------
// Parsing: a user's --security-opt seccomp=FILE.json, checked field by field, one-line errors.

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(where: string, what: string): never {
  throw new TscError(`${where}: ${what}`, "see docker's profile format (moby profiles/seccomp/default.json)");
}

function strings(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) fail(where, 'must be a list of strings');
  return v as string[];
}

function errno(v: unknown, where: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 4095) {
    fail(where, `${JSON.stringify(v)} is not an errno (0-4095)`);
  }
  return v as number;
}

function u64(v: unknown, where: string): bigint {
  if (v === undefined || v === null) return 0n;
  // JSON numbers above 2^53 are not exact in JavaScript: such values must be written as strings
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^(0x[0-9a-f]{1,16}|\d{1,20})$/i.test(v) && BigInt(v) < 1n << 64n) return BigInt(v);
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) {
    fail(where, `${v} is above 2^53 and not exact in JSON; write it as a string`);
  }
  return fail(where, `${JSON.stringify(v)} is not an unsigned 64-bit integer`);
}

function oneOf<T extends string>(v: unknown, list: readonly T[], where: string): T {
  if (typeof v !== 'string' || !list.includes(v as T)) {
    fail(where, `${JSON.stringify(v)} is not one of ${list.join(', ')}`);
  }
  return v as T;
}

function condition(v: unknown, where: string): SeccompCondition {
  if (v === undefined || v === null) return { caps: [], arches: [] };
  if (!isObject(v)) fail(where, 'must be an object with caps, arches, minKernel');
  const c: SeccompCondition = { caps: strings(v.caps, `${where}.caps`), arches: strings(v.arches, `${where}.arches`) };
  if (v.minKernel !== undefined && v.minKernel !== null && v.minKernel !== '') {
    const m = typeof v.minKernel === 'string' ? /^(\d+)\.(\d+)/.exec(v.minKernel) : null;
    if (!m) fail(`${where}.minKernel`, `${JSON.stringify(v.minKernel)} is not a kernel version like "4.8"`);
    c.minKernel = [Number(m[1]), Number(m[2])];
  }
  return c;
}

function arg(v: unknown, where: string): SeccompArg {
  if (!isObject(v)) fail(where, 'must be an object with index, value, valueTwo, op');
  const i = v.index as number;
  if (!Number.isInteger(i) || i < 0 || i > 5) fail(`${where}.index`, 'must be 0 to 5');
  return {
    index: i,
    value: u64(v.value, `${where}.value`),
    valueTwo: u64(v.valueTwo, `${where}.valueTwo`),
    op: oneOf(v.op, OPS, `${where}.op`),
  };
}

function action(v: unknown, where: string): SeccompAction {
  if (v === 'SCMP_ACT_NOTIFY') fail(where, 'SCMP_ACT_NOTIFY needs a seccomp agent, which tscontain does not run');
  return oneOf(v, ACTIONS, where);
}

function rule(v: unknown, where: string): SeccompRule {
  if (!isObject(v)) fail(where, 'must be an object');
  const hasName = typeof v.name === 'string' && v.name !== '';
  const names = strings(v.names, `${where}.names`);
  if (hasName && names.length) fail(where, 'has both "name" and "names"; use one');
  if (!hasName && !names.length) fail(where, 'names no syscall');
  if (v.args !== undefined && v.args !== null && !Array.isArray(v.args)) fail(`${where}.args`, 'must be a list');
  return {
    names: hasName ? [v.name as string] : names,
    action: action(v.action, `${where}.action`),
    errnoRet: errno(v.errnoRet, `${where}.errnoRet`),
    args: ((v.args as unknown[] | undefined) ?? []).map((a, i) => arg(a, `${where}.args[${i}]`)),
    includes: condition(v.includes, `${where}.includes`),
    excludes: condition(v.excludes, `${where}.excludes`),
  };
}

/** Checks a parsed profile. null: no defaultAction and no syscalls, which docker takes as unconfined. */
export function validateProfile(v: unknown, source = 'seccomp profile'): SeccompProfile | null {
  if (!isObject(v)) fail(source, 'must be a JSON object');
  const syscalls = v.syscalls ?? [];
  if (!Array.isArray(syscalls)) fail(`${source}: syscalls`, 'must be a list');
  if ((v.defaultAction === undefined || v.defaultAction === '') && !syscalls.length) return null;
  if (v.defaultAction === undefined) fail(source, 'defaultAction is missing');
  const architectures = strings(v.architectures, `${source}: architectures`);
  const archMap = v.archMap ?? [];
  if (!Array.isArray(archMap)) fail(`${source}: archMap`, 'must be a list');
  if (architectures.length && archMap.length) fail(source, 'has both "architectures" and "archMap"; use one');
  const flags = strings(v.flags, `${source}: flags`);
  for (const f of flags) oneOf(f, Object.keys(FLAGS), `${source}: flags`);
  if (v.listenerPath) fail(`${source}: listenerPath`, 'a seccomp agent is not supported by tscontain');
  return {
    defaultAction: action(v.defaultAction, `${source}: defaultAction`),
    defaultErrnoRet: errno(v.defaultErrnoRet, `${source}: defaultErrnoRet`),
    architectures,
    archMap: archMap.map((m, i) => {
      const where = `${source}: archMap[${i}]`;
      if (!isObject(m) || typeof m.architecture !== 'string') fail(where, 'must be an object with architecture');
      const subArchitectures = strings(m.subArchitectures, `${where}.subArchitectures`);
      return { architecture: m.architecture, subArchitectures };
    }),
    flags,
    syscalls: syscalls.map((s, i) => rule(s, `${source}: syscalls[${i}]`)),
  };
}

/** Parses the text of a profile file (`--security-opt seccomp=FILE.json`). null: the profile confines nothing. */
export function parseProfile(text: string, source = 'seccomp profile'): SeccompProfile | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail(source, `not JSON (${(e as Error).message.split('\n')[0]})`);
  }
  return validateProfile(v, source);
}

let defaultCache: SeccompProfile | undefined;
/** Docker's default profile (src/kernel/seccomp-default.ts). */
export function defaultProfile(): SeccompProfile {
  return (defaultCache ??= parseProfile(DOCKER_DEFAULT_PROFILE_JSON, "docker's default seccomp profile")!);
}

/**
 * `--security-opt seccomp=VALUE`: undefined -> docker's default; 'unconfined' -> null (no filter);
 * anything else is a file, read by `read` (the caller's I/O), in docker's profile format.
 */
export function seccompFromOption(value: string | undefined, read: (path: string) => string): SeccompProfile | null {
  if (value === undefined || value === 'builtin') return defaultProfile();
  if (value === 'unconfined') return null;
  let text: string;
  try {
    text = read(value);
  } catch (e) {
    throw new TscError(
      `seccomp profile ${value}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      "give a JSON file in docker's profile format, or seccomp=unconfined",
    );
  }
  return parseProfile(text, `seccomp profile ${value}`);
}

/** The seccomp(2) flags the profile asks for (SECCOMP_FILTER_FLAG_*), for the loader's --flags. */
export function seccompFlags(profile: SeccompProfile): number {
  return profile.flags.reduce((f, name) => f | FLAGS[name], 0);
}

// ---------------------------------------------------------------------------------------------------
// Which rules apply (docker's setupSeccomp), and what each ABI's syscall numbers do.

type Abi = 'x86_64' | 'i386' | 'x32' | 'aarch64';
const TABLES: Record<Abi, SyscallRuns> = { x86_64: X86_64, i386: I386, x32: X32, aarch64: AARCH64 };
const X32_BIT = 0x40000000;
const AUDIT_ARCH = { x86_64: 0xc000003e, i386: 0x40000003, aarch64: 0xc00000b7 } as const;
/** docker's name for the host arch (includes/excludes.arches) and libseccomp's, per host arch */
const HOST = {
  x86_64: { docker: 'amd64', native: 'SCMP_ARCH_X86_64' },
  aarch64: { docker: 'arm64', native: 'SCMP_ARCH_AARCH64' },
} as const;
/** The ABIs a host runs, by libseccomp name. SCMP_ARCH_ARM has no table here: its processes are killed. */
const ABI_OF: Record<SeccompArch, Record<string, Abi>> = {
  x86_64: { SCMP_ARCH_X86_64: 'x86_64', SCMP_ARCH_X86: 'i386', SCMP_ARCH_X32: 'x32' },
  aarch64: { SCMP_ARCH_AARCH64: 'aarch64' },
};

const numbersCache = new Map<Abi, Map<string, number>>();
function numbers(abi: Abi): Map<string, number> {
  let m = numbersCache.get(abi);
  if (!m) {
    m = new Map();
    for (const [start, names] of TABLES[abi]) {
      names.split(' ').forEach((n, i) => {
        if (n !== '-') m!.set(n, start + i);
      });
    }
    numbersCache.set(abi, m);
  }
  return m;
}

export const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;
const EPERM = 1;
const ENOSYS = 38;

function verdict(a: SeccompAction, data: number | undefined): number {
  switch (a) {
    case 'SCMP_ACT_ALLOW':
      return RET.ALLOW;
    case 'SCMP_ACT_LOG':
      return RET.LOG;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return RET.KILL_PROCESS;
    case 'SCMP_ACT_ERRNO':
      return RET.ERRNO | (data ?? EPERM);
    case 'SCMP_ACT_TRAP':
      return RET.TRAP | (data ?? EPERM);
    case 'SCMP_ACT_TRACE':
      return RET.TRACE | (data ?? EPERM);
  }
}

function kernelVersion(release: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) throw new TscError(`cannot read the kernel version from ${JSON.stringify(release)}`);
  return [Number(m[1]), Number(m[2])];
}
type Version = readonly [number, number];
const atLeast = (k: Version, min: Version) => k[0] > min[0] || (k[0] === min[0] && k[1] >= min[1]);
const capName = (c: string) => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`);

/** docker's includes/excludes: caps against the bounding set, arches against the host, minKernel. */
function applies(r: SeccompRule, caps: Set<string>, dockerArch: string, kernel: [number, number]): boolean {
  const ex = r.excludes,
    inc = r.includes;
  if (ex.arches.includes(dockerArch)) return false;
  if (ex.caps.some((c) => caps.has(capName(c)))) return false;
  if (ex.minKernel && atLeast(kernel, ex.minKernel)) return false;
  if (inc.arches.length && !inc.arches.includes(dockerArch)) return false;
  if (inc.caps.some((c) => !caps.has(capName(c)))) return false;
  if (inc.minKernel && !atLeast(kernel, inc.minKernel)) return false;
  return true;
}

/** A comparison as emitted: `wide` compares all 64 bits, else only the low word. */
interface Cond extends SeccompArg {
  wide: boolean;
}
interface ArgRule {
  conds: Cond[];
  ret: number;
}
/** What one syscall number does: a verdict, or argument rules tried in order before `ret`. */
interface Syscall {
  ret: number;
  rules: ArgRule[];
  name: string;
}

interface AbiPlan {
  abi: Abi;
  calls: Map<number, Syscall>;
  highest: number;
  unknown: string[];
}

/**
 * Arguments the kernel reads as 32-bit (`int` or `unsigned int` in their SYSCALL_DEFINE), by syscall. A
 * 64-bit compare on them could be passed with high bits the kernel then drops: socket(0x100000028) would
 * pass "family > 40" and still open AF_VSOCK, ioctl(fd, 0x100005412) would slip past a rule on TIOCSTI.
 * So these compare the low word only, which is what the kernel sees. (libseccomp compares all 64 bits.)
 */
const INT_ARGS: Record<string, number[]> = {
  socket: [0, 1, 2],
  socketpair: [0, 1, 2],
  setsockopt: [0, 1, 2],
  getsockopt: [0, 1, 2],
  personality: [0],
  ioctl: [0, 1],
  fcntl: [0, 1],
  prctl: [0],
};
/** ABIs whose arguments are 64-bit; libseccomp compares only the low word on i386 and x32. */
const WIDE: Record<Abi, boolean> = { x86_64: true, aarch64: true, i386: false, x32: false };

function planAbi(abi: Abi, rules: SeccompRule[], defaultRet: number): AbiPlan {
  const table = numbers(abi);
  const calls = new Map<number, Syscall & { fixed: boolean }>();
  let highest = -1;
  const unknown = new Set<string>();
  for (const r of rules) {
    const ret = verdict(r.action, r.errnoRet);
    // runc: several conditions on one argument are alternatives (one rule each), else all must hold
    const indexes = r.args.map((a) => a.index);
    const groups = new Set(indexes).size < indexes.length ? r.args.map((a) => [a]) : [r.args];
    for (const name of r.names) {
      const nr = table.get(name);
      if (nr === undefined) {
        unknown.add(name);
        continue;
      }
      highest = Math.max(highest, nr);
      if (ret === defaultRet) continue; // runc drops rules that do what the default does
      const call = calls.get(nr) ?? { ret: defaultRet, rules: [], name, fixed: false };
      calls.set(nr, call);
      if (!r.args.length) {
        if (call.fixed && call.ret !== ret) {
          throw new TscError(`seccomp profile: ${name} has two rules with different actions`, 'keep one of them');
        }
        call.ret = ret;
        call.fixed = true;
      } else {
        const wide = (a: SeccompArg) => WIDE[abi] && !INT_ARGS[name]?.includes(a.index);
        for (const conds of groups) call.rules.push({ conds: conds.map((a) => ({ ...a, wide: wide(a) })), ret });
      }
    }
  }
  // an argument rule with the syscall's own verdict changes nothing
  for (const c of calls.values()) c.rules = c.rules.filter((r) => r.ret !== c.ret);
  return { abi, calls, highest, unknown: [...unknown].filter((n) => !table.has(n)).sort() };
}

// ---------------------------------------------------------------------------------------------------
// Classic BPF, emitted back to front: every jump goes forward, so when a jump is emitted its targets
// are already placed and its distance is known. A conditional jump reaches at most 255 instructions;
// a farther target gets an unconditional `ja` (32-bit offset) right after the jump.

const BPF = {
  LD_W_ABS: 0x20,
  ALU_AND_K: 0x54,
  JA: 0x05,
  JEQ_K: 0x15,
  JGT_K: 0x25,
  JGE_K: 0x35,
  RET_K: 0x06,
} as const;
const DATA = { nr: 0, arch: 4, argLo: (i: number) => 16 + 8 * i, argHi: (i: number) => 20 + 8 * i };
export const BPF_MAXINSNS = 4096;

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}
/** A position in the reversed program (what `Emitter.code[label]` is). */
type Label = number;

class Emitter {
  readonly code: Insn[] = [];
  private rets = new Map<number, Label>();

  private push(code: number, k: number, jt = 0, jf = 0): Label {
    this.code.push({ code, jt, jf, k: k >>> 0 });
    return this.code.length - 1;
  }
  /** instructions strictly between the next emitted one and `to` */
  private dist(to: Label) {
    return this.code.length - to - 1;
  }

  ld(offset: number): Label {
    return this.push(BPF.LD_W_ABS, offset);
  }
  and(mask: number): Label {
    return this.push(BPF.ALU_AND_K, mask);
  }
  ret(value: number): Label {
    const near = this.rets.get(value);
    if (near !== undefined && this.dist(near) < 128) return near;
    const at = this.push(BPF.RET_K, value);
    this.rets.set(value, at);
    return at;
  }
  jump(code: number, k: number, t: Label, f: Label): Label {
    if (t === f) return t;
    if (this.dist(f) > 255) f = this.push(BPF.JA, this.dist(f));
    if (this.dist(t) > 255) t = this.push(BPF.JA, this.dist(t));
    return this.push(code, k, this.dist(t), this.dist(f));
  }
  program(): Buffer {
    const n = this.code.length;
    if (n > BPF_MAXINSNS) {
      throw new TscError(`the seccomp filter has ${n} instructions, more than the kernel takes (${BPF_MAXINSNS})`);
    }
    const b = Buffer.alloc(n * 8);
    this.code.forEach((ins, i) => {
      const o = (n - 1 - i) * 8;
      b.writeUInt16LE(ins.code, o);
      b.writeUInt8(ins.jt, o + 2);
      b.writeUInt8(ins.jf, o + 3);
      b.writeUInt32LE(ins.k, o + 4);
    });
    return b;
  }
}

const hi32 = (v: bigint) => Number((v >> 32n) & 0xffffffffn);
const lo32 = (v: bigint) => Number(v & 0xffffffffn);

/** One argument comparison: falls to `pass` or `fail`. 64-bit ABIs compare the high word first. */
function emitCond(e: Emitter, c: Cond, pass: Label, fail: Label): Label {
  const { index: i, op } = c;
  const masked = op === 'SCMP_CMP_MASKED_EQ';
  // MASKED_EQ: value is the mask, valueTwo the datum (runc's MakeCondition(index, op, value, valueTwo))
  const v = masked ? c.valueTwo : c.value;
  const m = c.value;
  const [vh, vl] = [hi32(v), lo32(v)];
  let lo: Label;
  switch (op) {
    case 'SCMP_CMP_EQ':
      lo = e.jump(BPF.JEQ_K, vl, pass, fail);
      break;
    case 'SCMP_CMP_NE':
      lo = e.jump(BPF.JEQ_K, vl, fail, pass);
      break;
    case 'SCMP_CMP_GT':
      lo = e.jump(BPF.JGT_K, vl, pass, fail);
      break;
    case 'SCMP_CMP_GE':
      lo = e.jump(BPF.JGE_K, vl, pass, fail);
      break;
    case 'SCMP_CMP_LT':
      lo = e.jump(BPF.JGE_K, vl, fail, pass);
      break;
    case 'SCMP_CMP_LE':
      lo = e.jump(BPF.JGT_K, vl, fail, pass);
      break;
    case 'SCMP_CMP_MASKED_EQ':
      lo = e.jump(BPF.JEQ_K, vl, pass, fail);
      if (lo32(m) !== 0xffffffff) lo = e.and(lo32(m));
      break;
  }
  lo = e.ld(DATA.argLo(i));
  if (!c.wide) return lo;
  switch (op) {
    case 'SCMP_CMP_EQ':
      e.jump(BPF.JEQ_K, vh, lo, fail);
      break;
    case 'SCMP_CMP_NE':
      e.jump(BPF.JEQ_K, vh, lo, pass);
      break;
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
      e.jump(BPF.JGT_K, vh, pass, e.jump(BPF.JEQ_K, vh, lo, fail));
      break;
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE':
      e.jump(BPF.JGT_K, vh, fail, e.jump(BPF.JEQ_K, vh, lo, pass));
      break;
    case 'SCMP_CMP_MASKED_EQ':
      if (hi32(m) === 0 && vh === 0) return lo; // the high word cannot matter
      e.jump(BPF.JEQ_K, vh, lo, fail);
      if (hi32(m) !== 0xffffffff) e.and(hi32(m));
      break;
  }
  return e.ld(DATA.argHi(i));
}

/** A syscall's argument rules: each rule's conditions all hold -> its verdict; none matched -> call.ret. */
function emitCall(e: Emitter, call: Syscall): Label {
  let next = e.ret(call.ret);
  for (const r of [...call.rules].reverse()) {
    let ok = e.ret(r.ret);
    const otherwise = next;
    for (const c of [...r.conds].reverse()) ok = emitCond(e, c, ok, otherwise);
    next = ok;
  }
  return next;
}

/** [first, last] syscall numbers with one outcome: a verdict, or a syscall's argument rules. */
interface Span {
  lo: number;
  hi: number;
  ret?: number;
  call?: Syscall;
}

/** Numbers from..to of one ABI: its syscalls, the default up to the highest it knows, `beyond` after. */
function spans(plan: AbiPlan, base: number, to: number, defaultRet: number, beyond: number): Span[] {
  const out: Span[] = [];
  const add = (s: Span) => {
    const last = out[out.length - 1];
    if (last && s.ret !== undefined && last.ret === s.ret && last.hi + 1 === s.lo) last.hi = s.hi;
    else out.push(s);
  };
  let at = base;
  for (const nr of [...plan.calls.keys()].sort((a, b) => a - b)) {
    const call = plan.calls.get(nr)!;
    if (base + nr > at) add({ lo: at, hi: base + nr - 1, ret: defaultRet });
    add(call.rules.length ? { lo: base + nr, hi: base + nr, call } : { lo: base + nr, hi: base + nr, ret: call.ret });
    at = base + nr + 1;
  }
  // highest >= every number in calls, so `at` is at most top + 1 here
  const top = base + plan.highest;
  if (top >= at) add({ lo: at, hi: top, ret: defaultRet });
  // an ABI the profile names nothing of keeps the default for all its numbers
  if (top + 1 <= to) add({ lo: top + 1, hi: to, ret: plan.highest < 0 ? defaultRet : beyond });
  return out;
}

/** A balanced search on the syscall number (in the accumulator): about log2(spans) jumps per call. */
function emitSearch(e: Emitter, s: Span[], from = 0, to = s.length - 1): Label {
  if (from === to) return s[from].call ? emitCall(e, s[from].call!) : e.ret(s[from].ret!);
  const mid = (from + to + 1) >> 1;
  const right = emitSearch(e, s, mid, to);
  const left = emitSearch(e, s, from, mid - 1);
  return e.jump(BPF.JGE_K, s[mid].lo, right, left);
}

interface Section {
  audit: number;
  spans: Span[];
}

function build(profile: SeccompProfile, target: SeccompTarget) {
  const host = HOST[target.arch];
  if (!host) {
    throw new TscError(
      `seccomp: no syscall table for arch ${JSON.stringify(target.arch)}`,
      'use --security-opt seccomp=unconfined',
    );
  }
  const kernel = kernelVersion(target.kernel);
  const caps = new Set(target.caps.map(capName));
  const defaultRet = verdict(profile.defaultAction, profile.defaultErrnoRet);
  // runc (patchbpf): numbers above the highest the profile names answer ENOSYS, unless all is allowed anyway
  const permissive = defaultRet === RET.ALLOW || defaultRet === RET.LOG;
  const beyond = permissive ? defaultRet : RET.ERRNO | ENOSYS;

  let arches: string[] = profile.architectures;
  if (profile.archMap.length) {
    const m = profile.archMap.find((a) => a.architecture === host.native);
    arches = m ? [m.architecture, ...m.subArchitectures] : [];
  }
  const abis = new Set<Abi>([ABI_OF[target.arch][host.native]]); // libseccomp always filters the native ABI
  for (const a of arches) if (ABI_OF[target.arch][a]) abis.add(ABI_OF[target.arch][a]);

  const rules = profile.syscalls.filter((r) => applies(r, caps, host.docker, kernel));
  const plans = new Map([...abis].map((abi) => [abi, planAbi(abi, rules, defaultRet)]));
  const sections: Section[] = [];
  const max = 0xffffffff;
  if (target.arch === 'x86_64') {
    const x32 = plans.get('x32');
    // One audit arch for x86_64 and x32: the syscall number's bit 30 tells them apart.
    const native = spans(plans.get('x86_64')!, 0, X32_BIT - 1, defaultRet, beyond);
    const x32Spans = x32
      ? spans(x32, X32_BIT, max, defaultRet, beyond)
      : [{ lo: X32_BIT, hi: max, ret: RET.KILL_PROCESS }];
    sections.push({ audit: AUDIT_ARCH.x86_64, spans: [...native, ...x32Spans] });
    const i386 = plans.get('i386');
    if (i386) sections.push({ audit: AUDIT_ARCH.i386, spans: spans(i386, 0, max, defaultRet, beyond) });
  } else {
    const native = spans(plans.get('aarch64')!, 0, max, defaultRet, beyond);
    sections.push({ audit: AUDIT_ARCH.aarch64, spans: native });
  }

  const e = new Emitter();
  const starts = [...sections]
    .reverse()
    .map((s) => {
      emitSearch(e, s.spans);
      return e.ld(DATA.nr);
    })
    .reverse();
  // Any other arch (a 32-bit ARM process on arm64, say): killed, as libseccomp's bad-arch action does
  // (for the whole process: a thread of another ABI is not worth keeping half alive).
  let next = e.ret(RET.KILL_PROCESS);
  for (let i = sections.length - 1; i >= 0; i--) next = e.jump(BPF.JEQ_K, sections[i].audit, starts[i], next);
  e.ld(DATA.arch);
  return { program: e.program(), plans, sections };
}

/** Compiles a profile to a classic BPF seccomp filter: `struct sock_filter[]`, 8 bytes each, little-endian. */
export function compileSeccomp(profile: SeccompProfile, target: SeccompTarget): Buffer {
  return build(profile, target).program;
}

/** What a compiled filter covers, for the plan's narration and doctor. */
export function seccompSummary(profile: SeccompProfile, target: SeccompTarget) {
  const { program, plans } = build(profile, target);
  return {
    instructions: program.length / 8,
    abis: [...plans.values()].map((p) => ({
      abi: p.abi,
      syscalls: [...p.calls.values()].filter((c) => !c.rules.length && c.ret === RET.ALLOW).length,
      conditional: [...p.calls.values()]
        .filter((c) => c.rules.length)
        .map((c) => c.name)
        .sort(),
      highest: p.highest,
      unknown: p.unknown.length,
    })),
  };
}

/**
 * A name for the compiled filter of this profile and target: equal inputs, equal names. Compiling costs
 * a few milliseconds in a cold process, so a caller may keep filters in its store under this name.
 */
export function seccompCacheKey(profile: SeccompProfile, target: SeccompTarget): string {
  const [major, minor] = kernelVersion(target.kernel);
  const caps = [...new Set(target.caps.map(capName))].sort();
  const text = JSON.stringify([SECCOMP_COMPILER_VERSION, target.arch, `${major}.${minor}`, caps, profile], (_, v) =>
    typeof v === 'bigint' ? v.toString() : v,
  );
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** What `tscontain doctor` needs to know, gathered by its caller. */
export interface SeccompFacts {
  /** process.arch */
  arch: string;
  /** path of perl, if on PATH */
  perl: string | undefined;
  /** /proc/sys/kernel/seccomp/actions_avail, if readable (absent: no SECCOMP_FILTER in the kernel) */
  actionsAvail: string | undefined;
  /** os.release() */
  kernel: string;
}

export interface SeccompCheck {
  what: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

/** The doctor's line for seccomp: can the default profile be compiled and loaded here? */
export function seccompCheck(f: SeccompFacts): SeccompCheck {
  const what = 'seccomp';
  const arch = hostSeccompArch(f.arch);
  if (!f.actionsAvail) {
    return {
      what,
      status: 'warn',
      detail: 'the kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)',
      fix: 'containers run without a syscall filter; use --security-opt seccomp=unconfined to say so',
    };
  }
  const missing = ['errno', 'allow', 'kill_process'].filter((a) => !f.actionsAvail!.split(/\s+/).includes(a));
  if (missing.length) {
    return { what, status: 'warn', detail: `the kernel lacks seccomp actions: ${missing.join(', ')}` };
  }
  if (!arch) {
    return {
      what,
      status: 'warn',
      detail: `no syscall table for ${f.arch}`,
      fix: 'containers need --security-opt seccomp=unconfined on this machine',
    };
  }
  if (!f.perl) {
    return {
      what,
      status: 'fail',
      detail: 'perl (perl-base) loads the filter and is not on PATH',
      fix: 'apt-get install perl-base',
    };
  }
  const n = compileSeccomp(defaultProfile(), { arch, caps: [], kernel: f.kernel }).length / 8;
  const detail = `docker's default profile on ${arch}: ${n} BPF instructions, loaded by ${f.perl}`;
  return { what, status: 'ok', detail };
}
