// From command-line arguments to a validated container spec. Reads files (image config, env
// files, /etc/passwd in the image) but changes nothing on the host.
import { openSync, readSync, closeSync, readFileSync, statSync } from 'node:fs';
import { posix, resolve } from 'node:path';
import { TscError, requireRoot } from '../errors.js';
import type { Limits } from '../kernel/cgroup.js';
import { checkCommand, resolveImage, resolveUser, type Image, type ImageConfig } from '../store/image.js';
import {
  parseArgs,
  parseMemory,
  parseCpus,
  parsePositiveInt,
  parseCpuShares,
  parseHostname,
  parseName,
  parseEnv,
  readEnvFile,
  mergeEnv,
  parseBytes,
  type ParsedArgs,
} from './options.js';
import { SYSTEM_PATH, type Roots } from '../store/paths.js';
import type { Tmpfs, Volume } from '../kernel/rootfs.js';
import { resolveTargets } from './targets.js';
import { hostDeviceFacts, parseDevice, resolveDevice, type Device } from '../kernel/devices.js';
import { parseNetworkOptions, type NetOptions } from '../kernel/network/options.js';
import {
  capabilityMask,
  parseSecurityOpts,
  statusMask,
  type CapMask,
  type SecurityOpts,
} from '../kernel/capabilities.js';

export type { Volume };

const DEFAULT_PATH = SYSTEM_PATH;

export interface RunSpec {
  id: string;
  name?: string;
  image: Image;
  argv: string[];
  env: string[];
  hostname: string;
  workdir: string;
  /** the working directory made before the root switch: resolved inside the root (src/spec/targets.ts) */
  workdirMkdir?: string;
  user?: { uid: number; gid: number };
  /** the network mode and its options (-p, --dns, --add-host) */
  net: NetOptions;
  limits: Limits;
  interactive: boolean;
  /** -t: a pseudo-terminal of the container's own devpts as its stdin, stdout and stderr */
  tty: boolean;
  /** --init: init.pl is PID 1 and runs the command as its child */
  init: boolean;
  detach: boolean;
  rm: boolean;
  readOnly: boolean;
  pivot: boolean;
  /** bytes of log kept per stream of a detached container */
  logMaxSize: number;
  volumes: Volume[];
  tmpfs: Tmpfs[];
  /** --device: host device nodes the container gets (and may open) */
  devices: Device[];
  /** --privileged: no isolation from the host's devices, kernel paths and privileges */
  privileged: boolean;
  /** the capabilities of the container's processes (bounding set; effective and permitted for root) */
  caps: CapMask;
  security: SecurityOpts;
  /** a cgroup namespace of its own (--cgroupns private, the default) */
  cgroupns: boolean;
  /** the image config's ExposedPorts, for -P */
  exposed?: Record<string, unknown>;
}

/** -v HOST:CONTAINER[:ro|rw]; the host side must exist or is made as a directory (like docker). */
export function parseVolume(v: string, cwd = process.cwd()): Omit<Volume, 'target'> {
  const parts = v.split(':');
  const mode = parts.length === 3 ? parts[2] : undefined;
  if (parts.length < 2 || parts.length > 3 || (mode !== undefined && mode !== 'ro' && mode !== 'rw'))
    throw new TscError(`invalid volume "${v}"`, 'use -v HOST_PATH:CONTAINER_PATH[:ro]');
  const [h, path] = parts;
  if (!path.startsWith('/') || path === '/')
    throw new TscError(`invalid volume "${v}": the container path must be absolute and not /`, 'e.g. -v ./data:/data');
  if (!h.startsWith('/') && !h.startsWith('.'))
    throw new TscError(
      `invalid volume "${v}": named volumes are not supported`,
      'give a host path, e.g. -v ./data:/data or -v /srv/data:/data',
    );
  const host = resolve(cwd, h);
  let file = false,
    exists = false;
  try {
    file = !statSync(host).isDirectory();
    exists = true;
  } catch {
    /* made as a directory by the plan */
  }
  return { host, path: posix.normalize(path), readOnly: mode === 'ro', file, exists };
}

export function parseTmpfs(v: string): Omit<Tmpfs, 'target'> {
  const i = v.indexOf(':');
  const path = i < 0 ? v : v.slice(0, i);
  const options = i < 0 ? '' : v.slice(i + 1);
  if (!path.startsWith('/') || path === '/')
    throw new TscError(`invalid --tmpfs "${v}"`, 'use an absolute path other than /, e.g. --tmpfs /run:size=16m');
  if (!/^[A-Za-z0-9_=,.%+-]*$/.test(options))
    throw new TscError(`invalid --tmpfs options "${options}"`, 'use mount options like size=64m,mode=1777');
  return { path: posix.normalize(path), options };
}

