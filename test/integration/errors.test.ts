// Bad input: one clear line, the right exit code, nothing left on the host.
import test from 'ava';
import { existsSync, readdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { isRoot, tsc, env, BIN, privateStore, removeStoreContainers } from './helpers.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

const it = isRoot ? test : test.skip;
test.after.always(removeStoreContainers);
const entries = (d: string) => (existsSync(d) ? readdirSync(d) : []);

const cases: [string, string[], number, RegExp][] = [
  ['missing rootfs', ['run', '/nonexistent/rootfs', 'sh'], 125, /rootfs \/nonexistent\/rootfs not found: give a path/],
  ['unknown image', ['run', 'nosuchimage', 'sh'], 125, /image nosuchimage not found: build it/],
  [
    'command missing from the rootfs',
    ['run', 'busybox', 'nosuchcmd'],
    127,
    /exec: "nosuchcmd": executable file not found in \$PATH/,
  ],
  ['command not executable', ['run', 'busybox', '/etc/passwd'], 126, /exec: "\/etc\/passwd": permission denied/],
  ['unknown option', ['run', '--frobnicate', 'busybox'], 125, /unknown option --frobnicate: see tscontain run --help/],
  [
    'bad memory size',
    ['run', '-m', '12q', 'busybox', 'true'],
    125,
    /invalid memory size "12q": use a number with an optional unit/,
  ],
  ['negative cpus', ['run', '--cpus', '-1', 'busybox', 'true'], 125, /invalid --cpus "-1"/],
  ['zero pids limit', ['run', '--pids-limit', '0', 'busybox', 'true'], 125, /invalid --pids-limit "0"/],
  ['no image', ['run'], 125, /no image given/],
  ['unknown command', ['frobnicate'], 125, /unknown command: frobnicate: see tscontain --help/],
  ['a port out of range', ['run', '-p', '70000:80', 'busybox', 'true'], 125, /-p|port/],
  ['a port that is no number', ['run', '-p', 'abc', 'busybox', 'true'], 125, /-p|port/],
  [
    'joining a container that does not exist',
    ['run', '--network', 'container:missing', 'busybox', 'true'],
    125,
    /no such container: missing/,
  ],
  ['a resolver that is no address', ['run', '--dns', 'not-an-ip', 'busybox', 'true'], 125, /--dns|not-an-ip/],
  [
    'an unknown capability',
    ['run', '--cap-add', 'FLY', 'busybox', 'true'],
    125,
    /unknown capability "FLY" in --cap-add/,
  ],
  [
    'a seccomp profile that is not there',
    ['run', '--security-opt', 'seccomp=/nonexistent.json', 'busybox', 'true'],
    125,
    /seccomp profile \/nonexistent\.json/,
  ],
];

for (const [what, args, code, re] of cases) {
  it(`bad input: ${what}`, async (t) => {
    const store = privateStore();
    const r = await tsc(args, { env: store });
    t.is(r.code, code);
    t.regex(r.stderr, re);
    t.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    t.notRegex(r.stderr, /at .*\.c?js:\d+/, 'no stack trace');
    t.deepEqual(
      [...entries(join(store.TSCONTAIN_ROOT!, 'run')), ...entries(join(store.TSCONTAIN_ROOT!, 'lib', 'containers'))],
      [],
      'nothing created',
    );
  });
}

it('bad input: not running as root', (t) => {
  const r = spawnSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', BIN, 'run', '--rm', '/', 'true'],
    { env: { ...env, TSCONTAIN_ROOT: tempDir('tscontain-nonroot-') } },
  );
  t.is(r.status, 125);
  t.regex(r.stderr.toString(), /tscontain run needs root .*: run it as root, e.g. with sudo/);
});

it('--debug shows a stack trace', async (t) => {
  const r = await tsc(['run', '--debug', '-m', '12q', 'busybox']);
  t.is(r.code, 125);
  t.regex(r.stderr, /at .*\.c?js:\d+/);
});

it('a rootfs that is not a directory', async (t) => {
  const d = tempDir('tscontain-notdir-');
  mkdirSync(join(d, 'x'));
  const r = await tsc(['run', join(d, 'x'), 'sh']);
  t.is(r.code, 127, 'an empty directory has no sh');
  t.regex(r.stderr, /executable file not found/);
});

test.after.always(removeTempDirs);

test('--version and version print the package version; no command is one clear line', async (t) => {
  const { version } = JSON.parse((await import('node:fs')).readFileSync(join(BIN, '..', '..', 'package.json'), 'utf8'));
  for (const a of ['--version', 'version']) {
    const r = await tsc([a]);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `tscontain version ${version}\n`);
  }
  const none = await tsc([]);
  t.is(none.code, 125);
  t.is(none.stderr, 'tscontain: no command given: see tscontain --help\n');
});
