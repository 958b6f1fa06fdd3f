// The lifecycle commands, one function each (after bocker): ps, logs, exec, stop, kill, rm, wait,
// inspect, stats. They read container directories and signal PID 1 directly; none of them keeps
// a process per container.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, watch } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { cgroupRoot, detectVersion } from '../kernel/cgroup.js';
import { TscError, exitCode } from '../errors.js';
import { formatBytes, parseArgs, parseEnv, helpText, optionTable, type OptDef } from '../spec/options.js';
import { BECOME_PL, becomeOptions, DEFAULT_CAPS } from '../kernel/capabilities.js';
import { enterArgv, readOnlyFd } from '../kernel/exec-enter.js';
import { bin, hostTools } from '../host/tools.js';
import { seccompFilter } from './run.js';
import { SYSTEM_PATH } from '../store/paths.js';
import { formatPort, formatPsPorts, parsePortsFile, type PublishedPort } from '../kernel/network/publish.js';
import { bridgePruneStep } from '../kernel/network/bridge.js';
import { hostBridge } from '../kernel/network/index.js';
import { parseNetworkOptions } from '../kernel/network/options.js';
import { readNetFacts } from '../kernel/network/probe.js';
import { netPaths } from '../kernel/network/store.js';
import { containerDir, runDir, type Roots } from '../store/paths.js';
import {
  cgroupDirsFor,
  findContainer,
  inspectContainer,
  listContainers,
  pid1,
  removeContainer,
  withLock,
  type ContainerInfo,
} from '../store/state.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out = (s: string) => process.stdout.write(s);

export function ago(d: Date, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 2) return 'Less than a second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'About a minute' : `${m} minutes`;
  const h = Math.round(m / 60);
  if (h < 48) return h === 1 ? 'About an hour' : `${h} hours`;
  return `${Math.round(h / 24)} days`;
}

export function status(c: ContainerInfo, now = Date.now()): string {
  if (c.running) return c.startedAt ? `Up ${ago(c.startedAt, now)}` : 'Starting';
  if (c.state)
    return `Exited (${c.state.exitCode})${c.state.finishedAt ? ` ${ago(new Date(c.state.finishedAt), now)} ago` : ''}`;
  return 'Created';
}

export function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i] + 3)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

// ---- ps, port ----
/** The ports a running container publishes (its run dir's ports file, written once they were its own). */
function published(r: Roots, c: ContainerInfo): PublishedPort[] {
  if (!c.running) return [];
  try {
    return parsePortsFile(readFileSync(join(runDir(r, c.id), 'ports'), 'utf8'));
  } catch {
    return [];
  }
}

export function ps(r: Roots, all: boolean, format: 'table' | 'json'): void {
  const cs = listContainers(r).filter((c) => all || c.running);
  if (format === 'json') {
    out(
      JSON.stringify(
        cs.map((c) => ({
          id: c.id,
          name: c.config.name ?? null,
          image: c.config.image,
          command: c.config.argv,
          status: status(c),
          running: c.running,
          pid: pid1(c) ?? null,
          exitCode: c.state?.exitCode ?? null,
          ports: published(r, c),
        })),
        null,
        2,
      ) + '\n',
    );
    return;
  }
  out(
    table([
      ['CONTAINER ID', 'IMAGE', 'COMMAND', 'STATUS', 'PID', 'PORTS', 'NAMES'],
      ...cs.map((c) => [
        c.id.slice(0, 12),
        c.config.image ?? '',
        JSON.stringify((c.config.argv ?? []).join(' ').slice(0, 30)),
        status(c),
        String(pid1(c) ?? ''),
        formatPsPorts(published(r, c)),
        c.config.name ?? '',
      ]),
    ]),
  );
}

/** tscontain port CONTAINER [PORT[/PROTO]], as docker prints it. */
export function port(r: Roots, ref: string, filter?: string): number {
  const c = findContainer(r, ref);
  const text = formatPort(published(r, c), filter);
  if (text === undefined)
    throw new TscError(`no public port ${filter} published for ${ref}`, `see tscontain port ${ref}`);
  out(text);
  return 0;
}

