// Integration tests start real containers: they need root. Each test gets the same store
// (TSCONTAIN_ROOT, set by test/run.sh) so the busybox image is built once.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../fixtures/temp.js';

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
export const env = { ...process.env, TSCONTAIN_ROOT: process.env.TSCONTAIN_ROOT || '/tmp/tscontain-test', NO_COLOR: '1' };

export interface Result { code: number; stdout: string; stderr: string }

const started = new Set<ChildProcess>();

/** A failed test must not leave its container running: SIGTERM then SIGKILL whatever is left. */
export async function killStarted() {
  for (const c of started) c.kill('SIGKILL');
  await sleep(200);
}

export function start(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; node?: boolean } = {}): { child: ChildProcess; done: Promise<Result>; stdout: () => string } {
  const [cmd, argv] = opts.node ? [process.execPath, [NODE_BIN, ...args]] : ['/bin/sh', [CLEAN_FDS, BIN, ...args]];
  const child = spawn(cmd, argv, { env: opts.env ?? env, stdio: ['pipe', 'pipe', 'pipe'] });
  started.add(child);
  child.on('exit', () => started.delete(child));
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  if (opts.input !== undefined) child.stdin!.end(opts.input); else child.stdin!.end();
  const done = new Promise<Result>((res) => child.on('close', (code, sig) => res({ code: code ?? 128 + (sig === 'SIGKILL' ? 9 : 15), stdout, stderr })));
  return { child, done, stdout: () => stdout };
}

export const tsc = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; node?: boolean } = {}) => start(args, opts).done;

const stores: string[] = [];

/** After a failed test: remove every container of the private stores this file made (detached ones outlive their test). */
export async function removeStoreContainers() {
  for (const root of stores) {
    const e = { ...env, TSCONTAIN_ROOT: root };
    const ps = await tsc(['ps', '-a', '--format', 'json'], { env: e });
    let ids: string[] = [];
    try { ids = JSON.parse(ps.stdout).map((c: { id: string }) => c.id); } catch { /* none */ }
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until the container printed something (e.g. "ready"). */
export async function waitFor(get: () => string, re: RegExp, ms = 15000): Promise<RegExpMatchArray> {
  const end = Date.now() + ms;
  for (;;) {
    const m = get().match(re);
    if (m) return m;
    if (Date.now() > end) throw new Error(`timed out waiting for ${re} in: ${get()}`);
    await sleep(20);
  }
}

/** Host pids whose command line is exactly this argv (e.g. the container's `sleep 3137`). */
export function pidsOf(...argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try { if (readFileSync(`/proc/${d}/cmdline`, 'utf8') === want) out.push(Number(d)); } catch { /* gone */ }
  }
  return out;
}

/** The container's cgroup for a controller, from the /proc/self/cgroup line the container printed. */
export function cgroupPath(printed: string, controller: string): string {
  const v2 = printed.match(/^0::(\/tscontain\/[0-9a-f]{64})$/m);
  const v1 = printed.match(new RegExp(`^\\d+:[^:]*\\b${controller}\\b[^:]*:(/tscontain/[0-9a-f]{64})$`, 'm'));
  if (v1) return `/sys/fs/cgroup/${controller}${v1[1]}`;
  if (v2) return `/sys/fs/cgroup${v2[1]}`;
  throw new Error(`no ${controller} cgroup in ${printed}`);
}
