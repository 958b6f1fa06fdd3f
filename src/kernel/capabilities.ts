// capabilities(7) of the container's process, the --security-opt choices, and the argv of
// become.pl: the program that, right before the command, sets the process's cgroup namespace,
// terminal, no_new_privs, seccomp filter, capabilities, user, groups and directory, then execs
// the command. Pure functions: host facts come in as data.
import { readFileSync } from 'node:fs';
import type { Check, DoctorEnv } from '../host/doctor.js';
import { TscError } from '../errors.js';
import { kernel_become_pl_code } from '../gen/assets.js';
import type { OptDef } from '../spec/options.js';

/** The program itself (src/kernel/become.pl), for the plan to hand to perl. */
/** become.pl as the plan and exec run it: its code, without the comments of src/kernel/become.pl */
export const BECOME_PL = kernel_become_pl_code;
export const BECOME_MAN =
  'capabilities(7), prctl(2), seccomp(2), cgroup_namespaces(7), pty(7), credentials(7), execve(2)';

/** Capability names without CAP_, by number (linux/capability.h, 0 to 40 = CAP_LAST_CAP of Linux 5.9+). */
export const CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
] as const;
export type CapName = (typeof CAPABILITIES)[number];

/** A set of capabilities as the kernel writes it: bit N = capability N (41 bits: a bigint). */
export type CapMask = bigint;

/** docker's default set (moby daemon/pkg/oci/caps/defaults.go): CapEff 00000000a80425fb. */
export const DOCKER_DEFAULT_CAPS: readonly CapName[] = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
];

const NUMBER = new Map<string, number>(CAPABILITIES.map((n, i) => [n, i]));

export const maskOf = (names: readonly CapName[]): CapMask =>
  names.reduce((m, n) => m | (1n << BigInt(NUMBER.get(n)!)), 0n);
/** Every capability up to the last one the kernel knows (/proc/sys/kernel/cap_last_cap). */
export const allCaps = (lastCap = CAPABILITIES.length - 1): CapMask => (1n << BigInt(lastCap + 1)) - 1n;
export const DEFAULT_CAPS: CapMask = maskOf(DOCKER_DEFAULT_CAPS);

/** The names in a mask, by number; bits beyond CAP_CHECKPOINT_RESTORE show as numbers. */
export function capNames(mask: CapMask): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) if ((mask >> BigInt(i)) & 1n) out.push(CAPABILITIES[i] ?? String(i));
  return out;
}

/** 16 hex digits, as /proc/PID/status shows CapEff and as become.pl --caps takes it. */
export const capHex = (mask: CapMask): string => mask.toString(16).padStart(16, '0');