export type RunRequest = { help: true } | { help: false; spec: RunSpec; dryRun: boolean; explain: boolean };

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : []);

/** 64 hex digits, like docker's ids (from /dev/urandom: node:crypto is costly to load). */
export function newId(): string {
  const b = Buffer.alloc(32);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, b, 0, 32, null);
  } finally {
    closeSync(fd);
  }
  return b.toString('hex');
}

/** The capabilities root has here (a container can get no more): CapBnd of this process. */
function hostCaps(): CapMask | undefined {
  try {
    return statusMask(readFileSync('/proc/self/status', 'utf8'), 'CapBnd');
  } catch {
    return undefined;
  }
}

/** Validate everything that needs no image first, so bad options fail fast and build nothing. */
export function validateOptions(p: ParsedArgs, ncpu?: number) {
  const o = p.opts;
  const limits: Limits = {};
  if (str(o.memory) !== undefined) limits.memory = parseMemory(str(o.memory)!);
  if (str(o['pids-limit']) !== undefined)
    limits.pids = parsePositiveInt(
      str(o['pids-limit'])!,
      '--pids-limit',
      'use a whole number of processes of at least 1, e.g. --pids-limit 100',
    );
  if (str(o.cpus) !== undefined)
    limits.cpus = parseCpus(str(o.cpus)!, ncpu ?? process.getBuiltinModule('node:os').availableParallelism()); // node:os only when asked
  if (str(o['cpu-shares']) !== undefined) limits.cpuShares = parseCpuShares(str(o['cpu-shares'])!);
  const hostname = str(o.hostname) !== undefined ? parseHostname(str(o.hostname)!) : undefined;
  const net = parseNetworkOptions(o, hostname);
  const name = str(o.name) !== undefined ? parseName(str(o.name)!) : undefined;
  const workdir = str(o.workdir);
  if (workdir !== undefined && !workdir.startsWith('/'))
    throw new TscError(`the working directory "${workdir}" is not absolute`, 'use an absolute path, e.g. -w /tmp');
  const privileged = !!o.privileged;
  const caps = capabilityMask({ capAdd: list(o['cap-add']), capDrop: list(o['cap-drop']), privileged }, hostCaps());
  const security = parseSecurityOpts(list(o['security-opt']));
  const cgroupns = str(o.cgroupns) ?? 'private';
  if (cgroupns !== 'private' && cgroupns !== 'host')
    throw new TscError(`invalid --cgroupns "${cgroupns}"`, 'use private or host');
  return { limits, net, hostname, name, workdir, privileged, caps, security, cgroupns: cgroupns === 'private' };
}

/** No program can be given a NUL byte (execve(2) strings end at it): refused, with what it was in. */
function noNul(what: string, v: string): string {
  if (v.includes('\0')) throw new TscError(`${what} contains a NUL byte`, 'no program can be given one: remove it');
  return v;
}

/** An image's config is data from whoever built the image: each field is checked for its type. */
export function checkImageConfig(name: string, c: ImageConfig): ImageConfig {
  const bad = (f: string, want: string) =>
    new TscError(`image ${name}: config field ${f} is not ${want}`, 'fix or re-import the image');
  const strings = (f: 'Cmd' | 'Entrypoint' | 'Env', v: unknown) => {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(f, 'a list of strings');
    return v.map((x: string) => noNul(`image ${name}: ${f}`, x));
  };
  const str = (f: 'WorkingDir' | 'User', v: unknown) => {
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw bad(f, 'a string');
    return noNul(`image ${name}: ${f}`, v);
  };
  const env = strings('Env', c.Env);
  for (const e of env ?? [])
    if (e.indexOf('=') < 1) throw bad('Env', `a list of KEY=VALUE (found ${JSON.stringify(e)})`);
  const wd = str('WorkingDir', c.WorkingDir);
  if (wd !== undefined && !wd.startsWith('/')) throw bad('WorkingDir', 'an absolute path');
  const exposed = c.ExposedPorts;
  if (exposed !== undefined && exposed !== null && (typeof exposed !== 'object' || Array.isArray(exposed)))
    throw bad('ExposedPorts', 'an object');
  return {
    Cmd: strings('Cmd', c.Cmd),
    Entrypoint: strings('Entrypoint', c.Entrypoint),
    Env: env,
    WorkingDir: wd,
    User: str('User', c.User),
    ExposedPorts: exposed ?? undefined,
  };
}

