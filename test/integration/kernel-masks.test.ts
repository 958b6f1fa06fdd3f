// The masks and read-only paths against the kernel: a real `mount --all --fstab F --target-prefix
// DIR` in a new mount and PID namespace, with a fresh proc and sysfs at DIR, as the container's
// fstab does it. Probes only open for append (never write) and read.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostDeviceFacts, deviceMounts, parseDevice, resolveDevice } from '../../src/kernel/devices.js';
import { hostMaskFacts, maskFstab, maskedPaths } from '../../src/kernel/masks.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';
import { isRoot } from './helpers.js';

const it = isRoot ? test : test.skip;
test.after.always(removeTempDirs);

const BASE = [
  'proc /proc proc nosuid,nodev,noexec,X-mount.mkdir 0 0',
  'sysfs /sys sysfs ro,nosuid,nodev,noexec,X-mount.mkdir 0 0',
];

/**
 * sh, run in the new namespaces with $1 = fstab, $2 = root, then the masked files and directories:
 * prints one `key=value` line per probe. `: >>` opens for append and writes nothing.
 */
const PROBE = `
f=$1 r=$2; shift 2
mount --all --no-canonicalize --fstab "$f" --target-prefix "$r" || { echo mount=failed; exit 0; }
for p in kernel/core_pattern vm/drop_caches; do
  if err=$( { : >> "$r/proc/sys/$p"; } 2>&1 ); then echo "$p=opened"; else echo "$p=$err"; fi
done
for p in "$@"; do
  if [ -d "$r$p" ]; then echo "$p=$(ls -A "$r$p" | wc -l) entries"; else echo "$p=$(wc -c < "$r$p") bytes"; fi
done
`;

/** Mount the fstab made for a fresh root (the ro binds name the root in their source), then probe. */
function probe(lines: (root: string) => string[], paths: string[]): Record<string, string> {
  const d = tempDir('tscontain-masks-');
  const root = join(d, 'root');
  mkdirSync(root);
  writeFileSync(join(d, 'fstab'), lines(root).join('\n') + '\n');
  const argv = [
    '--mount',
    '--pid',
    '--fork',
    '--propagation',
    'private',
    'sh',
    '-c',
    PROBE,
    'sh',
    join(d, 'fstab'),
    root,
    ...paths,
  ];
  const r = spawnSync('unshare', argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

it('masked paths read empty, /proc/sys is read-only, in one mount --all', (t) => {
  const facts = hostMaskFacts();
  const masked = maskedPaths(facts);
  t.true(masked.includes('/proc/keys') && masked.includes('/proc/timer_list'), `this kernel has them: ${masked}`);

  // without the lines the probes see the host's kernel: they can tell (not /proc/kcore: unmasked,
  // reading it through would take the size of the kernel's whole address space)
  const bare = probe(() => BASE, ['/proc/keys', '/proc/timer_list']);
  t.is(bare['kernel/core_pattern'], 'opened');
  t.not(bare['/proc/keys'], '0 bytes');
  t.not(bare['/proc/timer_list'], '0 bytes');

  const got = probe((root) => [...BASE, ...maskFstab(facts, { root })], masked);
  t.not(got.mount, 'failed');
  t.regex(got['kernel/core_pattern'], /Read-only file system/);
  t.regex(got['vm/drop_caches'], /Read-only file system/);
  for (const p of masked) t.regex(got[p], /^0 (bytes|entries)$/, p);
});

it('a missing mount point fails the whole mount --all, even with nofail: why only existing paths get a line', (t) => {
  const got = probe(() => [...BASE, '/dev/null /proc/tscontain-none none bind,nofail 0 0'], []);
  t.is(got.mount, 'failed');
});

it('--device: the host node bound onto an empty file of our own layer above the /dev skeleton', (t) => {
  const d = tempDir('tscontain-devmnt-');
  const root = join(d, 'root');
  const [skel, layer, upper, work] = ['skel', 'layer', 'upper', 'work'].map((n) => join(d, n));
  for (const x of [root, skel, upper, work]) mkdirSync(x);
  writeFileSync(join(skel, 'marker'), 'skeleton\n');
  const dev = resolveDevice(parseDevice('/dev/null:/dev/sub/mine:rw'), hostDeviceFacts('/dev/null'));
  const m = deviceMounts([dev], layer);
  for (const x of m.dirs) mkdirSync(x);
  const fstab = [
    `overlay /dev overlay lowerdir=${m.layer}:${skel},upperdir=${upper},workdir=${work},nosuid,X-mount.mkdir 0 0`,
    ...m.fstab,
  ];
  writeFileSync(join(d, 'fstab'), fstab.join('\n') + '\n');
  const sh = `${m.lines.map((l) => l.text).join('\n')}
mount --all --no-canonicalize --fstab "$1" --target-prefix "$2" || exit 1
stat -c '%F %t:%T' "$2/dev/sub/mine"; cat "$2/dev/marker"; echo x > "$2/dev/sub/mine" && echo written`;
  const r = spawnSync(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', sh, 'sh', join(d, 'fstab'), root],
    { encoding: 'utf8' },
  );
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'character special file 1:3\nskeleton\nwritten\n');
});