/** A mask from /proc/PID/status (CapEff, CapBnd, ...), or undefined if the line is not there. */
export type CapField = 'CapInh' | 'CapPrm' | 'CapEff' | 'CapBnd' | 'CapAmb';
export function statusMask(status: string, field: CapField): CapMask | undefined {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]{1,16})$`, 'm').exec(status);
  return m ? BigInt('0x' + m[1]) : undefined;
}

/** One capability name as docker takes it: with or without CAP_, any case; or ALL. */
export function parseCapName(name: string, option: string): CapName | 'ALL' {
  const n = name.trim().toUpperCase().replace(/^CAP_/, '');
  if (n === 'ALL') return 'ALL';
  if (NUMBER.has(n)) return n as CapName;
  throw new TscError(
    `unknown capability ${JSON.stringify(name)} in ${option}`,
    'use a name from capabilities(7), with or without CAP_ (e.g. NET_ADMIN), or ALL',
  );
}

export interface CapOptions {
  capAdd?: readonly string[];
  capDrop?: readonly string[];
  privileged?: boolean;
}

/**
 * The container's capabilities, as docker computes them (moby caps.TweakCapabilities):
 * --privileged: all; --cap-add ALL: all but the dropped ones; --cap-drop ALL: only the added ones;
 * otherwise the default set minus the dropped plus the added. Names are checked even where unused.
 */
export function capabilityMask(o: CapOptions, all: CapMask = allCaps()): CapMask {
  const add = (o.capAdd ?? []).map((n) => parseCapName(n, '--cap-add'));
  const drop = (o.capDrop ?? []).map((n) => parseCapName(n, '--cap-drop'));
  if (o.privileged) return all;
  const named = (l: (CapName | 'ALL')[]) => maskOf(l.filter((n): n is CapName => n !== 'ALL')) & all;
  if (add.includes('ALL')) return all & ~named(drop);
  if (drop.includes('ALL')) return named(add);
  return (DEFAULT_CAPS & all & ~named(drop)) | named(add);
}

// ---- --security-opt ----

export type SeccompChoice = { mode: 'default' } | { mode: 'unconfined' } | { mode: 'file'; path: string };
export interface SecurityOpts {
  noNewPrivileges: boolean;
  seccomp: SeccompChoice;
  /** systempaths=unconfined: no masked or read-only /proc and /sys paths (docker's option) */
  systemPaths: 'default' | 'unconfined';
}

// strconv.ParseBool, which docker uses for no-new-privileges=VALUE
const BOOL: Record<string, boolean> = {
  1: true,
  t: true,
  T: true,
  true: true,
  TRUE: true,
  True: true,
  0: false,
  f: false,
  F: false,
  false: false,
  FALSE: false,
  False: false,
};

/**
 * --security-opt values, as docker reads them: KEY=VALUE (or the older KEY:VALUE);
 * no-new-privileges alone means true; seccomp=builtin is the default profile. There is no
 * AppArmor or SELinux here: only the values that turn them off are accepted (they change nothing).
 */
export function parseSecurityOpts(values: readonly string[]): SecurityOpts {
  const out: SecurityOpts = { noNewPrivileges: false, seccomp: { mode: 'default' }, systemPaths: 'default' };
  for (const opt of values) {
    const bad = (hint: string) => new TscError(`invalid --security-opt ${JSON.stringify(opt)}`, hint);
    let i = opt.indexOf('=');
    if (i < 0 && opt !== 'no-new-privileges') i = opt.indexOf(':');
    const [key, value] = i < 0 ? [opt, undefined] : [opt.slice(0, i), opt.slice(i + 1)];
    if (key === 'no-new-privileges') {
      if (value === undefined || value === '') {
        out.noNewPrivileges = true;
        continue;
      }
      if (!(value in BOOL)) throw bad('use no-new-privileges, no-new-privileges=true or no-new-privileges=false');
      out.noNewPrivileges = BOOL[value];
    } else if (key === 'seccomp') {
      if (!value) throw bad('use seccomp=unconfined, seccomp=builtin or seccomp=PROFILE.json');
      if (value === 'unconfined') out.seccomp = { mode: 'unconfined' };
      else if (value === 'builtin') out.seccomp = { mode: 'default' };
      else out.seccomp = { mode: 'file', path: value };
    } else if (key === 'systempaths') {
      if (value !== 'unconfined') throw bad('the only value is systempaths=unconfined');
      out.systemPaths = 'unconfined';
    } else if (key === 'apparmor') {
      if (value !== 'unconfined') throw bad('no AppArmor here: only apparmor=unconfined (a no-op) is accepted');
    } else if (key === 'label') {
      if (value !== 'disable') throw bad('no SELinux here: only label=disable (a no-op) is accepted');
    } else {
      throw bad('known: no-new-privileges[=true|false], seccomp=unconfined|builtin|FILE.json, systempaths=unconfined');
    }
  }
  return out;
}

/** The options of `run` (and `create`) this file owns, to append to the option table. */
export const SECURITY_OPTIONS: OptDef[] = [
  { name: 'cap-add', type: 'list', arg: 'CAP', desc: 'add a capability (capabilities(7) name, CAP_ optional, or ALL)' },
  { name: 'cap-drop', type: 'list', arg: 'CAP', desc: 'drop a capability (or ALL)' },
  { name: 'privileged', type: 'bool', desc: 'all capabilities and devices, no seccomp, no masked paths: NOT isolated' },
  {
    name: 'security-opt',
    type: 'list',
    arg: 'OPT',
    desc: 'no-new-privileges, seccomp=unconfined|FILE.json, systempaths=unconfined',
  },
];

// ---- become.pl's argv ----

export interface BecomeSpec {
  /** bounding set; also effective and permitted for uid 0 (what the process has of it) */
  caps: CapMask;
  uid?: number;
  gid?: number;
  /** supplementary groups (none when absent) */
  groups?: readonly number[];
  /** unshare a cgroup namespace rooted at the cgroup the process is in */
  cgroupns?: boolean;
  /** stay in the caller's cwd (the command is init.pl, which changes into the container itself) */
  keepCwd?: boolean;
  /** absolute path of a pty slave in the container (its own devpts) to become fds 0-2 and the controlling tty */
  tty?: string;
  /** after pivot_root: where the host's old root is, detached (umount2 MNT_DETACH) first */
  detach?: string;
  noNewPrivileges?: boolean;
  /** a compiled filter (raw struct sock_filter[]), relative to the caller's cwd or absolute */
  seccompFile?: string;
  /** the same as hex: argv data, reachable wherever the process is */
  seccompHex?: string;
  /** seccomp(2) flags, e.g. SECCOMP_FILTER_FLAG_LOG = 2, SPEC_ALLOW = 4 */
  seccompFlags?: number;
  /** absolute, in the container's root */
  workdir: string;
  /** fds 3 .. 3+N-1 reach the command (systemd's LISTEN_FDS, runc --preserve-fds) */
  preserveFds?: number;
  /** the command's whole environment, NAME=VALUE */
  env: readonly string[];
}

const id = (n: number, what: string) => {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 32 - 1) throw new Error(`become: ${what} ${n} is not a valid id`);
  return String(n);
};

/**
 * become.pl's options, ending with "--": the command's argv follows (in the plan: "$@").
 * Everything is data: one argv word per value, never part of the program.
 */
export function becomeOptions(b: BecomeSpec): string[] {
  if (b.caps < 0n || b.caps >= 1n << 64n) throw new Error('become: capability mask out of range');
  if (!b.workdir.startsWith('/')) throw new Error(`become: the working directory ${b.workdir} is not absolute`);
  if (b.tty !== undefined && !b.tty.startsWith('/')) throw new Error(`become: the terminal ${b.tty} is not absolute`);
  const out = ['--caps', capHex(b.caps)];
  if (b.uid !== undefined) out.push('--uid', id(b.uid, 'uid'));
  if (b.gid !== undefined) out.push('--gid', id(b.gid, 'gid'));
  if (b.groups?.length) out.push('--groups', b.groups.map((g) => id(g, 'group')).join(','));
  if (b.cgroupns) out.push('--cgroupns');
  if (b.keepCwd) out.push('--keep-cwd');
  if (b.detach !== undefined) out.push('--detach', b.detach);
  if (b.tty !== undefined) out.push('--tty', b.tty);
  if (b.noNewPrivileges) out.push('--nnp');
  if (b.seccompFile !== undefined) out.push('--seccomp', b.seccompFile);
  if (b.seccompHex !== undefined) out.push('--seccomp-hex', b.seccompHex);
  if (b.seccompFlags) out.push('--seccomp-flags', id(b.seccompFlags, 'seccomp flags'));
  out.push('--wd', b.workdir);
  if (b.preserveFds) out.push('--preserve-fds', id(b.preserveFds, 'fd count'));
  for (const e of b.env) {
    if (!/^[^=\0]+=/.test(e)) throw new Error(`become: environment entry ${JSON.stringify(e)} is not NAME=VALUE`);
    out.push('--env', e);
  }
  out.push('--');
  return out;
}

export function becomeArgv(b: BecomeSpec, command: readonly string[]): string[] {
  if (!command.length) throw new Error('become: no command');
  return [...becomeOptions(b), ...command];
}

// ---- doctor ----

const MACHINES = ['x64', 'arm64', 'riscv64'];

/** perl for become.pl, and the capabilities this machine's root can hand out. */
export function becomeChecks(env: DoctorEnv, arch: string = process.arch): Check[] {
  const out: Check[] = [];
  const perl = env.which('perl');
  const what = 'perl (become)';
  if (!perl) {
    out.push({
      what,
      status: 'fail',
      fix: 'apt-get install perl-base',
      detail: "not found: the container's capabilities, seccomp filter and terminal are set by a perl-base program",
    });
  } else {
    // the program's own conditions: no module at all, and syscall()
    const r = env.probe(perl, ['-e', 'BEGIN { @INC = () } print syscall(-1) < 0 ? "$]\\n" : "no syscall\\n"']);
    const ran = r.code === 0 && /^5\.\d+/.test(r.out);
    const known = MACHINES.includes(arch);
    const fix = 'reinstall perl-base';
    const detail = `${perl} does not run a module-free program: ${r.out.trim()}`;
    if (!ran) out.push({ what, status: 'fail', detail, fix });
    else if (!known) out.push({ what, status: 'fail', detail: `become.pl has no system call table for ${arch}` });
    else out.push({ what, status: 'ok', detail: `${perl}, perl ${r.out.trim()}: builtins and syscall() only` });
  }
  let status = '';
  try {
    status = readFileSync(`${env.proc}/self/status`, 'utf8');
  } catch {
    /* reported below */
  }
  const bnd = statusMask(status, 'CapBnd');
  if (bnd === undefined) {
    out.push({ what: 'capabilities', status: 'warn', detail: `cannot read CapBnd from ${env.proc}/self/status` });
    return out;
  }
  const missing = capNames(DEFAULT_CAPS & ~bnd);
  const never = capNames(allCaps() & ~bnd);
  let detail = `default set ${capHex(DEFAULT_CAPS)} (docker's 14)`;
  if (missing.length) detail += `; this machine's root lacks ${missing.join(', ')}: containers get the rest`;
  else if (never.length) detail += `; not available even with --privileged: ${never.join(', ')}`;
  out.push({ what: 'capabilities', status: missing.length ? 'warn' : 'ok', detail });
  return out;
}
