// src/kernel/pty-relay.pl, driven as a person at a terminal would: script(1) gives the caller a real
// pseudo-terminal, keys go in as bytes (Ctrl-C is 0x03, Ctrl-D 0x04), the screen comes out. The
// container is a stand-in (test/fixtures/pty/container.sh: PID 1 of new mount and PID namespaces
// with a devpts instance of its own, waiting at a start gate), not a whole tscontain plan.
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRelay } from '../../src/kernel/pty.js';
import { lit, q, sh } from '../../src/plan/sh.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';
import { BIN, CLEAN_FDS, env as suiteEnv, isRoot, REPO, pidsOf, tsc, waitFor } from './helpers.js';
import { DEADLINE_MS } from '../fixtures/poll.js';

const it = isRoot ? test : test.skip;
const FIX = join(REPO, 'test', 'fixtures', 'pty');
const INIT = join(REPO, 'src', 'kernel', 'init.pl');
const RELAY = join(REPO, 'src', 'kernel', 'pty-relay.pl');
const running = new Set<ChildProcess>();
test.after.always(() => {
  // each runs in a process group of its own (script's session, or detached): caller, relay and
  // unshare go together, and unshare --kill-child takes the container along
  for (const c of running) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  removeTempDirs();
});

type Mode = 'it' | 't' | 'dt';

/** A directory for caller.sh, with the supervisor's lines that start the relay (caller.sh sources them). */
function callerDir(mode: Mode): string {
  const d = tempDir('tscontain-pty-');
  const lines = startRelay(
    { interactive: mode === 'it', detach: mode === 'dt' },
    sh`perl ${RELAY}`,
    lit('"$pid1"'),
    lit('"$d/pts"'),
    5,
  );
  writeFileSync(join(d, 'relay-start.sh'), lines.map((l) => l.text).join('\n') + '\n');
  return d;
}

/** caller.sh on a terminal of its own (script -qec), in MODE, running ARGV in the stand-in container. */
function terminal(mode: Mode, argv: string[]) {
  const d = callerDir(mode);
  const cmd = ['sh', join(FIX, 'caller.sh'), d, mode, ...argv].map(q).join(' ');
  const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  running.add(child);
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const done = new Promise<number>((res) =>
    child.on('close', (code) => {
      running.delete(child);
      res(code ?? -1);
    }),
  );
  const screen = () => out;
  return {
    d,
    screen,
    done,
    type: (keys: string) => child.stdin!.write(keys),
    /** the caller's terminal, as `stty -a` shows it from outside */
    stty: (...args: string[]) =>
      spawnSync('stty', ['-F', readFileSync(join(d, 'caller.path'), 'utf8').trim(), ...args], { encoding: 'utf8' }),
    until: (re: RegExp, ms?: number) => waitFor(screen, re, ms),
  };
}

const marker = () => String(3000 + Math.floor(Math.random() * 90000)); // a number no other test or run shares

it("-it: the container gets its own terminal: tty, size, resize, Ctrl-C, Ctrl-D, exit code; the caller's is restored", async (t) => {
  const term = terminal('it', ['env', 'PS1=ctr$ ', 'sh', '-i']);
  await term.until(/ctr\$ $/);
  const raw = term.stty('-a').stdout;
  t.regex(raw, /-icanon\b/, "the caller's terminal is raw while attached");
  t.regex(raw, /-isig\b/);
  t.regex(raw, /-echo\b/);

  term.type('echo T-$(tty)-T\r');
  await term.until(/T-\/dev\/pts\/0-T/);
  term.type('echo S-$(stty size)-S\r');
  await term.until(/S-24 80-S/);

  // a person resizes the window: the kernel sends SIGWINCH to the caller's foreground group
  t.is(term.stty('rows', '30', 'cols', '100').status, 0);
  let size = '';
  for (let i = 0; i < 20 && size !== '30 100'; i++) {
    term.type(`echo R${i}-$(stty size)-R\r`);
    size = (await term.until(new RegExp(`R${i}-(\\d+ \\d+)-R`)))[1];
  }
  t.is(size, '30 100');

  const n = marker();
  term.type(`sleep ${n}\r`);
  await waitFor(() => (pidsOf('sleep', n).length ? 'up' : ''), /up/);
  term.type('\x03'); // an interactive shell drops the rest of a line whose command Ctrl-C ended: $? on the next
  term.type('echo C-$?-C\r');
  await term.until(/C-130-C/);

  term.type('cat; echo D-$?-D\r');
  term.type('abc\r');
  await term.until(/abc\r\nabc\r\n/); // the terminal's echo, then cat's copy
  term.type('\x04');
  await term.until(/D-0-D/);

  term.type(
    'echo P-$(stat -L -c %d:%i /dev/pts/0)-P; for f in /proc/$$/fd/*; do echo "F-${f##*/}-$(stat -L -c %d:%i $f)-F"; done; echo E-$((40+2))\r',
  );
  await term.until(/E-42/);
  const pts0 = term.screen().match(/P-(\d+:\d+)-P/)![1];
  const fds = [...term.screen().matchAll(/F-(\d+)-([^-\r\n]*)-F/g)].map((m) => ({ fd: Number(m[1]), id: m[2] }));
  const callerId = readFileSync(join(term.d, 'caller.id'), 'utf8').trim();
  t.deepEqual(
    fds.filter((f) => f.fd <= 2).map((f) => f.id),
    [pts0, pts0, pts0],
    "stdin, stdout, stderr: the container's /dev/pts/0",
  );
  t.deepEqual(
    fds.filter((f) => f.id === callerId),
    [],
    "no fd of the caller's terminal inside",
  );

  term.type('exit 7\r');
  await term.done;
  t.regex(term.screen(), /relay-rc=0 container-rc=7/);
  t.is(
    readFileSync(join(term.d, 'stty.after'), 'utf8'),
    readFileSync(join(term.d, 'stty.before'), 'utf8'),
    "the caller's terminal settings are back",
  );
});

