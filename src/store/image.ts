// Images: a name in the store (/var/lib/tscontain/images/NAME/{rootfs,config.json}) or a path to
// a root filesystem directory. The default image `busybox` is built on first use by its recipe.
import { existsSync, readFileSync, statSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TscError, EXIT_CANNOT_EXEC, EXIT_NOT_FOUND } from '../errors.js';
import { ensureRoots, imageDir, type Roots } from './paths.js';
import { readRegularInRoot, resolveInRoot } from './inroot.js';

export interface ImageConfig {
  Cmd?: string[];
  Entrypoint?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, unknown>;
}

export interface Image {
  name: string; // store name, or the path given
  rootfs: string; // absolute path of the root filesystem
  config: ImageConfig;
  /** set when the image is not built yet (dry runs only): the recipe that builds it */
  recipe?: string;
}

/** rootfs-recipes/ of this package (a function: not worked out on the run path unless needed) */
export function recipesDir(): string {
  // the package's root is above this file: dist/bin/ when bundled, dist/src/store/ when compiled by tsc
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'rootfs-recipes')) && dirname(d) !== d) d = dirname(d);
  return join(d, 'rootfs-recipes');
}

const isPath = (s: string) => s.includes('/') || s === '.' || s === '..';

/** `# cmd: sh` and `# env: K=V` lines in a recipe's header give the image's defaults. */
export function recipeConfig(text: string): ImageConfig {
  const cfg: ImageConfig = {};
  for (const m of text.matchAll(/^#\s*(cmd|env|workdir):\s*(.+)$/gm)) {
    if (m[1] === 'cmd') cfg.Cmd = m[2].trim().split(/\s+/);
    if (m[1] === 'env') (cfg.Env ??= []).push(m[2].trim());
    if (m[1] === 'workdir') cfg.WorkingDir = m[2].trim();
  }
  return cfg;
}

export function recipePath(name: string): string | undefined {
  const p = join(recipesDir(), name);
  return /^[a-z0-9][a-z0-9_.-]*$/.test(name) && existsSync(p) ? p : undefined;
}

/** Build an image from its recipe into the store; atomic: built in a temp dir, then renamed. */
export function buildImage(r: Roots, name: string, opts: { quiet?: boolean } = {}): void {
  const recipe = recipePath(name);
  if (!recipe) throw new TscError(`no recipe named "${name}"`, `recipes are in ${recipesDir()}`);
  const dest = imageDir(r, name);
  ensureRoots(r);
  const tmp = join(dirname(dest), `.build-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  if (!opts.quiet) process.stderr.write(`tscontain: building image ${name} with ${recipe}\n`);
  // loaded here, not at the top: node:child_process is costly at start-up and `run` rarely needs it
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const res = spawnSync('/bin/sh', [recipe, join(tmp, 'rootfs')], { stdio: ['ignore', opts.quiet ? 'ignore' : 2, 2] });
  if (res.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new TscError(
      `recipe ${name} failed (exit ${res.status ?? res.signal})`,
      `run it by hand to see why: sh ${recipe} /tmp/rootfs-${name}`,
    );
  }
  const cfg = {
    name,
    created: new Date().toISOString(),
    source: `recipe:${name}`,
    config: recipeConfig(readFileSync(recipe, 'utf8')),
  };
  writeFileSync(join(tmp, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  try {
    renameSync(tmp, dest);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true }); // someone else built it at the same time: use theirs
    if (!existsSync(join(dest, 'rootfs'))) throw e;
  }
}

export function resolveImage(r: Roots, ref: string, build = true): Image {
  if (isPath(ref)) {
    const rootfs = resolve(ref);
    let st;
    try {
      st = statSync(rootfs);
    } catch {
      throw new TscError(
        `rootfs ${ref} not found`,
        'give a path to a root filesystem directory, or an image name (tscontain images)',
      );
    }
    if (!st.isDirectory())
      throw new TscError(`rootfs ${ref} is not a directory`, 'give a path to a root filesystem directory');
    return { name: ref, rootfs, config: {} };
  }
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(ref))
    throw new TscError(
      `invalid image name "${ref}"`,
      'use lower-case letters, digits, "_", "." and "-", or a path containing "/"',
    );
  const dir = imageDir(r, ref);
  if (!existsSync(join(dir, 'rootfs'))) {
    const recipe = recipePath(ref);
    if (!build && recipe)
      return { name: ref, rootfs: join(dir, 'rootfs'), config: recipeConfig(readFileSync(recipe, 'utf8')), recipe };
    if (!recipe)
      throw new TscError(
        `image ${ref} not found`,
        `build it (tscontain rootfs build NAME), or give a path to a rootfs directory`,
      );
    buildImage(r, ref);
  }
  checkWritten(dir, ref);
  let meta: { config?: ImageConfig } = {};
  try {
    meta = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  } catch {
    /* no config */
  }
  return { name: ref, rootfs: join(dir, 'rootfs'), config: meta.config ?? {} };
}

/** An imported image's mark until it is known to be on disk (see writeBack in archive.ts). */
export const UNSYNCED = '.unsynced';

export const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

/** What is wrong with an image whose import never reached the disk, if anything. */
export function unwritten(dir: string): string | undefined {
  let mark: string;
  try {
    mark = readFileSync(join(dir, UNSYNCED), 'utf8');
  } catch {
    return undefined;
  } // the common case: one failed open
  if (/failed/.test(mark)) return 'writing it to disk failed';
  if (mark.split('\n')[0] !== bootId()) return 'the machine went down before it was safely on disk';
  return undefined; // being written back in this boot: the page cache has all of it
}

function checkWritten(dir: string, ref: string): void {
  const why = unwritten(dir);
  if (why)
    throw new TscError(
      `image ${ref} may be incomplete: ${why}`,
      `import it again (tscontain import --force FILE ${ref})`,
    );
}

/** Resolve a path inside a root filesystem, following symlinks as the kernel would after pivot_root. */
export { resolveInRoot };

/**
 * Check the command before anything is created, so a missing or non-executable command gets
 * docker's exit code (127 / 126) and one clear line instead of a half-started container.
 */
export function checkCommand(rootfs: string, cmd: string, pathEnv: string, workdir: string): void {
  const candidates = cmd.includes('/')
    ? [posix.resolve(workdir, cmd)]
    : pathEnv
        .split(':')
        .filter(Boolean)
        .map((d) => posix.join(d, cmd));
  for (const c of candidates) {
    const real = resolveInRoot(rootfs, c);
    if (!real) continue;
    const st = statSync(join(rootfs, real));
    if (st.isDirectory()) {
      if (cmd.includes('/'))
        throw new TscError(
          `exec: "${cmd}" is a directory`,
          'give the path of a program inside the image',
          EXIT_CANNOT_EXEC,
        );
      continue;
    }
    if ((st.mode & 0o111) === 0) {
      if (cmd.includes('/'))
        throw new TscError(
          `exec: "${cmd}": permission denied`,
          'the file is not executable (chmod +x it in the image)',
          EXIT_CANNOT_EXEC,
        );
      continue;
    }
    return;
  }
  throw new TscError(
    `exec: "${cmd}": ${cmd.includes('/') ? 'no such file or directory' : 'executable file not found in $PATH'}`,
    `check the command; the image's root is ${rootfs}`,
    EXIT_NOT_FOUND,
  );
}

/** -u NAME[:GROUP] or UID[:GID]; names are looked up in the image's /etc/passwd and /etc/group. */
export function resolveUser(
  rootfs: string,
  spec: string,
  // exec reads /proc/PID/root/etc/passwd of the running container
  where = rootfs.startsWith('/proc/') ? 'the container' : 'the image',
): { uid: number; gid: number; home?: string } {
  const [u, g] = spec.split(':', 2);
  // inside the root, a regular file only: never a host file through a symlink, never a fifo that blocks
  const read = (f: string) => (readRegularInRoot(rootfs, f, where) ?? '').split('\n').map((l) => l.split(':'));
  let uid: number, gid: number | undefined, home: string | undefined;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    let pw: string[] | undefined;
    try {
      pw = read('/etc/passwd').find((f) => f[2] === u);
    } catch {
      /* a number needs no passwd entry: an odd /etc/passwd only gives no group or home */
    }
    if (pw) {
      gid = Number(pw[3]);
      home = pw[5];
    }
  } else {
    const pw = read('/etc/passwd').find((f) => f[0] === u);
    if (!pw)
      throw new TscError(
        `unable to find user ${u}: no matching entries in the image's /etc/passwd`,
        'use a numeric UID[:GID]',
      );
    uid = Number(pw[2]);
    gid = Number(pw[3]);
    home = pw[5];
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const gr = read('/etc/group').find((f) => f[0] === g);
      if (!gr)
        throw new TscError(
          `unable to find group ${g}: no matching entries in the image's /etc/group`,
          'use a numeric GID',
        );
      gid = Number(gr[2]);
    }
  }
  if (!(uid >= 0 && uid < 2 ** 32)) throw new TscError(`invalid user "${spec}"`, 'use UID[:GID]');
  return { uid, gid: gid ?? 0, home };
}
