// doctor against fake /proc and cgroupfs trees: a v1 machine, a v2 machine and a broken one.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checks, canRun, render, type DoctorEnv } from '../../src/host/doctor.js';
import { fakeCgroupV1, fakeCgroupV2 } from './helpers.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

function fakeProc(
  ns = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts'],
  fs = ['sysfs', 'tmpfs', 'proc', 'devpts', 'overlay'],
): string {
  const p = tempDir('tscontain-fakeproc-');
  mkdirSync(join(p, 'self', 'ns'), { recursive: true });
  for (const n of ns) writeFileSync(join(p, 'self', 'ns', n), '');
  writeFileSync(join(p, 'filesystems'), fs.map((f) => `nodev\t${f}`).join('\n') + '\n');
  mkdirSync(join(p, 'sys', 'net', 'ipv4'), { recursive: true });
  writeFileSync(join(p, 'sys', 'net', 'ipv4', 'ip_forward'), '0\n');
  return p;
}

const ALL = new Set([
  'unshare',
  'mount',
  'pivot_root',
  'setpriv',
  'nsenter',
  'env',
  'cp',
  'find',
  'ip',
  'apt-get',
  'dpkg-deb',
  'perl',
  'nft',
  'flock',
]);
function env(over: Partial<DoctorEnv> = {}): DoctorEnv {
  return {
    proc: fakeProc(),
    cgroup: fakeCgroupV1(),
    uid: 0,
    which: (c) => (ALL.has(c) ? `/usr/bin/${c}` : undefined),
    probe: (_cmd, args) =>
      args[0] === '--version'
        ? { code: 0, out: 'unshare from util-linux 2.38.1' }
        : args[0] === '-e'
          ? { code: 0, out: '5.036000\n' }
          : { code: 0, out: '' },
    ...over,
  };
}
const find = (cs: ReturnType<typeof checks>, what: string) => cs.find((c) => c.what === what)!;

test('a v1 (hybrid) machine can run containers; the util-linux quirks are named', (t) => {
  const cs = checks(env());
  t.true(canRun(cs));
  t.regex(find(cs, 'cgroups').detail, /^v1; hierarchies: memory pids cpu cpuacct/);
  t.regex(find(cs, 'util-linux').detail, /forwards no signals/);
  t.is(find(cs, 'namespace net').status, 'ok');
  t.regex(render(cs), /tscontain run can work here/);
});

test('a v2 machine: controllers read from cgroup.subtree_control', (t) => {
  const cs = checks(env({ cgroup: fakeCgroupV2() }));
  t.true(canRun(cs));
  t.regex(find(cs, 'cgroups').detail, /^v2 \(unified\).*cpu memory pids/);
  const c2 = find(checks(env({ cgroup: fakeCgroupV2('cpu memory pids', 'cpu') })), 'cgroups');
  t.is(c2.status, 'warn');
  t.regex(c2.fix!, /echo "\+memory \+pids" > .*cgroup.subtree_control/);
});

test('a broken machine: no root, no overlay, no ip, a namespace that fails, no cgroups', (t) => {
  const cs = checks(
    env({
      uid: 1000,
      proc: fakeProc(['ipc', 'mnt', 'pid', 'uts'], ['proc', 'sysfs', 'tmpfs', 'devpts']),
      cgroup: '/nonexistent/cgroup',
      which: (c) => (ALL.has(c) && c !== 'ip' ? `/usr/bin/${c}` : undefined),
    }),
  );
  t.false(canRun(cs));
  t.is(find(cs, 'root').status, 'fail');
  t.is(find(cs, 'filesystem overlay').status, 'fail');
  t.regex(find(cs, 'programs').fix!, /apt-get install iproute2/);
  t.is(find(cs, 'namespace net').status, 'fail');
  t.is(find(cs, 'namespace user').status, 'warn', 'not needed yet');
  t.is(find(cs, 'cgroups').status, 'fail');
  t.regex(render(cs), /cannot work here/);
});

test('a namespace unshare refuses is a failure with the reason', (t) => {
  const cs = checks(
    env({
      probe: (_cmd, args) =>
        args[0] === '--version'
          ? { code: 0, out: '2.38.1' }
          : args[0] === '--net'
            ? { code: 1, out: 'unshare: unshare failed: Operation not permitted' }
            : { code: 0, out: '' },
    }),
  );
  const net = find(cs, 'namespace net');
  t.is(net.status, 'fail');
  t.regex(net.detail, /Operation not permitted/);
  t.false(canRun(cs));
});

test('old util-linux fails', (t) => {
  const cs = checks(env({ probe: () => ({ code: 0, out: 'unshare from util-linux 2.33.1' }) }));
  t.is(find(cs, 'util-linux').status, 'fail');
});

test.after.always(removeTempDirs);