it("-t without -i: output only, the caller's terminal is left as it is", async (t) => {
  const term = terminal('t', ['sh', '-c', 'echo T-$(tty)-T; stty size; exit 3']);
  t.is(await term.done, 0);
  t.regex(term.screen(), /T-\/dev\/pts\/0-T/);
  t.regex(term.screen(), /^24 80\r/m);
  t.regex(term.screen(), /relay-rc=0 container-rc=3/);
  t.is(readFileSync(join(term.d, 'stty.after'), 'utf8'), readFileSync(join(term.d, 'stty.before'), 'utf8'));
});

it("-d -t: the output goes to the log; the caller's terminal is neither read nor changed", async (t) => {
  const d0 = tempDir('tscontain-pty-go-');
  const go = join(d0, 'go');
  const term = terminal('dt', [
    'sh',
    '-c',
    `echo T-$(tty)-T; until [ -e ${q(go)} ]; do sleep 0.05; done; echo E-$((40+2))`,
  ]);
  await waitFor(
    () => (existsSync(join(term.d, 'log')) ? readFileSync(join(term.d, 'log'), 'utf8') : ''),
    /T-\/dev\/pts\/0-T/,
  );
  term.type('typed-here\r');
  await term.until(/typed-here/); // echoed by the caller's own terminal: it is not in raw mode
  writeFileSync(go, '');
  await term.until(/caller-read=/, 30000); // had the relay read the line, the caller's read would wait for ever
  await term.done;
  t.regex(term.screen(), /caller-read=typed-here/, 'what was typed is still there for the caller');
  t.regex(term.screen(), /relay-rc=0 container-rc=0/);
  const log = readFileSync(join(term.d, 'log'), 'utf8');
  t.regex(log, /E-42/);
  t.notRegex(log, /typed-here/);
  t.is(readFileSync(join(term.d, 'stty.after'), 'utf8'), readFileSync(join(term.d, 'stty.before'), 'utf8'));
});

