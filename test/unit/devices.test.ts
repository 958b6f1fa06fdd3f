// Device rules: --device parsing, the v1 lines, and the v2 eBPF program run by a small interpreter
// (test/unit/ebpf.ts) against the rule list's own verdict. No root needed.
import test from 'ava';
import {
  ACC_MKNOD,
  ACC_READ,
  ACC_WRITE,
  DEFAULT_RULES,
  TYPE_BLOCK,
  TYPE_CHAR,
  cgroupLines,
  compileProgram,
  deviceMounts,
  deviceRules,
  devicesCheck,
  hostDeviceFacts,
  parseDevice,
  planDevices,
  resolveDevice,
  v1Lines,
  v2Lines,
  verdict,
  type Device,
  type DeviceRule,
} from '../../src/kernel/devices.js';
import { lit, q } from '../../src/plan/sh.js';
import { decode, run, structuralProblems } from './ebpf.js';

const R = ACC_READ,
  W = ACC_WRITE,
  M = ACC_MKNOD;
const B = TYPE_BLOCK,
  C = TYPE_CHAR;

test('--device as docker reads it', (t) => {
  const cases: [string, { host: string; path: string; access: string }][] = [
    ['/dev/sdb', { host: '/dev/sdb', path: '/dev/sdb', access: 'rwm' }],
    ['/dev/sdb:/dev/xvdb', { host: '/dev/sdb', path: '/dev/xvdb', access: 'rwm' }],
    ['/dev/sdb:r', { host: '/dev/sdb', path: '/dev/sdb', access: 'r' }],
    ['/dev/sdb:mr', { host: '/dev/sdb', path: '/dev/sdb', access: 'mr' }],
    ['/dev/sdb:/dev/disks/xvdb:rw', { host: '/dev/sdb', path: '/dev/disks/xvdb', access: 'rw' }],
    ['/dev/disk/by-id/x:/dev/x', { host: '/dev/disk/by-id/x', path: '/dev/x', access: 'rwm' }],
  ];
  for (const [arg, want] of cases) t.deepEqual(parseDevice(arg), want, arg);
});

test('--device refuses what it cannot do safely', (t) => {
  for (const arg of [
    'sdb',
    '/dev/sdb:/etc/sdb',
    '/dev/sdb:/dev/pts/9',
    '/dev/sdb:/dev/shm/x',
    '/dev/sdb:/dev/',
    '/dev/sdb:/dev',
    '/dev/sdb:/dev/../etc/x',
    '/dev/sdb:/dev/a//b',
    '/dev/sdb:/dev/xvdb:rwx',
    '/dev/sdb:/dev/xvdb:rr',
    '/dev/sdb::r',
    'a:b:c:d',
    '/dev/sdb:/dev/a b',
    '/dev/sdb:/dev/a"b',
    '/dev/sdb:/dev/$x',
    '/dev/sdb:/dev/x\n',
  ])
    t.throws(() => parseDevice(arg), undefined, JSON.stringify(arg));
});

test('--device must name a character or block device on the host', (t) => {
  const req = parseDevice('/dev/sdb:/dev/xvdb:r');
  t.throws(() => resolveDevice(req, undefined), { message: /no such file/ });
  t.throws(() => resolveDevice(req, { type: 'other', major: 0, minor: 0 }), {
    message: /not a character or block device/,
  });
  t.deepEqual(resolveDevice(req, { type: 'b', major: 8, minor: 16 }), { ...req, type: 'b', major: 8, minor: 16 });
  t.deepEqual(hostDeviceFacts('/dev/null'), { type: 'c', major: 1, minor: 3 });
  t.is(hostDeviceFacts('/')?.type, 'other');
  t.is(hostDeviceFacts('/nonexistent/tscontain'), undefined);
});

const sdb: Device = { host: '/dev/sdb', path: '/dev/disks/xvdb', access: 'r', type: 'b', major: 8, minor: 16 };

test('--device: an empty file in our own layer, the host node bound onto it, and an allow rule last', (t) => {
  const m = deviceMounts([sdb], '/run/tscontain/X/devices');
  t.is(m.layer, '/run/tscontain/X/devices');
  t.deepEqual(m.dirs, ['/run/tscontain/X/devices', '/run/tscontain/X/devices/disks']);
  t.deepEqual(
    m.lines.map((l) => l.text),
    [': > /run/tscontain/X/devices/disks/xvdb'],
  );
  t.deepEqual(m.fstab, ['/dev/sdb /dev/disks/xvdb none bind,nosuid,noexec 0 0']);
  t.deepEqual(deviceMounts([], '/x'), { dirs: [], lines: [], fstab: [] });
  const rules = deviceRules([sdb]);
  t.deepEqual(rules.at(-1), { allow: true, type: 'b', major: 8, minor: 16, access: 'r' });
  t.is(verdict(rules, B, 8, 16, R), 1);
  t.is(verdict(rules, B, 8, 16, R | W), 0);
});

