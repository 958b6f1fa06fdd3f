// src/kernel/pty.ts fragments, and the rules init.pl must keep (docs/containment.md). No root needed.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernel_init_pl, kernel_pty_relay_pl } from '../../src/gen/assets.js';
import { initArgs, relayFlags, startRelay, waitRelay } from '../../src/kernel/pty.js';
import { lit, sh } from '../../src/plan/sh.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

test.after.always(() => removeTempDirs());

test('relay flags: -i relays stdin, -d never touches a terminal, -t alone only copies output', (t) => {
  t.deepEqual(relayFlags({ interactive: true, detach: false }), ['--stdin']);
  t.deepEqual(relayFlags({ interactive: false, detach: false }), []);
  t.deepEqual(relayFlags({ interactive: true, detach: true }), ['--detach']);
});

test('startRelay: stdin from the given fd only with -i, the path read from the FIFO; the lines parse', (t) => {
  const relay = sh`/usr/bin/perl ${'/run/tscontain/x y/pty-relay.pl'}`;
  const it = startRelay({ interactive: true, detach: false }, relay, lit('"$tsc_pid1"'), lit('"$tsc_run/pts"'), 5).map(
    (l) => l.text,
  );
  t.true(
    it[1].startsWith(
      `/usr/bin/perl '/run/tscontain/x y/pty-relay.pl' --stdin --report-fd 6 "$tsc_pid1" <&5 6>"$tsc_run/pts" &`,
    ),
    it[1],
  );
  const d = startRelay({ interactive: true, detach: true }, relay, lit('"$tsc_pid1"'), lit('"$tsc_run/pts"'), 5).map(
    (l) => l.text,
  );
  t.regex(d[1], / --detach --report-fd 6 "\$tsc_pid1" <\/dev\/null /);
  const f = join(tempDir('tscontain-pty-'), 'lines.sh');
  writeFileSync(f, [...it, ...waitRelay.map((l) => l.text)].join('\n') + '\n');
  execFileSync('/bin/sh', ['-n', f]);
});

test('startRelay: only a /dev/pts/N path passes the check', (t) => {
  const check = startRelay({ interactive: false, detach: false }, lit('true'), lit('1'), lit('f'), 5).at(-1)!.text;
  const run = (v: string) =>
    execFileSync('/bin/sh', ['-c', `tsc_pts=$1\n${check}\nprintf %s "$tsc_pts"`, 'sh', v], { encoding: 'utf8' });
  t.is(run('/dev/pts/0'), '/dev/pts/0');
  t.is(run('/dev/pts/17'), '/dev/pts/17');
  for (const bad of [
    '',
    '/dev/pts/',
    '/dev/pts/ptmx',
    '/etc/passwd',
    '/dev/pts/../../etc/shadow',
    '/dev/pts/1/../../etc/shadow',
    '/dev/pts/1x',
    '/dev/pts/01',
    'x/dev/pts/1',
  ])
    t.is(run(bad), '', bad);
});

test('initArgs: environment and directory as arguments, the command after --', (t) => {
  t.deepEqual(initArgs({ workdir: '/srv', env: ['PATH=/bin', 'A=x=y'], argv: ['sleep', '30'] }), [
    '--wd',
    '/srv',
    '--env',
    'PATH=/bin',
    '--env',
    'A=x=y',
    '--',
    'sleep',
    '30',
  ]);
  t.throws(() => initArgs({ workdir: '/', env: ['NOEQUALS'], argv: ['true'] }));
  t.throws(() => initArgs({ workdir: '/', env: [], argv: [] }));
});

test("init.pl loads no module and changes to the container's root before anything else", (t) => {
  const code = kernel_init_pl.split('\n').filter((l) => !/^\s*(#|$)/.test(l));
  t.deepEqual(
    code.filter((l) => /^\s*(use|no|require|do)\b|\bBEGIN\b/.test(l)),
    [],
    "a use or BEGIN would run while the cwd is the host's root",
  );
  t.regex(code[0], /^chdir\('\/'\) or die/);
});

test('both programs compile with perl -c', (t) => {
  for (const [name, text] of [
    ['pty-relay.pl', kernel_pty_relay_pl],
    ['init.pl', kernel_init_pl],
  ]) {
    const f = join(tempDir('tscontain-pl-'), name);
    writeFileSync(f, text);
    const r = spawnSync('perl', ['-c', f], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
  }
});
