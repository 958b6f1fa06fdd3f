// Integration tests start real containers: they need root. Each test gets the same store
// (TSCONTAIN_ROOT, set by test/run.sh) so the busybox image is built once.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../fixtures/temp.js';
import { sleep, until, DEADLINE_MS } from '../fixtures/poll.js';
import { detectVersion } from '../../src/kernel/cgroup.js';

export { sleep, until, DEADLINE_MS };

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The command users run (a sh front end; see bin/tscontain), and the Node.js entry behind it. */
export const BIN = join(REPO, 'bin', 'tscontain');
export const NODE_BIN = join(REPO, 'bin', 'tscontain.cjs');
/**
 * Tests start tscontain from a clean fd table, as a terminal does: a test runner may pass down fds
 * above 9 that sh cannot close, and bin/tscontain would then (rightly) let Node.js run the
 * container. Those paths are tested on purpose, with `node: true` or an extra fd.
 */
export const CLEAN_FDS = join(REPO, 'bench', 'clean-fds'); // sh CLEAN_FDS PROGRAM ARGS...: only fds 0-2 open
export const isRoot = process.getuid?.() === 0;
export const env = {
  ...process.env,
  TSCONTAIN_ROOT: process.env.TSCONTAIN_ROOT || '/tmp/tscontain-test',
  NO_COLOR: '1',
};

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const started = new Set<ChildProcess>();

/** A failed test must not leave its container running: SIGKILL whatever is left and wait until it is gone. */
export async function killStarted() {
  const left = [...started];
  for (const c of left) c.kill('SIGKILL');
  await until(
    () => left.every((c) => c.exitCode !== null || c.signalCode !== null),
    'the started tscontain processes to exit',
  );
}

/**
 * Start tscontain. stdin gets `input` and is closed, or with `openStdin` stays open for the test to
 * write to (child.stdin): a container that reads it waits for the test, with builtins only.
 */
export function start(
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; node?: boolean; openStdin?: boolean } = {},
): { child: ChildProcess; done: Promise<Result>; stdout: () => string; stderr: () => string } {
  const [cmd, argv] = opts.node ? [process.execPath, [NODE_BIN, ...args]] : ['/bin/sh', [CLEAN_FDS, BIN, ...args]];
  const child = spawn(cmd, argv, { env: opts.env ?? env, stdio: ['pipe', 'pipe', 'pipe'] });
  started.add(child);
  child.on('exit', () => started.delete(child));
  let stdout = '',
    stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  else if (!opts.openStdin) child.stdin!.end();
  child.stdin!.on('error', () => {
    /* the container ended without reading */
  });
  const done = new Promise<Result>((res) =>
    child.on('close', (code, sig) => res({ code: code ?? 128 + (sig === 'SIGKILL' ? 9 : 15), stdout, stderr })),
  );
  return { child, done, stdout: () => stdout, stderr: () => stderr };
}

export const tsc = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; node?: boolean } = {}) =>
  start(args, opts).done;

const stores: string[] = [];

/** After a failed test: remove every container of the private stores this file made (detached ones outlive their test). */
export async function removeStoreContainers() {
  for (const root of stores) {
    const e = { ...env, TSCONTAIN_ROOT: root };
    const ps = await tsc(['ps', '-a', '--format', 'json'], { env: e });
    let ids: string[] = [];
    try {
      ids = JSON.parse(ps.stdout).map((c: { id: string }) => c.id);
    } catch {
      /* none */
    }
    if (ids.length) await tsc(['rm', '-f', ...ids], { env: e });
    rmSync(root, { recursive: true, force: true }); // the images it shares are a symlink: left alone
  }
  stores.length = 0;
}

/** A store of its own (own run/ and containers/) sharing the suite's images: for checks that nothing was created. */
export function privateStore(): NodeJS.ProcessEnv {
  const root = tempDir('tscontain-store-');
  stores.push(root);
  mkdirSync(join(root, 'lib'), { recursive: true });
  symlinkSync(join(env.TSCONTAIN_ROOT, 'lib', 'images'), join(root, 'lib', 'images'));
  return { ...env, TSCONTAIN_ROOT: root };
}

/** Wait until the container printed something (e.g. "ready"). */
export function waitFor(get: () => string, re: RegExp, ms = DEADLINE_MS): Promise<RegExpMatchArray> {
  return until(
    () => get().match(re),
    () => `${re} in: ${get()}`,
    ms,
  );
}

/** Host pids whose command line is exactly this argv (e.g. the container's `sleep 3137`). */
export function pidsOf(...argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8') === want) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The cgroup layout of this host, as tscontain detects it: 1 (v1 or hybrid) or 2 (pure v2). */
export const CGROUP_VERSION = detectVersion('/sys/fs/cgroup');

/** The container's cgroup directory for a controller (v2: the one cgroup, whatever the controller). */
export function containerCgroup(id: string, controller: string): string {
  return CGROUP_VERSION === 2 ? `/sys/fs/cgroup/tscontain/${id}` : `/sys/fs/cgroup/${controller}/tscontain/${id}`;
}

/**
 * The line of /proc/self/cgroup that puts a process in the container's cgroup for a controller
 * (any container's when no id is given): `0::/tscontain/ID` on v2, `N:pids:/tscontain/ID` on v1.
 */
export function cgroupLine(controller: string, id = '[0-9a-f]{64}'): RegExp {
  return CGROUP_VERSION === 2
    ? new RegExp(`^0::/tscontain/(${id})$`, 'm')
    : new RegExp(`^\\d+:(?:[^:]*,)?${controller}(?:,[^:]*)?:/tscontain/(${id})$`, 'm');
}

/** The container's cgroup for a controller, from the /proc/self/cgroup lines the container printed. */
export function cgroupPath(printed: string, controller: string): string {
  const m = printed.match(cgroupLine(controller));
  if (!m) throw new Error(`no line for the ${controller} cgroup (v${CGROUP_VERSION}) in: ${printed}`);
  return containerCgroup(m[1], controller);
}