/** Hand-written: what the default list must say (docker's defaults, without the host console). */
const TABLE: [string, number, number, number, number, 0 | 1][] = [
  ['null read', C, 1, 3, R, 1],
  ['null write', C, 1, 3, W, 1],
  ['null rw', C, 1, 3, R | W, 1],
  ['null mknod', C, 1, 3, M, 1],
  ['zero', C, 1, 5, R, 1],
  ['full', C, 1, 7, W, 1],
  ['random', C, 1, 8, R, 1],
  ['urandom', C, 1, 9, R | W, 1],
  ['tty', C, 5, 0, R | W, 1],
  ['ptmx', C, 5, 2, R | W, 1],
  ['pts/0', C, 136, 0, R | W, 1],
  ['pts/4000', C, 136, 4000, R, 1],
  ['mem', C, 1, 1, R, 0],
  ['kmem', C, 1, 2, R, 0],
  ['port', C, 1, 4, W, 0],
  ['kmsg read', C, 1, 11, R, 0],
  ['kmsg mknod', C, 1, 11, M, 1],
  ['console', C, 5, 1, R | W, 0],
  ['tty1', C, 4, 1, W, 0],
  ['fuse', C, 10, 229, R | W, 0],
  ['tun', C, 10, 200, R | W, 0],
  ['pts major 137', C, 137, 0, R, 0],
  ['root disk read', B, 254, 0, R, 0],
  ['root disk write', B, 254, 0, W, 0],
  ['root disk mknod', B, 254, 0, M, 1],
  ['block 1:3 (not null)', B, 1, 3, R, 0],
  ['block mknod + read', B, 8, 0, M | R, 0],
  ['char 1:3 asked rwm', C, 1, 3, R | W | M, 1],
  ['unknown type 0', 0, 1, 3, R, 0],
  ['unknown type 3', 3, 1, 3, R, 0],
];

test('the default rules decide as the table says', (t) => {
  for (const [what, type, major, minor, access, want] of TABLE)
    t.is(verdict(DEFAULT_RULES, type, major, minor, access), want, what);
});

test("the default rules' eBPF program: the same verdicts, and the verifier's structure checks pass", (t) => {
  const prog = compileProgram(DEFAULT_RULES);
  t.deepEqual(structuralProblems(decode(prog)), []);
  for (const [what, type, major, minor, access, want] of TABLE)
    t.is(run(prog, { type, major, minor, access }), want, what);
});

