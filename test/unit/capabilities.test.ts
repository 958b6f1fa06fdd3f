// Capability masks, --cap-add/--cap-drop/--privileged, --security-opt and become.pl's argv, as
// data. become.pl itself runs here only for what it refuses before touching anything (no root).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  allCaps,
  becomeArgv,
  becomeChecks,
  becomeOptions,
  BECOME_PL,
  CAPABILITIES,
  capabilityMask,
  capHex,
  capNames,
  DEFAULT_CAPS,
  maskOf,
  parseCapName,
  parseSecurityOpts,
  statusMask,
  type BecomeSpec,
} from '../../src/kernel/capabilities.js';
import { TscError } from '../../src/errors.js';
import type { DoctorEnv } from '../../src/host/doctor.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

test.after.always(removeTempDirs);

test("docker's default set is CapEff 00000000a80425fb", (t) => {
  t.is(capHex(DEFAULT_CAPS), '00000000a80425fb');
  t.is(capNames(DEFAULT_CAPS).length, 14);
});

test('the numbers are those of linux/capability.h', (t) => {
  const h = '/usr/include/linux/capability.h';
  if (!existsSync(h)) return t.pass('no kernel headers here');
  const defs = [...readFileSync(h, 'utf8').matchAll(/^#define CAP_([A-Z_]+)\s+(\d+)\s*$/gm)].filter(
    ([, n]) => n !== 'LAST_CAP',
  );
  for (const [, name, num] of defs) t.is(CAPABILITIES[Number(num)], name as never, `CAP_${name}`);
  t.is(defs.length, CAPABILITIES.length);
});

test("allCaps follows the kernel's last capability", (t) => {
  t.is(capHex(allCaps()), '000001ffffffffff');
  t.is(capHex(allCaps(37)), '0000003fffffffff');
});

test('capability names: with or without CAP_, any case, ALL; unknown names are one-line errors', (t) => {
  for (const [i, n] of CAPABILITIES.entries()) {
    t.is(parseCapName(n, '--cap-add'), n);
    t.is(parseCapName(`cap_${n.toLowerCase()}`, '--cap-add'), n);
    t.is(maskOf([parseCapName(`Cap_${n}`, '--cap-add') as never]), 1n << BigInt(i));
  }
  t.is(parseCapName('all', '--cap-drop'), 'ALL');
  t.is(parseCapName('CAP_ALL', '--cap-drop'), 'ALL');
  const e = t.throws(() => parseCapName('NET_ADMINS', '--cap-add'), { instanceOf: TscError });
  t.is(e.message, 'unknown capability "NET_ADMINS" in --cap-add');
  t.notRegex(`${e.message}${(e as TscError).hint}`, /\n/);
});

const caps = (o: Parameters<typeof capabilityMask>[0]) => capNames(capabilityMask(o));
test('--cap-add, --cap-drop and --privileged combine as in docker', (t) => {
  t.is(capabilityMask({}), DEFAULT_CAPS);
  t.deepEqual(caps({ capDrop: ['ALL'] }), []);
  t.deepEqual(caps({ capDrop: ['all'], capAdd: ['net_bind_service', 'CAP_CHOWN'] }), ['CHOWN', 'NET_BIND_SERVICE']);
  t.is(capabilityMask({ capAdd: ['ALL'] }), allCaps());
  t.is(capabilityMask({ capAdd: ['ALL'], capDrop: ['SYS_ADMIN'] }), allCaps() & ~(1n << 21n));
  const tweaked = (DEFAULT_CAPS | (1n << 21n)) & ~((1n << 27n) | (1n << 13n));
  t.is(capabilityMask({ capAdd: ['SYS_ADMIN'], capDrop: ['MKNOD', 'NET_RAW'] }), tweaked);
  t.is(capabilityMask({ capAdd: ['CHOWN'], capDrop: ['CHOWN'] }), DEFAULT_CAPS, 'added after dropping: kept');
  t.is(capabilityMask({ privileged: true, capDrop: ['ALL'] }), allCaps(), '--privileged wins');
  t.is(capabilityMask({ privileged: true }, allCaps(37)), allCaps(37));
  t.is(capabilityMask({ capAdd: ['CHECKPOINT_RESTORE'] }, allCaps(37)), DEFAULT_CAPS, 'unknown to this kernel');
  t.throws(() => capabilityMask({ privileged: true, capAdd: ['BOGUS'] }), {
    message: /unknown capability "BOGUS" in --cap-add/,
  });
  t.throws(() => capabilityMask({ capDrop: [''] }), { message: /unknown capability "" in --cap-drop/ });
});

test('statusMask reads the masks of /proc/PID/status', (t) => {
  const s = 'Name:\tsh\nCapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\nCapBnd:\t000001ffffffffff\n';
  t.is(statusMask(s, 'CapEff'), DEFAULT_CAPS);
  t.is(statusMask(s, 'CapBnd'), allCaps());
  t.is(statusMask(s, 'CapInh'), 0n);
  t.is(statusMask(s, 'CapAmb'), undefined);
});

test("--security-opt: docker's forms", (t) => {
  const def = { noNewPrivileges: false, seccomp: { mode: 'default' }, systemPaths: 'default' };
  t.deepEqual(parseSecurityOpts([]), def);
  t.true(parseSecurityOpts(['no-new-privileges']).noNewPrivileges);
  t.true(parseSecurityOpts(['no-new-privileges=true']).noNewPrivileges);
  t.true(parseSecurityOpts(['no-new-privileges:1']).noNewPrivileges);
  t.false(parseSecurityOpts(['no-new-privileges', 'no-new-privileges=false']).noNewPrivileges);
  t.deepEqual(parseSecurityOpts(['seccomp=unconfined']).seccomp, { mode: 'unconfined' });
  t.deepEqual(parseSecurityOpts(['seccomp:unconfined']).seccomp, { mode: 'unconfined' });
  t.deepEqual(parseSecurityOpts(['seccomp=unconfined', 'seccomp=builtin']).seccomp, { mode: 'default' });
  t.deepEqual(parseSecurityOpts(['seccomp=/etc/p=x:y.json']).seccomp, { mode: 'file', path: '/etc/p=x:y.json' });
  t.is(parseSecurityOpts(['systempaths=unconfined']).systemPaths, 'unconfined');
  t.deepEqual(parseSecurityOpts(['apparmor=unconfined', 'label=disable', 'label:disable']), def);
  const bad = [
    'seccomp',
    'seccomp=',
    'no-new-privileges=yes',
    'apparmor=docker-default',
    'label=type:x',
    'nosuch=1',
    'systempaths=x',
    '',
  ];
  for (const b of bad)
    t.throws(() => parseSecurityOpts([b]), {
      instanceOf: TscError,
      message: `invalid --security-opt ${JSON.stringify(b)}`,
    });
});

const full: BecomeSpec = {
  caps: DEFAULT_CAPS,
  uid: 1000,
  gid: 100,
  groups: [10, 20],
  cgroupns: true,
  tty: '/dev/pts/0',
  noNewPrivileges: true,
  seccompFile: './run/tscontain/x/seccomp.bpf',
  seccompFlags: 2,
  workdir: '/home/a b',
  preserveFds: 2,
  env: ['PATH=/usr/bin:/bin', 'X=a b\n$(c)'],
};

test('become argv: one word per value, in a fixed order, ending with -- and the command', (t) => {
  t.deepEqual(becomeArgv(full, ['sh', '-c', 'echo $0', '--caps']), [
    '--caps',
    '00000000a80425fb',
    '--uid',
    '1000',
    '--gid',
    '100',
    '--groups',
    '10,20',
    '--cgroupns',
    '--tty',
    '/dev/pts/0',
    '--nnp',
    '--seccomp',
    './run/tscontain/x/seccomp.bpf',
    '--seccomp-flags',
    '2',
    '--wd',
    '/home/a b',
    '--preserve-fds',
    '2',
    '--env',
    'PATH=/usr/bin:/bin',
    '--env',
    'X=a b\n$(c)',
    '--',
    'sh',
    '-c',
    'echo $0',
    '--caps',
  ]);
  t.deepEqual(becomeOptions({ caps: 0n, workdir: '/', env: [] }), ['--caps', '0000000000000000', '--wd', '/', '--']);
  t.deepEqual(becomeOptions({ caps: 0n, uid: 0, gid: 0, groups: [], workdir: '/', env: [] }), [
    '--caps',
    '0000000000000000',
    '--uid',
    '0',
    '--gid',
    '0',
    '--wd',
    '/',
    '--',
  ]);
});

test('become argv: what become.pl would refuse is refused here first', (t) => {
  const base: BecomeSpec = { caps: DEFAULT_CAPS, workdir: '/', env: [] };
  t.throws(() => becomeOptions({ ...base, workdir: 'rel' }), { message: /not absolute/ });
  t.throws(() => becomeOptions({ ...base, tty: 'pts/0' }), { message: /not absolute/ });
  t.throws(() => becomeOptions({ ...base, uid: -1 }), { message: /not a valid id/ });
  t.throws(() => becomeOptions({ ...base, gid: 1.5 }), { message: /not a valid id/ });
  t.throws(() => becomeOptions({ ...base, groups: [2 ** 32 - 1] }), { message: /not a valid id/ });
  t.throws(() => becomeOptions({ ...base, caps: 1n << 64n }), { message: /out of range/ });
  t.throws(() => becomeOptions({ ...base, env: ['NOVALUE'] }), { message: /NAME=VALUE/ });
  t.throws(() => becomeOptions({ ...base, env: ['=x'] }), { message: /NAME=VALUE/ });
  t.throws(() => becomeArgv(base, []), { message: /no command/ });
});

// ---- become.pl, for what it checks before it changes anything ----

function perlAt(dir: string) {
  const f = join(dir, 'become.pl');
  writeFileSync(f, BECOME_PL);
  return (args: string[]) => spawnSync('perl', [f, ...args], { encoding: 'utf8', env: {} });
}

test('become.pl is the embedded program (its code: the comment lines go) and compiles with an empty @INC', (t) => {
  const src = readFileSync(new URL('../../../src/kernel/become.pl', import.meta.url), 'utf8');
  const code = (s: string) => s.split('\n').filter((l) => !/^\s*(#|$)/.test(l));
  t.deepEqual(code(BECOME_PL), code(src));
  t.true(BECOME_PL.length < src.length * 0.75, 'the comments are not carried in every plan');
  t.regex(BECOME_PL, /^BEGIN \{ @INC = \(\) \}$/m);
  t.notRegex(BECOME_PL, /^\s*(use|require|no)\s/m, 'no modules, no pragmas');
  const f = join(tempDir('tscontain-become-'), 'become.pl');
  writeFileSync(f, BECOME_PL);
  const r = spawnSync('perl', ['-c', f], { encoding: 'utf8', env: {} });
  t.is(r.status, 0, r.stderr);
});

test('become.pl refuses bad arguments with one line and 125, before any change', (t) => {
  const run = perlAt(tempDir('tscontain-become-'));
  const cases: [string[], RegExp][] = [
    [['--', 'true'], /--caps needs a hexadecimal mask/],
    [['--caps', 'xyz', '--', 'true'], /--caps needs a hexadecimal mask/],
    [['--caps', '11111111111111111', '--', 'true'], /--caps needs a hexadecimal mask/],
    [['--caps', '0', 'true'], /unknown option "true"/],
    [['--caps', '0', '--'], /no command/],
    [['--caps', '0', '--uid', '-1', '--', 'true'], /--uid needs a number/],
    [['--caps', '0', '--uid', '4294967295', '--', 'true'], /--uid needs a number/],
    [['--caps', '0', '--groups', '1,,2', '--', 'true'], /--groups needs numbers/],
    [['--caps', '0', '--wd', 'tmp', '--', 'true'], /--wd needs an absolute path/],
    [['--caps', '0', '--tty', 'dev/pts/0', '--', 'true'], /--tty needs an absolute path/],
    [['--caps', '0', '--caps', '0', '--', 'true'], /--caps is given twice/],
    [['--caps', '0', '--env', 'NOVALUE', '--', 'true'], /--env needs NAME=VALUE/],
    [['--caps', '0', '--bogus\x1b[2J', '--', 'true'], /unknown option "--bogus\\x1b\[2J"/],
    [['--caps', '0', '--seccomp', '/nonexistent/f', '--', 'true'], /cannot open the seccomp filter/],
  ];
  for (const [args, err] of cases) {
    const r = run(args);
    t.is(r.status, 125, args.join(' '));
    t.regex(r.stderr, err);
    t.regex(r.stderr, /^tscontain: [^\n]*\n$/);
  }
  const bad = join(tempDir('tscontain-become-'), 'f.bpf');
  writeFileSync(bad, Buffer.alloc(12));
  t.regex(run(['--caps', '0', '--seccomp', bad, '--', 'true']).stderr, /not a whole number of 8-byte instructions/);
});

// ---- doctor ----

function doctorEnv(status: string | undefined, perl = true): DoctorEnv {
  const proc = tempDir('tscontain-fakeproc-');
  if (status !== undefined) {
    mkdirSync(join(proc, 'self'), { recursive: true });
    writeFileSync(join(proc, 'self', 'status'), status);
  }
  return {
    proc,
    cgroup: '/nonexistent',
    uid: 0,
    which: (c) => (c === 'perl' && perl ? '/usr/bin/perl' : undefined),
    probe: (cmd, args) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8', env: {} });
      return { code: r.status ?? 1, out: r.stdout + r.stderr };
    },
  };
}

test("doctor: perl runs a module-free program; the host's bounding set limits what containers get", (t) => {
  const [perl, capsOk] = becomeChecks(doctorEnv('CapBnd:\t000001fffeffffff\n'), 'x64');
  t.is(perl.status, 'ok');
  t.regex(perl.detail, /perl 5\.\d+/);
  t.is(capsOk.status, 'ok');
  t.regex(capsOk.detail, /not available even with --privileged: SYS_RESOURCE/);
  const [, lacking] = becomeChecks(doctorEnv('CapBnd:\t00000000a00425fb\n'), 'x64');
  t.is(lacking.status, 'warn');
  t.regex(lacking.detail, /lacks MKNOD/);
  const [noPerl, unknown] = becomeChecks(doctorEnv(undefined, false), 'x64');
  t.is(noPerl.status, 'fail');
  t.is(noPerl.fix, 'apt-get install perl-base');
  t.is(unknown.status, 'warn');
  t.is(becomeChecks(doctorEnv(''), 's390x')[0].status, 'fail');
});
