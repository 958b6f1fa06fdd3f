// Paths inside a container's root, resolved the way the kernel resolves them once the root is
// switched: every symlink, absolute or relative, is read relative to that root and `..` stops at
// it. tscontain acts on some of these paths before pivot_root (mount targets, the working
// directory, /etc/passwd), where the host's path resolution would follow an image's symlink out
// of the root; runc does the same with filepath-securejoin.
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TscError } from '../errors.js';

/** What one name is, in the view of the root being resolved. */
export type Node =
  | { kind: 'dir' }
  | { kind: 'file' } // anything else that is not a symlink: a file, a device, a fifo, a socket
  | { kind: 'link'; target: string }
  | { kind: 'missing' }
  /** a kernel filesystem (proc, sysfs, devpts): the walk stops there, the kernel resolves the rest */
  | { kind: 'kernel' };

/** The node at an absolute path whose every parent is a directory (never a symlink) of the view. */
export type Look = (path: string) => Node;

export type Walked =
  | {
      /** the path with no symlink left in it; what is missing is kept as given (mkdir makes plain dirs) */
      path: string;
      /** the last name exists; false: the tail from the first missing name on does not */
      exists: boolean;
      /** the walk reached a kernel filesystem (the rest of the path is left to the kernel) */
      kernel: boolean;
      /** a symlink was followed on the way */
      viaLink: boolean;
    }
  | { error: string };

/** The kernel's limit of symlinks in one lookup (MAXSYMLINKS): more is ELOOP. */
const MAX_LINKS = 40;

/** The most read of a file such as /etc/passwd: an image's huge one is refused, not read into memory. */
const MAX_READ = 16 << 20;

const names = (p: string) => p.split('/').filter((c) => c !== '' && c !== '.');
const abs = (parts: string[]) => '/' + parts.join('/');

/** Resolve `p` (absolute, or taken as relative to the root) in the view `look`. */
export function walk(p: string, look: Look): Walked {
  const todo = names(p);
  const cur: string[] = [];
  let links = 0;
  let viaLink = false;
  while (todo.length) {
    const c = todo.shift()!;
    if (c === '..') {
      cur.pop(); // cur holds no symlink: its parent is the parent; at the root, the root
      continue;
    }
    const path = abs([...cur, c]);
    const n = look(path);
    if (n.kind === 'kernel') return { path: abs([...cur, c, ...todo]), exists: true, kernel: true, viaLink };
    if (n.kind === 'missing') {
      // mkdir -p would go back up through what it has just made: never where the kernel would
      if (todo.includes('..')) return { error: `".." after ${JSON.stringify(path)}, which does not exist` };
      return { path: abs([...cur, c, ...todo]), exists: false, kernel: false, viaLink };
    }
    if (n.kind === 'link') {
      if (++links > MAX_LINKS) return { error: 'too many levels of symbolic links' };
      viaLink = true;
      if (n.target.startsWith('/')) cur.length = 0;
      todo.unshift(...names(n.target));
      continue;
    }
    if (n.kind === 'file' && todo.length) return { error: `${JSON.stringify(path)} is not a directory` };
    cur.push(c);
  }
  return { path: abs(cur), exists: true, kernel: false, viaLink };
}

/** A node of the host's file system, never followed. */
export function lstatNode(hostPath: string): Node {
  let st;
  try {
    st = lstatSync(hostPath);
  } catch {
    return { kind: 'missing' }; // ENOENT, ENOTDIR; EACCES cannot happen to root
  }
  if (st.isSymbolicLink()) return { kind: 'link', target: readlinkSync(hostPath) };
  return { kind: st.isDirectory() ? 'dir' : 'file' };
}

/** The view of a directory of the host as a root (an image's rootfs, /proc/PID/root). */
export const dirLook =
  (root: string): Look =>
  (p) =>
    lstatNode(join(root, p));

/** The path of an existing file or directory inside a root, symlinks followed inside it. */
export function resolveInRoot(root: string, p: string): string | undefined {
  const w = walk(p, dirLook(root));
  return 'error' in w || !w.exists ? undefined : w.path;
}

/**
 * A regular file inside a root (e.g. an image's /etc/passwd, or /proc/PID/root/etc/passwd of a
 * running container whose processes may change it meanwhile): undefined when it does not exist;
 * anything else (a fifo, a device, a directory, a loop of symlinks) is refused in one line.
 * The walk holds a directory fd per step and opens one name at a time below it with O_NOFOLLOW
 * (through /proc/self/fd/N/NAME, node has no openat): a symlink swapped in meanwhile makes the open
 * fail, never followed on the host; `..` is our own stack of fds, never the kernel's. O_NONBLOCK:
 * opening a fifo does not wait for a writer.
 */
export function readRegularInRoot(root: string, p: string, where: string): string | undefined {
  const refuse = (why: string) =>
    new TscError(`${where}'s ${p} ${why}`, 'it must be a regular file, or give a numeric UID[:GID]');
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;
  const dirs = [openSync(root, O_RDONLY | O_DIRECTORY | O_NONBLOCK)];
  const todo = names(p);
  let links = 0;
  try {
    while (todo.length) {
      const c = todo.shift()!;
      if (c === '..') {
        if (dirs.length > 1) closeSync(dirs.pop()!);
        continue;
      }
      const at = `/proc/self/fd/${dirs[dirs.length - 1]}/${c}`;
      const n = lstatNode(at);
      if (n.kind === 'missing') return undefined;
      if (n.kind === 'link') {
        if (++links > MAX_LINKS) throw refuse('cannot be resolved: too many levels of symbolic links');
        if (n.target.startsWith('/')) while (dirs.length > 1) closeSync(dirs.pop()!);
        todo.unshift(...names(n.target));
        continue;
      }
      const last = todo.length === 0;
      let fd: number;
      try {
        fd = openSync(at, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | (last ? 0 : O_DIRECTORY));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return undefined;
        throw refuse(
          code === 'ENOTDIR'
            ? `cannot be resolved: ${JSON.stringify(c)} is not a directory`
            : `cannot be opened (${code})`,
        );
      }
      if (!last) {
        dirs.push(fd);
        continue;
      }
      try {
        const st = fstatSync(fd);
        if (!st.isFile()) throw refuse('is not a regular file');
        if (st.size > MAX_READ) throw refuse(`is larger than ${MAX_READ >> 20} MiB`);
        return readFileSync(fd, 'utf8');
      } finally {
        closeSync(fd);
      }
    }
    throw refuse('is not a regular file'); // the root itself
  } finally {
    for (const d of dirs) closeSync(d);
  }
}
