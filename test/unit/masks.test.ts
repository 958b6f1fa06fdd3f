// Masked and read-only paths as fstab lines, for a table of host facts. No root needed.
import test from 'ava';
import {
  hostMaskFacts,
  maskFstab,
  maskedPaths,
  masksCheck,
  MASKED_PATHS,
  READONLY_PATHS,
  type MaskFacts,
} from '../../src/kernel/masks.js';

const ROOT = '/var/lib/tscontain/containers/abc/rootfs';

/** This VM: no kcore, no sysrq-trigger, no thermal_throttle, no powercap. */
const VM: MaskFacts = {
  '/proc/acpi': 'dir',
  '/proc/interrupts': 'file',
  '/proc/keys': 'file',
  '/proc/timer_list': 'file',
  '/sys/firmware': 'dir',
  '/proc/bus': 'dir',
  '/proc/fs': 'dir',
  '/proc/irq': 'dir',
  '/proc/sys': 'dir',
};

test('this VM: a file gets /dev/null, a directory an empty ro tmpfs, a read-only path a ro bind of itself', (t) => {
  t.deepEqual(maskFstab(VM, { root: ROOT }), [
    'tmpfs /proc/acpi tmpfs ro,nosuid,nodev,noexec,mode=0555 0 0',
    '/dev/null /proc/interrupts none bind 0 0',
    '/dev/null /proc/keys none bind 0 0',
    '/dev/null /proc/timer_list none bind 0 0',
    'tmpfs /sys/firmware tmpfs ro,nosuid,nodev,noexec,mode=0555 0 0',
    `${ROOT}/proc/bus /proc/bus none bind,ro,nosuid,nodev,noexec 0 0`,
    `${ROOT}/proc/fs /proc/fs none bind,ro,nosuid,nodev,noexec 0 0`,
    `${ROOT}/proc/irq /proc/irq none bind,ro,nosuid,nodev,noexec 0 0`,
    `${ROOT}/proc/sys /proc/sys none bind,ro,nosuid,nodev,noexec 0 0`,
  ]);
});

test("every path of docker's lists, and each CPU's thermal_throttle in CPU order", (t) => {
  const all: Record<string, 'file' | 'dir'> = {};
  for (const p of MASKED_PATHS) all[p] = /acpi|asound|scsi|powercap|firmware/.test(p) ? 'dir' : 'file';
  for (const p of READONLY_PATHS) all[p] = p === '/proc/sysrq-trigger' ? 'file' : 'dir';
  for (const n of [10, 2, 0]) all[`/sys/devices/system/cpu/cpu${n}/thermal_throttle`] = 'dir';
  const lines = maskFstab(all, { root: ROOT });
  t.is(lines.length, MASKED_PATHS.length + 3 + READONLY_PATHS.length);
  t.deepEqual(
    maskedPaths(all).slice(-3),
    [0, 2, 10].map((n) => `/sys/devices/system/cpu/cpu${n}/thermal_throttle`),
  );
  t.true(lines.includes('/dev/null /proc/kcore none bind 0 0'));
  t.true(
    lines.includes('tmpfs /sys/devices/system/cpu/cpu10/thermal_throttle tmpfs ro,nosuid,nodev,noexec,mode=0555 0 0'),
  );
  t.true(lines.includes(`${ROOT}/proc/sysrq-trigger /proc/sysrq-trigger none bind,ro,nosuid,nodev,noexec 0 0`));
  for (const l of lines) t.is(l.split(/\s+/).length, 6, l); // fs_spec fs_file fs_vfstype fs_mntops fs_freq fs_passno
});

test('a path the kernel lacks gets no line (mount --all would fail on it); a stray fact is ignored', (t) => {
  t.deepEqual(maskFstab({}, { root: ROOT }), []);
  t.deepEqual(
    maskFstab(
      { '/proc/kcore': 'file', '/etc/passwd': 'file', '/sys/devices/system/cpu/cpuX/thermal_throttle': 'dir' },
      { root: ROOT },
    ),
    ['/dev/null /proc/kcore none bind 0 0'],
  );
});

test('--privileged: no masks, nothing read-only', (t) => {
  t.deepEqual(maskFstab(VM, { root: ROOT, privileged: true }), []);
});

test('a root that an fstab line cannot hold is refused', (t) => {
  for (const root of ['relative/root', '/a b', '/a,b', '/a\\b', '/a/../b', '/a$b', '/a\nb'])
    t.throws(() => maskFstab(VM, { root }), { message: /plain absolute path/ }, root);
});

test('hostMaskFacts asks about each candidate and the CPUs the host lists', (t) => {
  const asked: string[] = [];
  const facts = hostMaskFacts({
    kind: (p) => {
      asked.push(p);
      return p === '/proc/keys' ? 'file' : p.endsWith('cpu1/thermal_throttle') ? 'dir' : undefined;
    },
    list: (d) => (d === '/sys/devices/system/cpu' ? ['cpu0', 'cpu1', 'cpufreq', 'online'] : []),
  });
  t.deepEqual(facts, { '/proc/keys': 'file', '/sys/devices/system/cpu/cpu1/thermal_throttle': 'dir' });
  t.true(asked.includes('/proc/sys') && asked.includes('/sys/devices/system/cpu/cpu0/thermal_throttle'));
  t.false(asked.some((p) => p.includes('cpufreq')));
});

test('hostMaskFacts on this machine: /proc/sys is a directory, /proc/self never a candidate', (t) => {
  const facts = hostMaskFacts();
  t.is(facts['/proc/sys'], 'dir');
  t.false('/proc/self' in facts);
});

test('doctor: what is masked and read-only on this kernel', (t) => {
  const c = masksCheck(VM);
  t.is(c.status, 'ok');
  t.regex(c.detail, /^5 masked \(\/proc\/acpi .*\), 4 read-only \(\/proc\/bus .*\/proc\/sys\)$/);
});
