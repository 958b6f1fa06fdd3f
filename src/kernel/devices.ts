// Which device nodes a container may open (or make), as an ordered rule list like the OCI spec's
// linux.resources.devices (the last rule that matches decides), and its two kernel forms:
// - cgroup v1: the devices controller (`a` to devices.deny, then one devices.allow write per rule);
// - cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program compiled here to eBPF bytes, which the
//   constant perl-base program devices-attach.pl loads and attaches to the container's cgroup.
// Plus `--device HOST[:CTR[:rwm]]`: its rule, and its node bound into the container's /dev.
// See docs/containment.md, "Devices", for why it is done this way.
import { statSync } from 'node:fs';
import { posix } from 'node:path';
import { TscError } from '../errors.js';
import { kernel_devices_attach_pl } from '../gen/assets.js';
import { sh, type Sh } from '../plan/sh.js';
import type { Check } from '../host/doctor.js';

export type DevType = 'a' | 'b' | 'c';

export interface DeviceRule {
  allow: boolean;
  /** a = any type (and then any major and minor) */
  type: DevType;
  /** undefined = any */
  major?: number;
  minor?: number;
  /** a non-empty subset of "rwm" (read, write, mknod) */
  access: string;
}

const rule = (
  allow: boolean,
  type: DevType,
  major: number | undefined,
  minor: number | undefined,
  access = 'rwm',
): DeviceRule => ({ allow, type, major, minor, access });

/**
 * The default list: docker's spec (deny all, then null, zero, urandom, random, tty) with what runc
 * adds to every container (specconv.AllowedDevices: mknod of any node, full, ptmx, the pts
 * slaves), so that MKNOD, which docker keeps, makes nodes that cannot be opened. Left out on
 * purpose: c 5:1 (docker and runc allow it, but a node made with it is the host's console; a
 * container's /dev/console, once it has one, is a bind of its own pty, 136:N) and c 10:200
 * (/dev/net/tun: runc allows it, docker does not; the container has no such node).
 */
export const DEFAULT_RULES: readonly DeviceRule[] = [
  rule(false, 'a', undefined, undefined),
  rule(true, 'c', undefined, undefined, 'm'),
  rule(true, 'b', undefined, undefined, 'm'),
  rule(true, 'c', 1, 3), // null
  rule(true, 'c', 1, 5), // zero
  rule(true, 'c', 1, 7), // full
  rule(true, 'c', 1, 8), // random
  rule(true, 'c', 1, 9), // urandom
  rule(true, 'c', 5, 0), // tty: the process's controlling terminal
  rule(true, 'c', 5, 2), // ptmx: opens the devpts instance beside the node (the container's own)
  rule(true, 'c', 136, undefined), // pts slaves: open only through a devpts mount
];

// ---- --device ----

/** What the host says about a --device path (stat(2)); undefined = it does not exist. */
export interface DeviceFacts {
  type: 'c' | 'b' | 'other';
  major: number;
  minor: number;
}

export interface DeviceRequest {
  host: string;
  /** the path inside the container, under /dev */
  path: string;
  access: string;
}

export interface Device extends DeviceRequest {
  type: 'c' | 'b';
  major: number;
  minor: number;
}

const isAccess = (s: string) => s !== '' && /^[rwm]+$/.test(s) && new Set(s).size === s.length;

/** Mounted over /dev by the container's fstab after the /dev overlay: no device can go there. */
const NOT_UNDER = ['pts', 'shm', 'mqueue'];