/** A deterministic generator (xorshift32), so a failure can be reproduced. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

function randomRules(r: (n: number) => number): DeviceRule[] {
  const acc = ['r', 'w', 'm', 'rw', 'rm', 'wm', 'rwm'];
  const n = 1 + r(8);
  return Array.from({ length: n }, () => {
    const type = (['a', 'b', 'c', 'c'] as const)[r(4)];
    return {
      allow: r(2) === 1,
      type,
      major: r(3) ? r(4) : undefined,
      minor: r(3) ? r(4) : undefined,
      access: acc[r(acc.length)],
    };
  });
}

test('for random rule lists the program and the rules agree on every request (last match wins)', (t) => {
  const r = rng(0x5eed);
  let checked = 0;
  for (let k = 0; k < 150; k++) {
    const rules = randomRules(r);
    const prog = compileProgram(rules);
    t.deepEqual(structuralProblems(decode(prog)), [], JSON.stringify(rules));
    for (const type of [B, C])
      for (let major = 0; major < 5; major++)
        for (let minor = 0; minor < 5; minor++)
          for (let access = 1; access < 8; access++) {
            const want = verdict(rules, type, major, minor, access);
            if (run(prog, { type, major, minor, access }) !== want)
              return t.fail(`${JSON.stringify(rules)}: ${type} ${major}:${minor} ${access} should be ${want}`);
            checked++;
          }
  }
  t.is(checked, 150 * 2 * 5 * 5 * 7);
});

test('last match wins, allow needs every bit, deny any bit', (t) => {
  const rules: DeviceRule[] = [
    { allow: false, type: 'a', access: 'rwm' },
    { allow: true, type: 'c', major: 1, access: 'rwm' },
    { allow: false, type: 'c', major: 1, minor: 3, access: 'w' },
  ];
  const prog = compileProgram(rules);
  const both = (type: number, major: number, minor: number, access: number) => [
    verdict(rules, type, major, minor, access),
    run(prog, { type, major, minor, access }),
  ];
  t.deepEqual(both(C, 1, 3, R), [1, 1]);
  t.deepEqual(both(C, 1, 3, R | W), [0, 0]); // the deny covers w
  t.deepEqual(both(C, 1, 5, R | W), [1, 1]);
  t.deepEqual(both(C, 2, 5, R), [0, 0]);
});

test('a catch-all rule ends the program: nothing unreachable after it, nothing before it', (t) => {
  const deny = decode(
    compileProgram([
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: false, type: 'a', access: 'rwm' },
    ]),
  );
  t.is(deny.length, 6 + 2); // prologue, then r0 = 0; exit
  t.deepEqual(structuralProblems(deny), []);
  const none = compileProgram([]);
  t.is(run(none, { type: C, major: 1, minor: 3, access: R }), 0);
  t.throws(() => compileProgram([{ allow: true, type: 'c', major: -1, access: 'r' }]));
  t.throws(() => compileProgram([{ allow: true, type: 'c', major: 1, access: 'x' }]));
});

test('cgroup v1: deny all, then one write per rule', (t) => {
  const lines = v1Lines(deviceRules([sdb]), lit('"$tsc_cg_devices"')).map((l) => l.text);
  t.deepEqual(lines, [
    'echo a > "$tsc_cg_devices"/devices.deny',
    'echo \'c *:* m\' > "$tsc_cg_devices"/devices.allow',
    'echo \'b *:* m\' > "$tsc_cg_devices"/devices.allow',
    'echo \'c 1:3 rwm\' > "$tsc_cg_devices"/devices.allow',
    'echo \'c 1:5 rwm\' > "$tsc_cg_devices"/devices.allow',
    'echo \'c 1:7 rwm\' > "$tsc_cg_devices"/devices.allow',
    'echo \'c 1:8 rwm\' > "$tsc_cg_devices"/devices.allow',
    'echo \'c 1:9 rwm\' > "$tsc_cg_devices"/devices.allow',
    'echo \'c 5:0 rwm\' > "$tsc_cg_devices"/devices.allow',
    'echo \'c 5:2 rwm\' > "$tsc_cg_devices"/devices.allow',
    'echo \'c 136:* rwm\' > "$tsc_cg_devices"/devices.allow',
    'echo \'b 8:16 r\' > "$tsc_cg_devices"/devices.allow',
  ]);
  t.deepEqual(
    v1Lines(deviceRules([], { privileged: true }), '/x').map((l) => l.text),
    ['echo a > /x/devices.allow'],
  );
  t.throws(() => v1Lines([{ allow: true, type: 'c', major: 1, minor: 3, access: 'r' }], '/x'));
  t.throws(() => v1Lines([...DEFAULT_RULES, { allow: true, type: 'a', access: 'rwm' }], '/x'));
});

test('cgroup v2: one perl run with the constant loader, the directory and the bytecode as arguments', (t) => {
  const [line] = v2Lines(DEFAULT_RULES, '/sys/fs/cgroup/tscontain/x y', '/usr/bin/perl');
  const hex = Buffer.from(compileProgram(DEFAULT_RULES)).toString('hex');
  t.true(line.text.startsWith("/usr/bin/perl -e '# devices-attach.pl"));
  t.true(line.text.endsWith(` -- '/sys/fs/cgroup/tscontain/x y' ${q(hex)}`)); // long: folded as q folds it
});

test("the plan's lines: none for --privileged (a new cgroup allows every device), else v1 or v2", (t) => {
  const cg = (version: 1 | 2) => ({ version, dir: '/cg', perl: '/usr/bin/perl' });
  t.deepEqual(cgroupLines(planDevices([], '/l', { privileged: true }), cg(1)), []);
  t.deepEqual(cgroupLines(planDevices([], '/l', { privileged: true }), cg(2)), []);
  t.is(cgroupLines(planDevices([sdb], '/l'), cg(1)).length, 1 + DEFAULT_RULES.length);
  t.is(cgroupLines(planDevices([sdb], '/l'), cg(2)).length, 1);
});

test('doctor: v1 needs the devices hierarchy, v2 needs perl', (t) => {
  t.is(devicesCheck({ version: 1, v1Devices: true }).status, 'ok');
  t.is(devicesCheck({ version: 1, v1Devices: false }).status, 'fail');
  t.is(devicesCheck({ version: 2, v1Devices: false, perl: '/usr/bin/perl' }).status, 'ok');
  t.is(devicesCheck({ version: 2, v1Devices: true }).status, 'fail');
});
