// Masked and read-only paths of /proc and /sys (docker's lists), as fstab(5) lines that ride the
// container's one `mount --all --fstab F --target-prefix ROOT` after its proc and sysfs lines:
// - a masked file: the host's /dev/null bound over it (reads are empty, writes vanish);
// - a masked directory: an empty read-only tmpfs over it;
// - a read-only path: bound on itself, read-only (mount(8) does the bind, then the remount,bind,ro).
// mount(8) 2.38 fails the whole `mount --all` (exit 64) on a missing mount point, with or without
// `nofail`, so only paths that exist in a fresh proc and sysfs of this kernel get a line: those
// facts are gathered once (hostMaskFacts) and passed in; the planning itself does no I/O.
import { lstatSync, readdirSync } from 'node:fs';
import type { Check } from '../host/doctor.js';

/**
 * moby daemon/pkg/oci/defaults.go defaultLinuxMaskedPaths (docker >= 28.0.2); containers/common
 * masks the same set minus /proc/asound (read-only there) plus /sys/fs/selinux.
 */
export const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/sys/devices/virtual/powercap',
  '/sys/firmware',
] as const;

/** Both engines' read-only paths. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'] as const;

/** Also masked, for every CPU that has one (GHSA-6fw5-f8r9-fgfm). */
const THERMAL = /^\/sys\/devices\/system\/cpu\/cpu\d+\/thermal_throttle$/;

export type PathKind = 'file' | 'dir';

/** Host facts: the kind of each candidate path that exists in a fresh proc and sysfs; absent = missing. */
export type MaskFacts = Readonly<Record<string, PathKind>>;

export interface MaskOptions {
  /** the container's root (the --target-prefix): a read-only bind's source must name it itself */
  root: string;
  /** --privileged: no masks, nothing read-only */
  privileged?: boolean;
}

/** What a mask line puts over a file: a fixed host path, never one from the container's layers. */
const NULL_DEVICE = '/dev/null';

/**
 * An fstab field is split at blanks; the plan writes the lines through sh double quotes and the
 * overlay options cannot hold commas or colons: the same plain paths plan.ts accepts, and absolute.
 */
function fstabPath(p: string): string {
  if (!p.startsWith('/') || /[\u0000-\u0020\u007f,:\\"$`']/.test(p) || p.split('/').includes('..'))
    throw new Error(`not a plain absolute path for an fstab line: ${JSON.stringify(p)}`);
  return p;
}

const maskLine = (path: string, kind: PathKind): string =>
  kind === 'file'
    ? `${NULL_DEVICE} ${fstabPath(path)} none bind 0 0`
    : `tmpfs ${fstabPath(path)} tmpfs ro,nosuid,nodev,noexec,mode=0555 0 0`;

// nosuid,nodev,noexec again: a remount,bind sets the mount's flags to exactly those given
const readonlyLine = (root: string, path: string): string =>
  `${fstabPath(root + path)} ${fstabPath(path)} none bind,ro,nosuid,nodev,noexec 0 0`;

/** The masked paths this host has: the fixed list, then its CPUs' thermal_throttle directories. */
export function maskedPaths(facts: MaskFacts): string[] {
  const thermal = Object.keys(facts)
    .filter((p) => THERMAL.test(p))
    .sort(byCpu);
  return [...MASKED_PATHS, ...thermal].filter((p) => facts[p]);
}

const cpuOf = (p: string) => Number(/cpu(\d+)\//.exec(p)?.[1] ?? 0);
const byCpu = (a: string, b: string) => cpuOf(a) - cpuOf(b);

/**
 * The fstab lines, in mount order: they must come after the lines that mount /proc and /sys
 * (mount --all keeps the file's order). --privileged gets none.
 */
export function maskFstab(facts: MaskFacts, opts: MaskOptions): string[] {
  if (opts.privileged) return [];
  fstabPath(opts.root);
  const masks = maskedPaths(facts).map((p) => maskLine(p, facts[p]));
  const ro = READONLY_PATHS.filter((p) => facts[p]).map((p) => readonlyLine(opts.root, p));
  return [...masks, ...ro];
}

export interface FactsFs {
  kind(path: string): PathKind | undefined;
  list(dir: string): string[];
}

const realFs: FactsFs = {
  kind(path) {
    try {
      const s = lstatSync(path);
      return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : undefined;
    } catch {
      return undefined;
    }
  },
  list(dir) {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
};

/**
 * The host's answer for every candidate path. The host's own /proc and /sys show the entries a
 * fresh mount of the same kernel shows (they are the kernel's, not a namespace's); a symlink or a
 * device counts as absent (none of the candidates is one).
 */
export function hostMaskFacts(fs: FactsFs = realFs): MaskFacts {
  const cpus = fs.list('/sys/devices/system/cpu').filter((n) => /^cpu\d+$/.test(n));
  const candidates = [
    ...MASKED_PATHS,
    ...READONLY_PATHS,
    ...cpus.map((c) => `/sys/devices/system/cpu/${c}/thermal_throttle`),
  ];
  const facts: Record<string, PathKind> = {};
  for (const p of candidates) {
    const k = fs.kind(p);
    if (k) facts[p] = k;
  }
  return facts;
}

/** The doctor row: what this kernel's fresh proc and sysfs would show unmasked. */
export function masksCheck(facts: MaskFacts): Check {
  const masked = maskedPaths(facts);
  const ro = READONLY_PATHS.filter((p) => facts[p]);
  return {
    what: 'masked paths',
    status: 'ok',
    detail: `${masked.length} masked (${masked.join(' ')}), ${ro.length} read-only (${ro.join(' ')})`,
  };
}