export function buildRunRequest(
  argv: string[],
  r: Roots,
  hostEnv: NodeJS.ProcessEnv = process.env,
  id = newId(),
): RunRequest {
  const p = parseArgs(argv);
  const o = p.opts;
  if (o.help) return { help: true };
  const flags = { help: false as const, dryRun: !!o['dry-run'], explain: !!o.explain };
  // before an image is built, or anything else
  if (!flags.dryRun) requireRoot('tscontain run', 'run it as root, e.g. with sudo; tscontain plan works without');
  const v = validateOptions(p);
  if (p.positionals.length === 0)
    throw new TscError(
      'no image given',
      'usage: tscontain run [OPTIONS] IMAGE|ROOTFS [CMD [ARG...]], e.g. tscontain run busybox echo hi',
    );
  const [ref, ...cmd] = p.positionals;
  const image = resolveImage(r, ref, !flags.dryRun);
  const cfg = checkImageConfig(image.name, image.config);
  const userEnv = mergeEnv(
    ...list(o['env-file'])
      .map(readEnvFile)
      .map((l) => parseEnv(l, hostEnv)),
    parseEnv(list(o.env), hostEnv),
  );
  const argvC = [...(cfg.Entrypoint ?? []), ...(cmd.length ? cmd : (cfg.Cmd ?? []))];
  for (const a of argvC) noNul('the command', a);
  if (argvC.length === 0)
    throw new TscError(
      `no command given and ${image.name} has no default command`,
      `add one, e.g. tscontain run ${ref} /bin/sh`,
    );
  const userSpec = str(o.user) ?? cfg.User;
  const user = userSpec ? resolveUser(image.rootfs, userSpec) : undefined;
  const hostname = v.hostname ?? id.slice(0, 12);
  const workdir = v.workdir ?? cfg.WorkingDir ?? '/';
  const base = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`, ...(o.tty ? ['TERM=xterm'] : [])];
  const env = mergeEnv(
    base,
    cfg.Env ?? [],
    [`HOME=${user?.home || (user && user.uid !== 0 ? '/' : '/root')}`],
    userEnv,
  );
  const pathEnv = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  if (!image.recipe) checkCommand(image.rootfs, argvC[0], pathEnv, workdir); // an image still to build is checked when run
  const devices = list(o.device)
    .map(parseDevice)
    .map((d) => resolveDevice(d, hostDeviceFacts(d.host)));
  // the image's symlinks are followed inside its root, never on the host's (PID 1 makes these before pivot_root)
  const targets = resolveTargets({
    image: image.name,
    rootfs: image.rootfs,
    volumes: list(o.volume).map((v) => parseVolume(v)),
    tmpfs: list(o.tmpfs).map(parseTmpfs),
    devices: devices.map((d) => d.path),
    workdir,
  });
  const spec: RunSpec = {
    id,
    name: v.name,
    image,
    argv: argvC,
    env,
    hostname,
    workdir,
    workdirMkdir: targets.workdirMkdir,
    user: user ? { uid: user.uid, gid: user.gid } : undefined,
    net: v.net,
    limits: v.limits,
    exposed: cfg.ExposedPorts,
    interactive: !!o.interactive,
    tty: !!o.tty,
    init: !!o.init,
    detach: !!o.detach,
    rm: !!o.rm,
    readOnly: !!o['read-only'],
    pivot: !o['no-pivot'],
    logMaxSize:
      str(o['log-max-size']) !== undefined ? parseBytes(str(o['log-max-size'])!, 'log size') : 20 * 1024 * 1024,
    volumes: targets.volumes,
    tmpfs: targets.tmpfs,
    devices,
    privileged: v.privileged,
    caps: v.caps,
    security: v.security,
    cgroupns: v.cgroupns,
  };
  return { spec, ...flags };
}

/**
 * --network container:NAME: the container takes NAME's hostname, as docker's does (its own UTS
 * namespace still), and HOSTNAME follows unless -e set it.
 */
export function withHostname(spec: RunSpec, hostname: string): RunSpec {
  const env = spec.env.map((e) => (e === `HOSTNAME=${spec.hostname}` ? `HOSTNAME=${hostname}` : e));
  return { ...spec, hostname, env };
}