/** network prune: the bridge and the nft table go when no container uses them. */
export function networkPrune(r: Roots): void {
  if (listContainers(r).some((c) => c.running))
    throw new TscError('containers are running', 'stop them first (tscontain ps)');
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const facts = readNetFacts({ subnetFile: netPaths(r).subnet });
  const step = bridgePruneStep(hostBridge({ facts, roots: r, net: parseNetworkOptions({}) }));
  const res = spawnSync('/bin/sh', ['-c', step.lines.map((l) => l.text).join('\n')], { stdio: 'inherit' });
  if (res.status !== 0) throw new TscError('network prune failed', 'see the lines above');
  out('removed tsc0 and the nft table tscontain (if they were there)\n');
}

// ---- logs ----
interface LogLine {
  t: number;
  stream: string;
  text: string;
}

/** "SECONDS STREAM TEXT" lines, as the log writer (tsc_log in the plan) writes them. */
function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const a = l.indexOf(' '),
        b = l.indexOf(' ', a + 1);
      return { t: Number(l.slice(0, a)), stream: l.slice(a + 1, b), text: l.slice(b + 1) };
    });
}

function readLog(file: string): LogLine[] {
  try {
    return logLines(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
}

function logFiles(r: Roots, id: string): string[] {
  const d = containerDir(r, id);
  return ['out.log.1', 'err.log.1', 'out.log', 'err.log'].map((f) => join(d, f));
}

function printLines(lines: LogLine[], timestamps: boolean) {
  for (const l of lines) {
    const s = `${timestamps ? new Date(l.t * 1000).toISOString() + ' ' : ''}${l.text}\n`;
    (l.stream === 'err' ? process.stderr : process.stdout).write(s);
  }
}

export async function logs(
  r: Roots,
  ref: string,
  o: { follow?: boolean; tail?: number; timestamps?: boolean },
): Promise<void> {
  const c = findContainer(r, ref);
  if (!c.config.detach)
    throw new TscError(
      `container ${ref} ran in the foreground: its output went to the terminal, not to a log`,
      'run it with -d to keep its logs',
    );
  // both streams, in time order (the sort is stable, so lines of one stream keep their order)
  let lines = logFiles(r, c.id)
    .flatMap(readLog)
    .sort((a, b) => a.t - b.t);
  if (o.tail !== undefined) lines = o.tail === 0 ? [] : lines.slice(-o.tail);
  printLines(lines, !!o.timestamps);
  if (!o.follow) return;
  // follow: print what is appended to out.log and err.log until the container ends
  const pos = new Map<string, number>();
  for (const f of logFiles(r, c.id).slice(2)) pos.set(f, existsSync(f) ? statSync(f).size : 0);
  const drain = () => {
    const fresh: LogLine[] = [];
    for (const [f, p] of pos) {
      let size = 0;
      try {
        size = statSync(f).size;
      } catch {
        continue;
      }
      const from = size < p ? 0 : p; // rotated: start over in the new file
      if (size === from) {
        pos.set(f, size);
        continue;
      }
      const fd = openSync(f, 'r');
      const b = Buffer.alloc(size - from);
      readSync(fd, b, 0, b.length, from);
      closeSync(fd);
      const text = b.toString('utf8');
      const end = text.lastIndexOf('\n') + 1; // only whole lines
      pos.set(f, from + Buffer.byteLength(text.slice(0, end)));
      fresh.push(...logLines(text.slice(0, end)));
    }
    printLines(
      fresh.sort((a, b) => a.t - b.t),
      !!o.timestamps,
    );
  };
  let watcher: ReturnType<typeof watch> | undefined;
  try {
    watcher = watch(containerDir(r, c.id), () => drain());
  } catch {
    /* polling only */
  }
  while (inspectContainer(r, c.id).running) {
    await sleep(100);
    drain();
  }
  drain();
  watcher?.close();
}

// ---- exec ----
export const EXEC_OPTIONS: OptDef[] = [
  { name: 'interactive', short: 'i', type: 'bool', desc: 'keep STDIN open' },
  {
    name: 'tty',
    short: 't',
    type: 'bool',
    desc: "a terminal of the container's own, relayed to yours (TERM=xterm)",
  },
  { name: 'env', short: 'e', type: 'list', arg: 'KEY=VAL', desc: 'set an environment variable' },
  { name: 'workdir', short: 'w', type: 'string', arg: 'DIR', desc: 'working directory inside the container' },
  { name: 'user', short: 'u', type: 'string', arg: 'UID[:GID]', desc: 'run as this user' },
  { name: 'help', type: 'bool', desc: 'show this help' },
];
const EXEC_TABLE = optionTable(EXEC_OPTIONS);

/** What an exec'd process gets: the container's capabilities, filter and no_new_privs. */
export interface ExecSecurity {
  caps: bigint;
  noNewPrivileges: boolean;
  seccompHex?: string;
  seccompFlags?: number;
}

/** The host programs exec starts: nsenter, and perl and its loader, opened before entering. */
export interface ExecTools {
  nsenter: string;
  perl: string;
  ldso: string;
  libPath: string[];
}

/**
 * The argv that joins a running container: its cgroup (exec-enter.pl), every namespace and its root
 * (nsenter), then become.pl (as for the container's own PID 1): capabilities, seccomp, user,
 * directory and environment, then the command. Inside the container's root the host's perl is
 * reached only through fds exec-enter.pl opened read-only before (/proc/self/fd/N: the loader,
 * perl, its library directories); become.pl closes every fd above 2 before the command runs. No
 * host program is given the container's environment: it is become.pl's --env data.
 */
export function execArgv(
  pid: number,
  cgroups: string[],
  o: { env: string[]; workdir: string; user?: { uid: number; gid: number }; cmd: string[]; tty?: string },
  sec: ExecSecurity,
  t: ExecTools,
): string[] {
  const ns = ['--mount', '--uts', '--ipc', '--net', '--pid', '--cgroup'];
  // read-only: the loader (the exe of become.pl), perl, its library directories
  const readOnly = [t.ldso, t.perl, ...t.libPath];
  const libs = t.libPath.map((_, i) => readOnlyFd(2 + i)).join(':');
  const become = becomeOptions({
    caps: sec.caps,
    uid: o.user?.uid,
    gid: o.user?.gid,
    noNewPrivileges: sec.noNewPrivileges,
    seccompHex: sec.seccompHex,
    seccompFlags: sec.seccompFlags,
    tty: o.tty,
    workdir: o.workdir,
    env: o.env,
  });
  return enterArgv({ perl: t.perl, cgroups, readOnly }, [
    t.nsenter,
    '--target',
    String(pid),
    ...ns,
    `--root=/proc/${pid}/root`,
    '--',
    readOnlyFd(0),
    '--library-path',
    libs,
    readOnlyFd(1),
    '-e',
    BECOME_PL,
    '--',
    ...become,
    ...o.cmd,
  ]);
}

/** The container's capabilities and seccomp filter, as its config recorded them when it was run. */
async function execSecurity(r: Roots, c: ContainerInfo): Promise<ExecSecurity> {
  const caps = c.config.caps !== undefined ? BigInt(`0x${c.config.caps}`) : DEFAULT_CAPS;
  const security = c.config.security ?? {
    noNewPrivileges: false,
    seccomp: { mode: 'default' as const },
    systemPaths: 'default' as const,
  };
  const f = await seccompFilter({ caps, privileged: !!c.config.privileged, security }, r);
  return { caps, noNewPrivileges: security.noNewPrivileges, seccompHex: f?.hex, seccompFlags: f?.flags || undefined };
}

export async function execCommand(r: Roots, argv: string[]): Promise<number> {
  const p = parseArgs(argv, EXEC_TABLE);
  if (p.opts.help) {
    out(helpText('tscontain exec [OPTIONS] CONTAINER CMD [ARG...]', EXEC_OPTIONS));
    return 0;
  }
  const [ref, ...cmd] = p.positionals;
  if (!ref || !cmd.length)
    throw new TscError(
      'exec needs a container and a command',
      'usage: tscontain exec [OPTIONS] CONTAINER CMD [ARG...]',
    );
  // only once its command was reached: before that PID 1's root may still be the host's (before pivot_root)
  let c = findContainer(r, ref);
  for (const end = Date.now() + 2000; c.running && !c.startedAt && Date.now() < end; c = inspectContainer(r, c.id))
    await new Promise((res) => setTimeout(res, 10));
  if (c.running && !c.startedAt)
    throw new TscError(`container ${ref} is still starting`, 'try again once tscontain ps shows it Up');
  const pid = c.running ? pid1(c) : undefined;
  if (!pid) throw new TscError(`container ${ref} is not running`, 'start a new one with tscontain run');
  const { resolveUser } = await import('../store/image.js');
  const rootfs = `/proc/${pid}/root`;
  const userSpec = p.opts.user as string | undefined;
  const user = userSpec ? resolveUser(rootfs, userSpec) : c.config.user;
  const workdir = (p.opts.workdir as string | undefined) ?? c.config.workdir ?? '/';
  if (!workdir.startsWith('/'))
    throw new TscError(`the working directory "${workdir}" is not absolute`, 'use an absolute path');
  const env = [
    ...(c.config.env ?? []),
    ...(p.opts.tty ? ['TERM=xterm'] : []),
    ...parseEnv((p.opts.env as string[]) ?? [], process.env),
  ];
  const { closeInheritedFds } = await import('./run.js');
  closeInheritedFds();
  const sec = await execSecurity(r, c);
  const tools = hostTools({ ip: false, awk: false, perl: true });
  if (!tools.ldso)
    throw new TscError("exec needs the dynamic loader of the host's perl", 'a dynamically linked perl-base');
  const t: ExecTools = { nsenter: bin('nsenter'), perl: tools.perl!, ldso: tools.ldso, libPath: tools.libPath };
  // -t: a pseudo-terminal of the container's own devpts, never the caller's terminal (TIOCSTI)
  const relay = p.opts.tty ? await ptyRelay(t.perl, pid, !!p.opts.interactive) : undefined;
  const args = execArgv(
    pid,
    cgroupDirsFor(c.id),
    { env, workdir, user: user ? { uid: user.uid, gid: user.gid } : undefined, cmd, tty: relay?.pts },
    sec,
    t,
  );
  const stdin = p.opts.interactive && !relay ? 'inherit' : 'ignore';
  const child = spawn(args[0], args.slice(1), { stdio: [stdin, 'inherit', 'inherit'], env: { PATH: SYSTEM_PATH } });
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const)
    process.on(s, () => {
      try {
        child.kill(s);
      } catch {
        /* gone */
      }
    });
  const code = await new Promise<number>((res) => child.on('exit', (c, sig) => res(exitCode(c, sig))));
  if (relay) await relay.end();
  return code;
}

/**
 * exec -t: pty-relay.pl (as for `run -t`) opens a new pty in the container's devpts through
 * /proc/PID1/root, reports its path (/dev/pts/N inside) on fd 3, and relays it to the caller's
 * terminal (raw with -i). become.pl makes that path the command's controlling terminal.
 */
async function ptyRelay(perl: string, pid: number, stdin: boolean): Promise<{ pts: string; end: () => Promise<void> }> {
  const { kernel_pty_relay_pl } = await import('../gen/assets.js');
  const relay = spawn(
    perl,
    ['-e', kernel_pty_relay_pl, '--', ...(stdin ? ['--stdin'] : []), '--report-fd', '3', String(pid)],
    { stdio: [stdin ? 'inherit' : 'ignore', 'inherit', 'inherit', 'pipe'], env: { PATH: SYSTEM_PATH } },
  );
  const exited = new Promise<void>((res) => relay.on('exit', () => res()));
  let report = '';
  relay.stdio[3]!.on('data', (b) => (report += b));
  await new Promise<void>((res) => relay.stdio[3]!.on('close', () => res()));
  const pts = report.trim();
  if (!/^\/dev\/pts\/[0-9]+$/.test(pts)) {
    relay.kill('SIGTERM');
    await exited;
    throw new TscError("exec -t: no terminal could be made in the container's /dev/pts", 'run it without -t');
  }
  // The relay ends when no process holds the terminal any more. One the command left behind may
  // hold it for ever: as with docker exec, the relay then ends shortly after the command (TERM
  // restores the caller's terminal first), and what that process writes later is not shown.
  const end = async () => {
    const t = setTimeout(() => relay.kill('SIGTERM'), 1000);
    await exited;
    clearTimeout(t);
  };
  return { pts, end };
}

// ---- kill, stop, wait ----
export function signalNumber(s: string): NodeJS.Signals {
  const name = (
    /^\d+$/.test(s)
      ? Object.entries(constants.signals).find(([, n]) => n === Number(s))?.[0]
      : s.toUpperCase().replace(/^(SIG)?/, 'SIG')
  ) as NodeJS.Signals | undefined;
  if (!name || !(name in constants.signals))
    throw new TscError(`invalid signal "${s}"`, 'use a name like TERM, KILL, HUP or a number');
  return name;
}

function runningPid(c: ContainerInfo, ref: string): number {
  const pid = c.running ? pid1(c) : undefined;
  if (!pid) throw new TscError(`container ${ref} is not running`, 'see tscontain ps -a');
  return pid;
}

export function kill(r: Roots, refs: string[], signal: string): void {
  const sig = signalNumber(signal);
  const targets = refs
    .map((ref) => [ref, findContainer(r, ref)] as const)
    .map(([ref, c]) => [c, runningPid(c, ref)] as const);
  for (const [c, pid] of targets) {
    process.kill(pid, sig);
    out(c.id.slice(0, 12) + '\n');
  }
}

async function waitExit(r: Roots, id: string, ms = Infinity): Promise<ContainerInfo> {
  const end = Date.now() + ms;
  for (;;) {
    const c = inspectContainer(r, id);
    if (!c.running) return c;
    if (Date.now() > end) return c;
    await sleep(20);
  }
}

/** stop: SIGTERM to PID 1, then SIGKILL after the grace period (docker's default: 10 s). */
export async function stop(r: Roots, refs: string[], seconds: number): Promise<void> {
  if (!(seconds >= 0) || !Number.isInteger(seconds))
    throw new TscError(`invalid stop timeout "${seconds}"`, 'use a whole number of seconds, 0 or more');
  const cs = refs.map((ref) => findContainer(r, ref));
  await Promise.all(
    cs.map(async (c) => {
      const pid = c.running ? pid1(c) : undefined;
      if (pid) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        const after = await waitExit(r, c.id, seconds * 1000);
        if (after.running) {
          try {
            process.kill(pid1(after) ?? pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await waitExit(r, c.id);
      }
      out(c.id.slice(0, 12) + '\n');
    }),
  );
}

export async function wait(r: Roots, refs: string[]): Promise<number> {
  let last = 0;
  for (const ref of refs) {
    const c = await waitExit(r, findContainer(r, ref).id);
    last = c.state?.exitCode ?? 137;
    out(`${last}\n`);
  }
  return last;
}

// ---- rm ----
export async function rm(r: Roots, refs: string[], force: boolean): Promise<void> {
  const cs = refs.map((ref) => [ref, findContainer(r, ref)] as const);
  for (const [ref, c] of cs)
    if (c.running && !force) throw new TscError(`container ${ref} is running`, 'stop it first, or use rm -f');
  for (const [, c] of cs) {
    // Its PID 1 is killed and its supervisor given time to clean up. Before there is a PID 1 (it is
    // being prepared) its owner is killed instead: then nothing is left to wait for. A container
    // whose owner is dead is not running: it is removed at once.
    const target = c.running ? (pid1(c) ?? c.supervisor ?? c.starter) : undefined;
    if (target && target > 1 && target !== process.pid) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* gone */
      }
      await waitExit(r, c.id, 10000);
    }
    withLock(r, () => removeContainer(r, inspectContainer(r, c.id)));
    out(c.id.slice(0, 12) + '\n');
  }
}

// ---- inspect ----
export function inspect(r: Roots, refs: string[]): void {
  const res = refs.map((ref) => {
    const c = findContainer(r, ref);
    const cg = cgroupDirsFor(c.id);
    let mounts: string[] = [];
    try {
      mounts = readFileSync(join(runDir(r, c.id), 'fstab'), 'utf8')
        .split('\n')
        .filter(Boolean);
    } catch {
      /* not running */
    }
    return {
      Id: c.id,
      Name: c.config.name ?? null,
      Image: c.config.image,
      Rootfs: c.config.rootfs,
      Created: c.config.created,
      Config: {
        Cmd: c.config.argv,
        Env: c.config.env,
        Hostname: c.config.hostname,
        WorkingDir: c.config.workdir,
        User: c.config.user ?? null,
        Network: c.config.network,
        ReadOnly: c.config.readOnly,
        AutoRemove: c.config.rm,
        Detach: c.config.detach,
      },
      HostConfig: { Limits: c.config.limits ?? {} },
      State: {
        Status: c.running ? 'running' : c.state ? 'exited' : 'created',
        Running: c.running,
        Pid: pid1(c) ?? 0,
        ExitCode: c.state?.exitCode ?? null,
        OOMKilled: c.state?.oomKilled ?? false,
        StartedAt: c.startedAt?.toISOString() ?? null,
        FinishedAt: c.state?.finishedAt ?? null,
        Note: c.state?.note,
      },
      NetworkSettings: { ...(c.config.net ?? { mode: c.config.network }), Ports: published(r, c) },
      Cgroups: cg,
      CgroupVersion: detectVersion(cgroupRoot()),
      Mounts: mounts,
      LogPath: c.config.detach ? join(containerDir(r, c.id), 'out.log') : null,
      StateDir: runDir(r, c.id),
      ContainerDir: containerDir(r, c.id),
    };
  });
  out(JSON.stringify(res, null, 2) + '\n');
}

// ---- stats ----
const num = (f: string) => {
  try {
    const v = readFileSync(f, 'utf8').trim();
    return v === 'max' ? Infinity : Number(v.split(/\s+/)[0]);
  } catch {
    return NaN;
  }
};

interface Sample {
  cpu: number;
  mem: number;
  limit: number;
  pids: number;
}
function sample(id: string): Sample {
  const root = cgroupRoot();
  if (detectVersion(root) === 2) {
    const d = join(root, 'tscontain', id);
    const usage =
      Number(
        /usage_usec (\d+)/.exec(
          (() => {
            try {
              return readFileSync(join(d, 'cpu.stat'), 'utf8');
            } catch {
              return '';
            }
          })(),
        )?.[1] ?? NaN,
      ) * 1000;
    return {
      cpu: usage,
      mem: num(join(d, 'memory.current')),
      limit: num(join(d, 'memory.max')),
      pids: num(join(d, 'pids.current')),
    };
  }
  const v1 = (c: string, f: string) => num(join(root, c, 'tscontain', id, f));
  const limit = v1('memory', 'memory.limit_in_bytes');
  return {
    cpu: v1('cpuacct', 'cpuacct.usage'),
    mem: v1('memory', 'memory.usage_in_bytes'),
    limit: limit > 2 ** 60 ? Infinity : limit,
    pids: v1('pids', 'pids.current'),
  };
}

const human = (n: number) => (Number.isFinite(n) ? formatBytes(n) : 'unlimited');

export async function stats(r: Roots, refs: string[], noStream: boolean): Promise<void> {
  for (;;) {
    const cs = refs.length ? refs.map((ref) => findContainer(r, ref)) : listContainers(r).filter((c) => c.running);
    const a = cs.map((c) => sample(c.id));
    const t0 = process.hrtime.bigint();
    await sleep(500);
    const b = cs.map((c) => sample(c.id));
    const dt = Number(process.hrtime.bigint() - t0);
    const rows = cs.map((c, i) => [
      c.id.slice(0, 12),
      c.config.name ?? '',
      `${(((b[i].cpu - a[i].cpu) / dt) * 100).toFixed(2)}%`,
      `${human(b[i].mem)} / ${human(b[i].limit)}`,
      String(b[i].pids),
    ]);
    out(
      table([
        ['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'PIDS'],
        ...rows.map((r) => r.map((x) => (x === 'NaN%' ? '--' : x))),
      ]),
    );
    if (noStream) return;
  }
}
