// Hostile text in argv, env, workdir and an image's config reaches a real container as exactly
// that data, and nothing it spells runs anywhere: not on the host (a canary file would appear in
// the host's /tmp), not in PID 1 before or after the root switch (the container lists its /tmp).
import test from 'ava';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { env as suiteEnv, isRoot, privateStore, removeStoreContainers, tsc } from './helpers.js';
import { cases } from '../fixtures/poll.js';
import { ociLayout } from '../fixtures/tarball.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';

const it = isRoot ? test.serial : test.skip;
test.after.always(removeStoreContainers);
test.after.always(removeTempDirs);

const CANARY = '/tmp/tscontain-canary';
const PIECES = [
  '\n',
  '\r',
  "'",
  '"',
  '`',
  ';',
  '&',
  '|',
  '\\',
  '*',
  '~',
  '-',
  '#',
  ' ',
  '$',
  '{',
  '}',
  'é',
  '\u001b[2J',
  `$(touch ${CANARY})`,
  `\`touch ${CANARY}\``,
  `;touch ${CANARY};`,
  `\ntouch ${CANARY} #`,
  `'\ntouch ${CANARY}\n'`,
];
const hostile = fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 8 }).map((a) => a.join(''));

/** Inside: argv, \1, the environment sh was started with, \1, cwd, hostname, what is in /tmp. */
const DUMP =
  'for a; do printf "%s\\0" "$a"; done; printf "\\1"; cat /proc/$$/environ; printf "\\1%s\\1" "$(pwd)"; hostname; ls -A /tmp';

function parse(out: Buffer) {
  const [args, environ, pwd, rest] = out.toString('utf8').split('\u0001');
  const [hostname, ...tmp] = rest.split('\n').filter(Boolean);
  return { args: args.split('\0').slice(0, -1), env: environ.split('\0').slice(0, -1), pwd, hostname, tmp };
}

/** tscontain run with stdout as bytes. */
function run(args: string[], e = suiteEnv) {
  try {
    return {
      code: 0,
      out: execFileSync('sh', [join('bench', 'clean-fds'), join('bin', 'tscontain'), 'run', ...args], {
        env: e,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    };
  } catch (err) {
    const x = err as { status: number; stdout: Buffer; stderr: Buffer };
    return { code: x.status, out: x.stdout, err: x.stderr.toString() };
  }
}

it('argv, env and workdir reach the container byte for byte; nothing they spell runs', async (t) => {
  rmSync(CANARY, { force: true });
  fc.assert(
    fc.property(fc.array(hostile, { minLength: 1, maxLength: 3 }), hostile, hostile, (args, value, wd) => {
      const r = run([
        '--rm',
        '-h',
        'inject',
        '-e',
        `X=${value}`,
        '-w',
        `/w${wd}/e`,
        'busybox',
        'sh',
        '-c',
        DUMP,
        'argv0',
        ...args,
      ]);
      t.is(r.code, 0, r.err);
      const d = parse(r.out);
      t.deepEqual(d.args, args);
      t.true(d.env.includes(`X=${value}`), JSON.stringify(d.env));
      t.is(d.pwd, `/w${wd}/e`);
      t.is(d.hostname, 'inject');
      t.deepEqual(d.tmp, [], 'nothing ran in the container');
      t.false(existsSync(CANARY), 'nothing ran on the host');
    }),
    { numRuns: cases(12) },
  );
});

it('an imported image whose Cmd, Entrypoint, Env and WorkingDir carry hostile text runs with that exact data', async (t) => {
  rmSync(CANARY, { force: true });
  const e = privateStore();
  const bb = join(suiteEnv.TSCONTAIN_ROOT, 'lib', 'images', 'busybox', 'rootfs');
  const base = execFileSync('tar', ['-C', bb, '-cf', '-', '.'], { maxBuffer: 1 << 28 });
  const samples = fc.sample(fc.tuple(fc.array(hostile, { minLength: 1, maxLength: 3 }), hostile, hostile), {
    numRuns: 3,
  });
  for (const [i, [cmd, value, wd]] of samples.entries()) {
    const layout = ociLayout(tempDir('tscontain-oci-'), [base], {
      Entrypoint: ['sh', '-c', DUMP, 'argv0'],
      Cmd: cmd,
      Env: ['PATH=/bin', `X=${value}`],
      WorkingDir: `/w${wd}/e`,
    });
    const name = `hostile-${process.pid}-${i}`;
    const imp = await tsc(['import', layout, name], { env: e });
    t.is(imp.code, 0, imp.stderr);
    const r = run(['--rm', '-h', 'inject', name], e as typeof suiteEnv);
    t.is((await tsc(['rmi', name], { env: e })).code, 0);
    t.is(r.code, 0, r.err);
    const d = parse(r.out);
    t.deepEqual(d.args, cmd);
    t.true(d.env.includes(`X=${value}`));
    t.is(d.pwd, `/w${wd}/e`);
    t.deepEqual(d.tmp, []);
    t.false(existsSync(CANARY), 'nothing ran on the host');
  }
});
