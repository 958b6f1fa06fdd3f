// The container's root filesystem: overlayfs over the image, the kernel filesystems, volumes and
// tmpfs mounts (all from one fstab, mounted by one `mount --all`), then the switch of root.
import { posix } from 'node:path';
import { TscError } from '../errors.js';
import { joinSh, lit, ref, sh, type Sh } from '../plan/sh.js';
import type { Step } from '../plan/step.js';

export interface Volume {
  host: string;
  /** the path the user gave (what the container sees) */
  path: string;
  /** the mount point: `path` resolved inside the image's root (src/spec/targets.ts) */
  target: string;
  readOnly: boolean;
  /** the host side is a file (mounted on its own, after the fstab) */
  file: boolean;
  /** the host side exists (a missing one is made as a directory, as docker does) */
  exists: boolean;
}
export interface Tmpfs {
  path: string;
  /** the mount point: `path` resolved inside the image's root (src/spec/targets.ts) */
  target: string;
  options: string;
}

/**
 * Our own paths (the image, the container's directory, TSCONTAIN_ROOT) go into overlayfs options
 * and into fstab fields unencoded, so they are refused when they hold anything else than plain
 * characters.
 */
export function plainPath(p: string, what: string): void {
  if (/[\s,:\\"'$`#\u0000-\u001f\u007f]/.test(p))
    throw new TscError(
      `${what} ${JSON.stringify(p)} contains a blank, comma, colon, quote, $, #, backslash or control character`,
      'overlayfs and fstab cannot hold it: use a plain path (or set TSCONTAIN_ROOT to one)',
    );
}

/** A field of fstab(5): blanks, control characters, backslash and # as \ooo, which libmount decodes. */
export function fstabField(s: string): string {
  return s.replace(/[\u0000-\u0020\u007f\\#]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** One fstab entry: four words. Strings are user data (encoded, then quoted); Sh our own text. */
type Field = string | Sh;
type Entry = [Field, Field, Field, Field];
const field = (f: Field): Sh => (typeof f === 'string' ? sh`${fstabField(f)}` : f);

const MKDIR = 'X-mount.mkdir';

/** A whole fstab line of plain fields (the masks' lines) as an entry. */
const split = (line: string): Entry => line.split(' ').slice(0, 4) as Entry;

function entries(s: MountSpec): Entry[] {
  const layer = s.devices.length > 0;
  return [
    [
      lit('overlay'),
      lit('/.'),
      lit('overlay'),
      lit('"lowerdir=$tsc_image,upperdir=$tsc_ctr/upper,workdir=$tsc_ctr/work"'),
    ],
    [lit('proc'), lit('/proc'), lit('proc'), lit('nosuid,nodev,noexec,X-mount.mkdir')],
    [lit('sysfs'), lit('/sys'), lit('sysfs'), lit('ro,nosuid,nodev,noexec,X-mount.mkdir')],
    ...s.masks.map(split),
    [
      lit('overlay'),
      lit('/dev'),
      lit('overlay'),
      layer
        ? lit(
            '"lowerdir=$tsc_run/devices:$tsc_dev,upperdir=$tsc_ctr/dev/upper,workdir=$tsc_ctr/dev/work,nosuid,X-mount.mkdir"',
          )
        : lit('"lowerdir=$tsc_dev,upperdir=$tsc_ctr/dev/upper,workdir=$tsc_ctr/dev/work,nosuid,X-mount.mkdir"'),
    ],
    ...s.devices.map((d): Entry => [d.host, d.path, 'none', 'bind,nosuid,noexec']),
    [
      lit('devpts'),
      lit('/dev/pts'),
      lit('devpts'),
      lit('newinstance,ptmxmode=0666,mode=0620,nosuid,noexec,X-mount.mkdir'),
    ],
    [lit('shm'), lit('/dev/shm'), lit('tmpfs'), lit('nosuid,nodev,noexec,mode=1777,size=65536k,X-mount.mkdir')],
    ...s.tmpfs.map(
      (t): Entry => ['tmpfs', t.target, 'tmpfs', ['nosuid', 'nodev', t.options, MKDIR].filter(Boolean).join(',')],
    ),
    ...s.volumes
      .filter((v) => !v.file)
      .map((v): Entry => [v.host, v.target, 'none', ['bind', v.readOnly && 'ro', MKDIR].filter(Boolean).join(',')]),
    ...(s.shared ?? []).map((b): Entry => [b.host, b.path, 'none', 'bind']),
  ];
}

export interface MountSpec {
  volumes: Volume[];
  tmpfs: Tmpfs[];
  /** --device nodes: bound over mount points in a layer of their own ($tsc_run/devices) */
  devices: { host: string; path: string }[];
  /** the masked and read-only paths, as fstab lines of plain fields (src/kernel/masks.ts) */
  masks: string[];
  /** the working directory to make before the root switch, resolved inside the root; none for / or /proc/... */
  workdirMkdir?: string;
  readOnly: boolean;
  /** files bound from another container (--network container:NAME shares its /etc files); their targets exist */
  shared?: { host: string; path: string }[];
}

// Before pivot_root the host's root is PID 1's root, so a symlink in the container's root met by a
// path of ours (a mount point, the working directory) would be followed on the host. The paths are
// resolved inside the image's root when the spec is made (src/spec/targets.ts), so they hold none;
// a store image changes only by root's hand. A rootfs directory the user gave, or a volume's source,
// may change meanwhile: these lines refuse a symlink that appeared since, where a test is cheap
// (before the files and directories made by sh). The fstab's own targets are made by mount(8)
// (X-mount.mkdir) without such a check: for them only the image's /proc, /sys and /dev are tested
// again here, in the image itself (the container's upper layer holds only its own /etc files).

/** Fail when a directory on the way to `path` (or `path` itself) inside the root is a symlink. */
export function noLinkGuard(path: string): Sh[] {
  const parts = path.split('/').filter(Boolean);
  const prefixes = parts.map((_, i) => '/' + parts.slice(0, i + 1).join('/'));
  return [sh`for tsc_link in ${prefixes}; do`, LINKED, lit('done')];
}
const LINKED = lit(
  `  [ ! -L "$tsc_root$tsc_link" ] || { echo "tscontain: a path in the container's root became a symlink" >&2; exit 1; }`,
);

/** The image's /proc, /sys and /dev: mounted on by the fstab, so never symlinks (checked at plan time too). */
const KERNEL_DIRS_GUARD = [
  lit('for tsc_link in proc sys dev; do'),
  lit(`  [ ! -L "$tsc_image/$tsc_link" ] || { echo "tscontain: the image's /$tsc_link is a symlink" >&2; exit 1; }`),
  lit('done'),
];

/** Step: write the fstab and mount it all, then file volumes, the workdir, --read-only. */
export function mountStep(s: MountSpec, extra: Sh[] = []): Step {
  const R = ref('tsc_root');
  // a wide row continues on the next line: printf takes its arguments, not lines
  const rows = entries(s).map((e) => {
    const f = e.map(field);
    const row = joinSh(f);
    return row.text.length <= 100 ? row : joinSh([joinSh(f.slice(0, 3)), f[3]], ' \\\n    ');
  });
  return {
    title:
      "Mount the container's filesystems from its fstab: overlayfs as /, /proc, a read-only /sys, /dev, devpts, /dev/shm",
    man: 'mount_namespaces(7), overlayfs, proc(5), sysfs(5), pts(4), tmpfs(5), fstab(5), mount(8)',
    lines: [
      lit(`printf '%s %s %s %s 0 0\\n' \\`),
      ...rows.map((r, i) => sh`  ${r}${i < rows.length - 1 ? lit(' \\') : lit(' > "$tsc_run/fstab"')}`),
      ...KERNEL_DIRS_GUARD,
      sh`mount --all --no-canonicalize --fstab "$tsc_run/fstab" --target-prefix ${R}`,
      ...s.volumes
        .filter((v) => v.file)
        .flatMap((v) => [
          ...noLinkGuard(v.target),
          sh`[ -e ${R}${v.target} ] || { mkdir -p ${R}${posix.dirname(v.target)}; : > ${R}${v.target}; }`,
          v.readOnly ? sh`mount --bind -o ro ${v.host} ${R}${v.target}` : sh`mount --bind ${v.host} ${R}${v.target}`,
        ]),
      ...(s.workdirMkdir ? [...noLinkGuard(s.workdirMkdir), sh`mkdir -p ${R}${s.workdirMkdir}`] : []),
      ...(s.readOnly
        ? [lit('mount -o remount,bind,ro "$tsc_root"   # --read-only: the root itself, not the mounts on it')]
        : []),
      ...extra,
    ],
  };
}

/** How host programs are started once the host's root is only the cwd: through its dynamic loader. */
export interface Loader {
  ldso: string;
  libPath: string[];
}

/** ./LDSO --library-path LIBS ./PROG: a host program run from the detached old root (the cwd). */
export function viaLoader(l: Loader, prog: string): Sh {
  const rel = (p: string) => `.${p}`;
  return joinSh(
    [sh`${rel(l.ldso)}`, sh`--library-path ${l.libPath.map(rel).join(':')}`, sh`${rel(prog)}`],
    ' \\\n    ',
  );
}

/** Where pivot_root puts the host's root: a directory every image's root has (become.pl detaches it). */
export const OLD_ROOT = '/dev/shm';

export function pivotStep(): Step {
  return {
    title: "Switch root with pivot_root; the host's root stays at /dev/shm until become.pl detaches it",
    man: 'pivot_root(2), pivot_root(8)',
    lines: [lit('cd "$tsc_root"'), lit('pivot_root . dev/shm'), lit('cd /dev/shm')],
  };
}
