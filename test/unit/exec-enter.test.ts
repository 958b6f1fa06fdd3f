// `tscontain exec`'s first program (src/kernel/exec-enter.pl) and the argv around it, as data. The
// program itself runs here only for what it refuses before touching anything, or with nothing to
// open (no root); test/integration/exec-enter.test.ts runs it as root.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { enterArgv, FIRST_FD, readOnlyFd } from '../../src/kernel/exec-enter.js';
import { execArgv } from '../../src/runtime/lifecycle.js';

const tools = {
  nsenter: '/usr/bin/nsenter',
  perl: '/usr/bin/perl',
  ldso: '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
  libPath: ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu'],
};

test('enterArgv: perl runs the program; cgroups to join, then the read-only paths in order, then the command', (t) => {
  const a = enterArgv({ perl: '/usr/bin/perl', cgroups: ['/cg/a', '/cg/b'], readOnly: ['/x', '/y'] }, ['cmd', '--ro']);
  t.is(a[0], '/usr/bin/perl');
  t.is(a[1], '-e');
  t.regex(a[2], /exec-enter\.pl/);
  t.deepEqual(a.slice(3), [
    '--',
    '--join',
    '/cg/a/cgroup.procs',
    '--join',
    '/cg/b/cgroup.procs',
    '--ro',
    '/x',
    '--ro',
    '/y',
    '--',
    'cmd',
    '--ro',
  ]);
  t.is(FIRST_FD, 3);
  t.is(readOnlyFd(1), '/proc/self/fd/4');
});

test("execArgv: the loader, perl and the library directories are exec-enter.pl's read-only fds", (t) => {
  const a = execArgv(
    4242,
    ['/sys/fs/cgroup/pids/tscontain/abc'],
    { env: [], workdir: '/', cmd: ['/tmp/x'] },
    { caps: 0n, noNewPrivileges: false },
    tools,
  );
  t.is(a[0], tools.perl, 'the first program is exec-enter.pl, not sh with fds opened by Node.js');
  const dd = a.indexOf('--', 4);
  t.deepEqual(a.slice(4, dd), [
    '--join',
    '/sys/fs/cgroup/pids/tscontain/abc/cgroup.procs',
    '--ro',
    tools.ldso,
    '--ro',
    tools.perl,
    '--ro',
    tools.libPath[0],
    '--ro',
    tools.libPath[1],
  ]);
  t.is(a[dd + 1], tools.nsenter);
  const prog = a.indexOf('--', dd + 2);
  t.deepEqual(a.slice(prog + 1, prog + 6), [
    '/proc/self/fd/3',
    '--library-path',
    '/proc/self/fd/5:/proc/self/fd/6',
    '/proc/self/fd/4',
    '-e',
  ]);
  t.deepEqual(a.slice(-1), ['/tmp/x']);
});

const enter = (args: string[]) =>
  spawnSync('perl', ['-e', enterArgv({ perl: '', cgroups: [], readOnly: [] }, [])[2], '--', ...args], {
    encoding: 'utf8',
    env: {},
  });

test('exec-enter.pl refuses what it does not know before touching anything', (t) => {
  for (const [args, msg] of [
    [['--bogus', '/x', '--', 'true'], /unknown option --bogus/],
    [['--ro', 'relative', '--', 'true'], /--ro needs an absolute path/],
    [['--join', '/x'], /no command/],
    [['--ro'], /unknown option --ro/],
  ] as const) {
    const r = enter([...args]);
    t.is(r.status, 125, r.stderr);
    t.regex(r.stderr, msg);
  }
});

test('exec-enter.pl with nothing to open or join execs the command, with its status as docker gives it', (t) => {
  t.is(enter(['--', 'sh', '-c', 'exit 7']).status, 7);
  t.is(enter(['--', '/nonexistent/tscontain-command']).status, 127);
  t.is(enter(['--', '/dev/null']).status, 126);
});
