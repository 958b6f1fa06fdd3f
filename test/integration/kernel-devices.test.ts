// Device rules against the kernel, on a cgroup of the test's own (tscontain/devtest-*, removed
// after): the rules go in while it is empty, then a shell moves itself in and probes. Probes only
// open (never read or write a disk); the disk nodes are made in temporary directories.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_RULES, v1Lines, v2Lines, type DeviceRule } from '../../src/kernel/devices.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';
import { isRoot, sleep } from './helpers.js';

test.after.always(removeTempDirs);

const made: string[] = [];
test.after.always(async () => {
  for (const cg of made.splice(0)) {
    for (let i = 0; i < 100 && existsSync(cg); i++) {
      try {
        rmdirSync(cg);
      } catch {
        await sleep(20);
      } // the probe shell may still be exiting
    }
  }
});

/** A new cgroup of this test under HIERARCHY/tscontain, or why there can be none. */
function ownCgroup(hierarchy: string): string | Error {
  if (!isRoot) return new Error('needs root');
  if (!existsSync(hierarchy)) return new Error(`${hierarchy} is missing`);
  const dir = join(
    hierarchy,
    'tscontain',
    `devtest-${process.pid}-${made.length}-${Math.random().toString(36).slice(2, 8)}`,
  );
  try {
    mkdirSync(join(hierarchy, 'tscontain'), { recursive: true });
    mkdirSync(dir);
  } catch (e) {
    return new Error(`cannot make a cgroup under ${hierarchy}: ${(e as Error).message}`);
  }
  made.push(dir);
  return dir;
}

/**
 * A block device the host itself may open (read-only, nothing read): the root disk, else another
 * (some VMs refuse even root an open of their root disk). Not 7:0, which the rules below allow.
 */
function blockDevice(): [number, number] {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === '/');
  const rootDev = line!.split(' ')[2];
  const others = readdirSync('/sys/block')
    .sort()
    .map((b) => readFileSync(`/sys/block/${b}/dev`, 'utf8').trim());
  for (const mm of [rootDev, ...others]) {
    const [major, minor] = mm.split(':').map(Number);
    if (major === 0 || (major === 7 && minor === 0)) continue;
    const tmp = tempDir('tscontain-devnode-');
    const node = join(tmp, 'disk');
    if (spawnSync('mknod', [node, 'b', String(major), String(minor)]).status !== 0) continue;
    try {
      closeSync(openSync(node, 'r'));
      return [major, minor];
    } catch {
      /* not this one */
    }
  }
  throw new Error('no block device that this host opens');
}

/**
 * sh run as `sh -c PROBE sh CGROUP_DIR TMPDIR MAJOR MINOR`: moves itself into the cgroup, then
 * prints one `name=ok|error` line per probe.
 */
const PROBE = `
echo $$ > "$1/cgroup.procs" || exit 1
t=$2
try() { n=$1; shift; if err=$( { "$@"; } 2>&1 ); then echo "$n=ok"; else echo "$n=$err"; fi; }
try null-write eval 'echo x > /dev/null'
try zero-read eval 'head -c 4 /dev/zero > /dev/null'
try disk-mknod mknod "$t/disk" b "$3" "$4"
try disk-open eval 'exec 3< "$t/disk"'
try kmsg-mknod mknod "$t/kmsg" c 1 11
try kmsg-open eval 'exec 3< "$t/kmsg"'
try loop-read eval 'exec 3< "$t/loop"'
try loop-rw eval 'exec 3<> "$t/loop"'
`;

function probe(
  t: { is: (a: unknown, b: unknown, m?: string) => void },
  cg: string,
  setup: string[],
): Record<string, string> {
  const tmp = tempDir('tscontain-devtest-');
  spawnSync('mknod', [join(tmp, 'loop'), 'b', '7', '0']); // made outside the cgroup: the rules decide its open only
  const rules = spawnSync('sh', ['-ec', setup.join('\n')], { encoding: 'utf8' });
  t.is(rules.status, 0, `rules: ${rules.stderr}`);
  const [major, minor] = blockDevice();
  const r = spawnSync('sh', ['-c', PROBE, 'sh', cg, tmp, String(major), String(minor)], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  return Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** The defaults plus a --device /dev/loop0:r, and what they must give. */
const RULES: DeviceRule[] = [...DEFAULT_RULES, { allow: true, type: 'b', major: 7, minor: 0, access: 'r' }];
/** A broken set: block devices readable. The probes must notice. */
const BROKEN: DeviceRule[] = [...RULES, { allow: true, type: 'b', access: 'rwm' }];

function expectDefault(
  t: Parameters<typeof probe>[0] & { regex: (a: string, r: RegExp, m?: string) => void },
  got: Record<string, string>,
) {
  t.is(got['null-write'], 'ok');
  t.is(got['zero-read'], 'ok');
  t.is(got['disk-mknod'], 'ok', 'MKNOD is allowed (c *:* m, b *:* m), opening is not');
  t.regex(got['disk-open'], /Operation not permitted/);
  t.is(got['kmsg-mknod'], 'ok');
  t.regex(got['kmsg-open'], /Operation not permitted/);
  t.is(got['loop-read'], 'ok', '--device /dev/loop0:r');
  t.regex(got['loop-rw'], /Operation not permitted/);
}

const v1 = ownCgroup('/sys/fs/cgroup/devices');
(typeof v1 === 'string' && existsSync(join(v1, 'devices.allow')) ? test.serial : test.serial.skip)(
  'cgroup v1 devices controller: deny all, allow the list',
  (t) => {
    const cg = v1 as string;
    const got = probe(
      t,
      cg,
      v1Lines(RULES, cg).map((l) => l.text),
    );
    expectDefault(t, got);
    const list = readFileSync(join(cg, 'devices.list'), 'utf8');
    t.regex(list, /^c 1:3 rwm$/m);
    t.notRegex(list, /^a /m);
  },
);

const v1b = ownCgroup('/sys/fs/cgroup/devices');
(typeof v1b === 'string' ? test.serial : test.serial.skip)('cgroup v1: the probes see a broken rule set', (t) => {
  const got = probe(
    t,
    v1b as string,
    v1Lines(BROKEN, v1b as string).map((l) => l.text),
  );
  t.is(got['disk-open'], 'ok');
  t.is(got['loop-rw'], 'ok');
});

/** The writable cgroup2 tree: the root on a v2 host, unified/ on a hybrid one. */
const v2root = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
const v2 = ownCgroup(v2root);
const v2b = ownCgroup(v2root);
const why = typeof v2 === 'string' ? '' : ` (skipped: ${v2.message})`;

(typeof v2 === 'string' ? test.serial : test.serial.skip)(
  `cgroup v2: the eBPF program, loaded and attached by devices-attach.pl${why}`,
  (t) => {
    const got = probe(
      t,
      v2 as string,
      v2Lines(RULES, v2 as string, 'perl').map((l) => l.text),
    );
    expectDefault(t, got);
  },
);

(typeof v2b === 'string' ? test.serial : test.serial.skip)('cgroup v2: the probes see a broken rule set', (t) => {
  const got = probe(
    t,
    v2b as string,
    v2Lines(BROKEN, v2b as string, 'perl').map((l) => l.text),
  );
  t.is(got['disk-open'], 'ok');
  t.is(got['loop-rw'], 'ok');
});