function devPath(p: string, arg: string): string {
  const rel = p.startsWith('/dev/') ? p.slice(5) : '';
  const parts = rel.split('/');
  if (!rel || parts.some((c) => c === '' || c === '.' || c === '..') || NOT_UNDER.includes(parts[0]))
    throw new TscError(
      `--device ${arg}: the container path must be a plain path under /dev/, not /dev/pts, /dev/shm or /dev/mqueue`,
      'e.g. --device /dev/sdb:/dev/xvdb',
    );
  if (/[\u0000-\u0020\u007f,:\\"$`']/.test(p))
    throw new TscError(
      `--device ${arg}: the path contains a blank, quote, comma, colon or backslash`,
      'use a plain name',
    );
  return p;
}

/**
 * --device HOST[:CTR[:rwm]] as docker reads it (opts.ParseDevice): with two fields the second is
 * the access if it looks like one, else the container path; the container path defaults to HOST.
 */
export function parseDevice(arg: string): DeviceRequest {
  const f = arg.split(':');
  if (f.length > 3 || f.some((x) => x === ''))
    throw new TscError(`--device ${arg}: expected HOST[:CONTAINER[:rwm]]`, 'e.g. --device /dev/sdb:/dev/xvdb:r');
  const [host] = f;
  let [, path, access] = f;
  if (f.length === 2 && isAccess(path)) [path, access] = [host, path];
  path ??= host;
  access ??= 'rwm';
  if (!host.startsWith('/')) throw new TscError(`--device ${arg}: the host path must be absolute`);
  if (!isAccess(access)) throw new TscError(`--device ${arg}: the access must be letters of rwm`, 'e.g. r, rw or rwm');
  return { host, path: devPath(path, arg), access };
}

/** A request checked against the host: its path must be a character or block device. */
export function resolveDevice(req: DeviceRequest, facts: DeviceFacts | undefined): Device {
  if (!facts) throw new TscError(`--device ${req.host}: no such file on this host`);
  if (facts.type === 'other')
    throw new TscError(`--device ${req.host}: not a character or block device`, 'give a device node such as /dev/sdb');
  if (/[\u0000-\u0020\u007f,\\"$`']/.test(req.host))
    throw new TscError(`--device ${req.host}: the host path contains a blank, quote, comma or backslash`);
  return { ...req, type: facts.type, major: facts.major, minor: facts.minor };
}

/** stat(2) of a host path, for resolveDevice (follows symlinks, as docker does: /dev/disk/by-id/...). */
export function hostDeviceFacts(path: string): DeviceFacts | undefined {
  let s;
  try {
    s = statSync(path, { bigint: true });
  } catch {
    return undefined;
  }
  const type = s.isCharacterDevice() ? 'c' : s.isBlockDevice() ? 'b' : 'other';
  // glibc's gnu_dev_major/gnu_dev_minor
  const r = s.rdev;
  const major = Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
  const minor = Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
  return { type, major, minor };
}

/** The full list for a container: the defaults, then one allow per --device (it wins: it comes last). */
export function deviceRules(devices: readonly Device[], opts: { privileged?: boolean } = {}): DeviceRule[] {
  if (opts.privileged) return [rule(true, 'a', undefined, undefined)];
  return [...DEFAULT_RULES, ...devices.map((d) => rule(true, d.type, d.major, d.minor, d.access))];
}

/**
 * Where --device nodes appear: a layer of our own (lowerdir, above the shared /dev skeleton) holds
 * an empty file per device, which the fstab line binds the host's node onto. The layer lives in
 * the container's run directory, which only tscontain writes: nothing is created in a directory
 * the container could have filled with symlinks. The files are made with sh builtins (`: >`).
 */
export interface DeviceMounts {
  /** the layer, to put first in the /dev overlay's lowerdir (`LAYER:$tsc_dev`); none without --device */
  layer?: string;
  /** directories to create (absolute): the layer and its subdirectories, parents first */
  dirs: string[];
  /** sh lines that create the empty mount-point files */
  lines: Sh[];
  /** fstab lines, after the one that mounts /dev (targets are relative to the --target-prefix) */
  fstab: string[];
}

export function deviceMounts(devices: readonly Device[], layer: string): DeviceMounts {
  if (!devices.length) return { dirs: [], lines: [], fstab: [] };
  const dirs = new Set<string>([layer]);
  for (const d of devices) {
    for (let p = posix.dirname(d.path); p !== '/dev'; p = posix.dirname(p)) dirs.add(posix.join(layer, p.slice(5)));
  }
  return {
    layer,
    dirs: [...dirs].sort((a, b) => a.length - b.length),
    lines: devices.map((d) => sh`: > ${posix.join(layer, d.path.slice(5))}`),
    fstab: devices.map((d) => `${d.host} ${d.path} none bind,nosuid,noexec 0 0`),
  };
}

// ---- the rule list as the kernel's reference: last match wins ----

export const TYPE_BLOCK = 1;
export const TYPE_CHAR = 2;
export const ACC_MKNOD = 1;
export const ACC_READ = 2;
export const ACC_WRITE = 4;

const accessBits = (s: string) =>
  (s.includes('m') ? ACC_MKNOD : 0) | (s.includes('r') ? ACC_READ : 0) | (s.includes('w') ? ACC_WRITE : 0);
const typeCode = (t: 'b' | 'c') => (t === 'b' ? TYPE_BLOCK : TYPE_CHAR);

/**
 * Does a rule decide this request? An allow rule must grant every bit asked for; a deny rule
 * decides as soon as it covers one of them (stricter than matching all: deny `w` stops `rw`).
 */
function matches(r: DeviceRule, type: number, major: number, minor: number, access: number): boolean {
  if (r.type !== 'a' && typeCode(r.type) !== type) return false;
  if (r.type !== 'a' && r.major !== undefined && r.major !== major) return false;
  if (r.type !== 'a' && r.minor !== undefined && r.minor !== minor) return false;
  const bits = accessBits(r.access);
  return r.allow ? (access & ~bits) === 0 : (access & bits) !== 0;
}

/** The verdict the rules give (1 allow, 0 deny): what the eBPF program computes. No match: deny. */
export function verdict(
  rules: readonly DeviceRule[],
  type: number,
  major: number,
  minor: number,
  access: number,
): 0 | 1 {
  for (let i = rules.length - 1; i >= 0; i--)
    if (matches(rules[i], type, major, minor, access)) return rules[i].allow ? 1 : 0;
  return 0;
}

// ---- cgroup v1: the devices controller ----

/** "c 1:3 rwm", "c *:* m", "a": the syntax of devices.allow and devices.deny. */
export function v1Rule(r: DeviceRule): string {
  if (r.type === 'a') return 'a';
  const n = (x: number | undefined) => (x === undefined ? '*' : String(x));
  return `${r.type} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}

/**
 * Writes into the container's v1 devices cgroup, before any process is in it. The kernel takes
 * one rule per write, so each is its own echo. v1 keeps a default (allow or deny all) and a list
 * of exceptions, so only lists that start with `a` map exactly: then deny-all and one allow per
 * rule (a later deny removes a matching exception, as the kernel does).
 */
export function v1Lines(rules: readonly DeviceRule[], dir: string | Sh): Sh[] {
  const [first, ...rest] = rules;
  if (first?.type === 'a' && first.allow && rest.length === 0) return [sh`echo a > ${dir}/devices.allow`];
  if (first?.type !== 'a' || first.allow || accessBits(first.access) !== 7 || rest.some((r) => r.type === 'a'))
    throw new Error('a v1 device rule list is `a` allowed alone, or `a` denied first and no other `a`');
  return [
    sh`echo a > ${dir}/devices.deny`,
    ...rest.map((r) =>
      r.allow ? sh`echo ${v1Rule(r)} > ${dir}/devices.allow` : sh`echo ${v1Rule(r)} > ${dir}/devices.deny`,
    ),
  ];
}

// ---- cgroup v2: an eBPF program ----
// struct bpf_cgroup_dev_ctx { u32 access_type /* (access << 16) | type */; u32 major; u32 minor; }
// Registers: r1 = ctx; r2 = type, r3 = access, r4 = major, r5 = minor; r0 = the verdict.

const LDX_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV32_K = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K (64-bit compare: JMP32 needs Linux 5.1)
const JNE_K = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT = 0x95; // BPF_JMP | BPF_EXIT

interface Insn {
  op: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}
const I = (op: number, dst: number, src: number, off: number, imm: number): Insn => ({ op, dst, src, off, imm });

/** A rule that decides every request: the rules before it can never be reached. */
const catchAll = (r: DeviceRule) => r.type === 'a' && accessBits(r.access) === 7;

/** One rule: jumps to the next rule when it does not match, else returns its verdict. */
function ruleBlock(r: DeviceRule): Insn[] {
  const tests: Insn[] = []; // off = -1 marks "to the next rule"; fixed below
  if (r.type !== 'a') {
    tests.push(I(JNE_K, 2, 0, -1, typeCode(r.type)));
    if (r.major !== undefined) tests.push(I(JNE_K, 4, 0, -1, r.major));
    if (r.minor !== undefined) tests.push(I(JNE_K, 5, 0, -1, r.minor));
  }
  const bits = accessBits(r.access);
  if (bits !== 7) {
    tests.push(I(MOV32_X, 1, 3, 0, 0), I(AND32_K, 1, 0, 0, bits));
    // allow: every bit asked for is granted (r1 == r3); deny: one of them is covered (r1 != 0)
    tests.push(r.allow ? I(JNE_X, 1, 3, -1, 0) : I(JEQ_K, 1, 0, -1, 0));
  }
  const block = [...tests, I(MOV32_K, 0, 0, 0, r.allow ? 1 : 0), I(EXIT, 0, 0, 0, 0)];
  return block.map((ins, pc) => (ins.off === -1 ? { ...ins, off: block.length - pc - 1 } : ins));
}

function checkRule(r: DeviceRule): void {
  const u32 = (x: number | undefined) => x === undefined || (Number.isInteger(x) && x >= 0 && x <= 0x7fffffff);
  if (!u32(r.major) || !u32(r.minor) || !isAccess(r.access)) throw new Error(`bad device rule ${JSON.stringify(r)}`);
}

/** The rules as eBPF instructions: the last rule is tested first, and the first match returns. */
export function compileInsns(rules: readonly DeviceRule[]): Insn[] {
  rules.forEach(checkRule);
  const prologue = [
    I(LDX_W, 2, 1, 0, 0),
    I(AND32_K, 2, 0, 0, 0xffff), // type
    I(LDX_W, 3, 1, 0, 0),
    I(RSH32_K, 3, 0, 0, 16), // access
    I(LDX_W, 4, 1, 4, 0), // major
    I(LDX_W, 5, 1, 8, 0), // minor
  ];
  const body: Insn[] = [];
  for (let i = rules.length - 1; i >= 0; i--) {
    body.push(...ruleBlock(rules[i]));
    if (catchAll(rules[i])) return [...prologue, ...body]; // the verifier rejects unreachable code
  }
  return [...prologue, ...body, I(MOV32_K, 0, 0, 0, 0), I(EXIT, 0, 0, 0, 0)]; // no match: deny
}

/** struct bpf_insn, little-endian (x86_64 and aarch64): op, dst | src << 4, s16 off, s32 imm. */
export function encode(insns: readonly Insn[]): Uint8Array {
  const b = new Uint8Array(insns.length * 8);
  const v = new DataView(b.buffer);
  insns.forEach((ins, i) => {
    v.setUint8(i * 8, ins.op);
    v.setUint8(i * 8 + 1, (ins.src << 4) | ins.dst);
    v.setInt16(i * 8 + 2, ins.off, true);
    v.setInt32(i * 8 + 4, ins.imm, true);
  });
  return b;
}

/** The BPF_PROG_TYPE_CGROUP_DEVICE program for a rule list, as bytes. */
export const compileProgram = (rules: readonly DeviceRule[]): Uint8Array => encode(compileInsns(rules));

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * cgroup v2: the supervisor loads the program and attaches it to the container's cgroup directory
 * (made, still empty), before PID 1 joins it. perl-base's builtin syscall() makes the two bpf(2)
 * calls; the program text is a constant, the directory and the bytecode are its arguments. The
 * kernel keeps the program attached after perl exits, for as long as the cgroup exists.
 */
export function v2Lines(rules: readonly DeviceRule[], dir: string | Sh, perl: string): Sh[] {
  return [sh`${perl} -e ${kernel_devices_attach_pl} -- ${dir} ${hex(compileProgram(rules))}`];
}

// ---- all of it, for the plan ----

export interface DevicePlan {
  rules: DeviceRule[];
  mounts: DeviceMounts;
}

/** The container's device rules and --device mounts; --privileged: every device, no program, no v1 list. */
export function planDevices(
  devices: readonly Device[],
  layer: string,
  opts: { privileged?: boolean } = {},
): DevicePlan {
  return { rules: deviceRules(devices, opts), mounts: deviceMounts(devices, layer) };
}

/** The sh lines that put the rules into the container's (empty) cgroup, for the cgroup version in use. */
export function cgroupLines(plan: DevicePlan, cg: { version: 1 | 2; dir: string | Sh; perl: string }): Sh[] {
  const everything = plan.rules.length === 1 && catchAll(plan.rules[0]) && plan.rules[0].allow;
  if (everything) return []; // a new cgroup already allows every device (its parent's list)
  return cg.version === 1 ? v1Lines(plan.rules, cg.dir) : v2Lines(plan.rules, cg.dir, cg.perl);
}

// ---- tscontain doctor ----

export interface DeviceHost {
  /** the cgroup driver's version */
  version: 1 | 2;
  /** v1: the devices hierarchy is mounted (it has devices.allow) */
  v1Devices: boolean;
  /** v2: where perl is, if anywhere */
  perl?: string;
}

/** How containers' devices are controlled on this host, as a doctor row. */
export function devicesCheck(h: DeviceHost): Check {
  const what = 'devices';
  if (h.version === 1)
    return h.v1Devices
      ? {
          what,
          status: 'ok',
          detail: 'cgroup v1 devices controller: deny all, allow null, zero, full, random, urandom, tty, ptmx, pts',
        }
      : {
          what,
          status: 'fail',
          detail: 'no cgroup v1 devices hierarchy: a container could open any device node it makes',
          fix: 'mount -t cgroup -o devices cgroup /sys/fs/cgroup/devices',
        };
  return h.perl
    ? { what, status: 'ok', detail: `cgroup v2: an eBPF device program, loaded by ${h.perl} (perl-base syscall)` }
    : {
        what,
        status: 'fail',
        detail: 'cgroup v2 needs perl (perl-base) to load the device program',
        fix: 'apt-get install perl-base',
      };
}