it('-i -t with stdin from a pipe: its end reaches the container as VEOF, so cat ends', async (t) => {
  const d = callerDir('it');
  const child = spawn('sh', [join(FIX, 'caller.sh'), d, 'it', 'sh', '-c', 'cat; echo E-$((40+2))'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(child);
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  child.stdin!.end('one\ntwo'); // the last line has no newline: one VEOF delivers it, the next ends the input
  const closed = new Promise((res) => child.on('close', res));
  await waitFor(() => out, /relay-rc=/, 30000); // without the VEOF, cat never ends
  await closed;
  running.delete(child);
  t.regex(out, /two(\r\n)?E-42/);
  t.regex(out, /relay-rc=0 container-rc=0/);
});

it("--init on a terminal: Ctrl-C stops sleep (the command has the terminal's foreground group)", async (t) => {
  const n = marker();
  const term = terminal('it', ['env', '-i', 'perl', INIT, '--env', 'PATH=/usr/bin:/bin', '--', 'sleep', n]);
  await waitFor(() => (pidsOf('sleep', n).length ? 'up' : ''), /up/);
  term.type('\x03');
  await term.done;
  t.regex(term.screen(), /relay-rc=0 container-rc=130/);
});

for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
  it(`-it: the relay ended by ${sig} restores the caller's terminal first`, async (t) => {
    const term = terminal('it', ['env', 'PS1=ctr$ ', 'sh', '-i']);
    await term.until(/ctr\$ $/);
    t.regex(term.stty('-a').stdout, /-icanon\b/);
    process.kill(Number(readFileSync(join(term.d, 'relay.pid'), 'utf8')), sig);
    await term.done; // the container's terminal hung up: its shell ends
    t.regex(term.screen(), new RegExp(`relay-rc=${sig === 'SIGTERM' ? 143 : 129} `));
    t.is(readFileSync(join(term.d, 'stty.after'), 'utf8'), readFileSync(join(term.d, 'stty.before'), 'utf8'));
  });
}

/** The relay alone, for a process that is not a prepared container: its exit code, its report (fd 3), its stderr. */
async function relayFor(pid: number) {
  const child = spawn('perl', [RELAY, '--report-fd', '3', String(pid)], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let report = '',
    err = '';
  child.stdio[3]!.on('data', (b) => (report += b));
  child.stderr!.on('data', (b) => (err += b));
  const code = await new Promise<number | null>((res) => child.on('close', res));
  return { code, report, err };
}

it("the relay refuses the host's devpts: a pty there would not be the container's /dev/pts/N", async (t) => {
  const r = await relayFor(process.pid); // this process: its root is the host's
  t.is(r.code, 1);
  t.is(r.report, '', 'nothing reported: the gate gets an empty line');
  t.regex(r.err, /host's devpts/);
});

it("the relay follows no symlink in the container's tree (it would resolve against the host's root)", async (t) => {
  const root = tempDir('tscontain-pty-root-');
  const decoy = tempDir('tscontain-pty-decoy-');
  mkdirSync(join(decoy, 'pts'));
  spawnSync('mkfifo', [join(decoy, 'pts', 'ptmx')]); // a plain open(2) would open it: O_RDWR on a FIFO does not block
  symlinkSync(decoy, join(root, 'dev')); // absolute: from the host, /proc/PID/root/dev leads to the decoy
  const c = spawn('perl', ['-e', '$| = 1; chroot($ARGV[0]) or die "chroot: $!"; print "in\n"; sleep 1000', root], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  running.add(c);
  let said = '';
  c.stdout!.on('data', (b) => (said += b));
  await waitFor(() => said, /in/);
  const r = await relayFor(c.pid!);
  c.kill('SIGKILL');
  t.is(r.code, 1);
  t.regex(r.err, /symbolic link/);
});

/** `tscontain exec ARGS` on a terminal of its own (script -qec), KEYS typed into it. */
function execOnTerminal(args: string[], keys = '') {
  const cmd = ['sh', CLEAN_FDS, BIN, 'exec', ...args].map(q).join(' ');
  return spawnSync('script', ['-qec', cmd, '/dev/null'], {
    input: keys,
    encoding: 'utf8',
    env: suiteEnv,
    timeout: DEADLINE_MS,
  });
}

it("exec -t and -it: the command gets a terminal of the container's own, never the caller's; its exit code", async (t) => {
  const name = `exec-tty-${process.pid}`;
  const r = await tsc(['run', '-d', '--name', name, 'busybox', 'sleep', marker()]);
  t.is(r.code, 0, r.stderr);
  try {
    // the caller's terminal is a pty of the host's devpts: inside, it would have no name (tty: "not a tty")
    const o = execOnTerminal(['-t', name, 'sh', '-c', 'echo T-$(tty)-T; readlink /proc/self/fd/1; exit 3']);
    t.regex(o.stdout, /T-\/dev\/pts\/[0-9]+-T/, o.stdout + o.stderr);
    t.regex(o.stdout, /^\/dev\/pts\/[0-9]+\r?$/m, 'stdout is that terminal');
    t.is(o.status, 3, "the command's exit code");
    const i = execOnTerminal(['-it', name, 'sh'], 'echo hi-$((6*7))\nexit 5\n');
    t.regex(i.stdout, /hi-42/, i.stdout + i.stderr);
    t.is(i.status, 5);
  } finally {
    await tsc(['rm', '-f', name]);
  }
});
