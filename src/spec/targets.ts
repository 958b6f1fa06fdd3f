// The container paths tscontain acts on before the root switch (mount points of -v and --tmpfs,
// the working directory it makes), resolved inside the container's root as the kernel resolves
// them after pivot_root: an image's symlink such as /data -> /etc, or ../../etc, then names a
// place inside the root, never on the host (runc does the same with filepath-securejoin). The
// root is the one PID 1 will have when it reaches each path: the image under the container's own
// /etc files, tscontain's /dev, the kernel filesystems, then each mount of the fstab in its order.
import { join } from 'node:path';
import { TscError } from '../errors.js';
import { DEV_LINKS, DEV_NODES } from '../kernel/devfs.js';
import { SHARED_ETC } from '../kernel/network/join.js';
import type { Tmpfs, Volume } from '../kernel/rootfs.js';
import { lstatNode, walk, type Look, type Node } from '../store/inroot.js';

/** A mount of the container's root: where it is, and what a path below it (`rel`, '' for itself) is. */
interface Mount {
  at: string;
  look: (rel: string) => Node;
}

const DIR: Node = { kind: 'dir' };
const FILE: Node = { kind: 'file' };
const MISSING: Node = { kind: 'missing' };
const KERNEL: Node = { kind: 'kernel' };

/**
 * The overlay root: the image under the container's upper layer, which holds a directory /etc
 * and tscontain's own /etc files (every network mode writes them). Where the image's /etc is not
 * a directory, overlayfs shows the upper /etc alone.
 */
function imageMount(rootfs: string): Mount {
  return {
    at: '/',
    look: (rel) => {
      if (rel === '' || rel === '/etc') return DIR;
      if (rel.startsWith('/etc/')) {
        if ((SHARED_ETC as readonly string[]).includes(rel.slice(5))) return FILE;
        if (lstatNode(join(rootfs, 'etc')).kind !== 'dir') return MISSING;
      }
      return lstatNode(join(rootfs, rel));
    },
  };
}

/** tscontain's /dev: the --device layer (mount points of the nodes) over the skeleton (src/kernel/devfs.ts). */
function devMount(devices: readonly string[]): Mount {
  const links = new Map(DEV_LINKS.map(([n, t]) => [`/${n}`, t]));
  const nodes = new Set(DEV_NODES.map((n) => n.slice('/dev'.length)));
  const layer = devices.map((d) => d.slice('/dev'.length));
  return {
    at: '/dev',
    look: (rel) => {
      if (rel === '' || rel === '/pts' || rel === '/shm') return DIR;
      if (layer.includes(rel)) return FILE;
      if (layer.some((d) => d.startsWith(rel + '/'))) return DIR;
      if (nodes.has(rel)) return FILE;
      const t = links.get(rel);
      return t ? { kind: 'link', target: t } : MISSING;
    },
  };
}

const kernelMount = (at: string): Mount => ({ at, look: () => KERNEL });
/** a tmpfs, or a volume whose host directory the plan makes (empty) */
const emptyMount = (at: string): Mount => ({ at, look: (rel) => (rel === '' ? DIR : MISSING) });
const fileMount = (at: string): Mount => ({ at, look: (rel) => (rel === '' ? FILE : MISSING) });
const hostDirMount = (at: string, dir: string): Mount => ({
  at,
  look: (rel) => (rel === '' ? DIR : lstatNode(join(dir, rel))),
});

/** The root as a Look: the last mount over a path hides what was there before. */
function viewOf(mounts: readonly Mount[]): Look {
  return (p) => {
    for (let i = mounts.length - 1; i >= 0; i--) {
      const { at, look } = mounts[i];
      if (p === at) return look('');
      if (at === '/') return look(p);
      if (p.startsWith(at + '/')) return look(p.slice(at.length));
    }
    return MISSING;
  };
}

/** /proc/self, /proc/PID, /proc/thread-self: before the root switch, processes whose root is the host's. */
const processDir = (p: string) => /^\/proc\/(self|thread-self|\d+)(\/|$)/.test(p);

/** /proc, /sys and /dev are mounted on: never through a symlink of the image, like runc. */
function checkKernelDirs(rootfs: string, image: string): void {
  for (const d of ['proc', 'sys', 'dev']) {
    const n = lstatNode(join(rootfs, d));
    if (n.kind === 'link' || n.kind === 'file')
      throw new TscError(
        `image ${image}: /${d} is ${n.kind === 'link' ? 'a symbolic link' : 'not a directory'}`,
        `/${d} is mounted on, and only on a plain directory: fix the image`,
      );
  }
}

export interface TargetRequest {
  image: string;
  rootfs: string;
  volumes: readonly Omit<Volume, 'target'>[];
  tmpfs: readonly Omit<Tmpfs, 'target'>[];
  /** the container paths of the --device nodes */
  devices: readonly string[];
  workdir: string;
}

export interface Targets {
  volumes: Volume[];
  tmpfs: Tmpfs[];
  /** the working directory to make before the root switch, if any (not /, not in a kernel filesystem) */
  workdirMkdir?: string;
}

/** Every mount point and the working directory, resolved inside the container's root (reads the image). */
export function resolveTargets(r: TargetRequest): Targets {
  checkKernelDirs(r.rootfs, r.image);
  const mounts: Mount[] = [
    imageMount(r.rootfs),
    kernelMount('/proc'),
    kernelMount('/sys'),
    devMount(r.devices),
    kernelMount('/dev/pts'),
    emptyMount('/dev/shm'),
  ];
  const look = viewOf(mounts);
  const target = (p: string, what: string): string => {
    const bad = (why: string) =>
      new TscError(
        `${what}: the container path ${JSON.stringify(p)} ${why}`,
        'give a path that stays inside the image',
      );
    const w = walk(p, look);
    if ('error' in w) throw bad(`cannot be resolved in the image: ${w.error}`);
    if (w.kernel && w.viaLink)
      throw bad(`leads into ${JSON.stringify(w.path)} through a symbolic link: a kernel filesystem`);
    if (processDir(w.path))
      throw bad(`is in ${JSON.stringify(w.path)}: a process of the host's before the root switch`);
    if (w.path === '/') throw bad('is the root itself (through a symbolic link)');
    return w.path;
  };
  // in the fstab's order (src/kernel/rootfs.ts): tmpfs, directory volumes, then file volumes
  const tmpfs = r.tmpfs.map((t) => {
    const at = target(t.path, '--tmpfs');
    mounts.push(emptyMount(at));
    return { ...t, target: at };
  });
  const volumes: Volume[] = r.volumes.map((v) => ({ ...v, target: '' }));
  for (const file of [false, true])
    for (const v of volumes.filter((x) => x.file === file)) {
      v.target = target(v.path, '-v');
      mounts.push(v.file ? fileMount(v.target) : v.exists ? hostDirMount(v.target, v.host) : emptyMount(v.target));
    }
  const wd = walk(r.workdir, look);
  if ('error' in wd)
    throw new TscError(
      `the working directory ${JSON.stringify(r.workdir)} cannot be resolved in the image: ${wd.error}`,
      'give another one with -w',
    );
  return { volumes, tmpfs, workdirMkdir: wd.kernel || wd.path === '/' ? undefined : wd.path };
}
