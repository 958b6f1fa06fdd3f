import test from 'ava';
import {
  parseArgs,
  parseBytes,
  parseMemory,
  parseCpus,
  parseCpuShares,
  parseEnv,
  mergeEnv,
  parseHostname,
  helpText,
} from '../../src/spec/options.js';
import { validateOptions } from '../../src/spec/spec.js';
import { TscError } from '../../src/errors.js';

test('options stop at the image; the rest is the command', (t) => {
  const p = parseArgs([
    '-it',
    '--rm',
    '-m',
    '64m',
    '--pids-limit=20',
    '-e',
    'A=1',
    '-eB=2',
    'busybox',
    'sh',
    '-c',
    'ls -l',
  ]);
  t.deepEqual(p.opts, {
    interactive: true,
    tty: true,
    rm: true,
    memory: '64m',
    'pids-limit': '20',
    env: ['A=1', 'B=2'],
  });
  t.deepEqual(p.positionals, ['busybox', 'sh', '-c', 'ls -l']);
});

test('short option with attached value and -- end of options', (t) => {
  const p = parseArgs(['-m64m', '-h', 'box', '--', '-weird-image', 'x']);
  t.is(p.opts.memory, '64m');
  t.is(p.opts.hostname, 'box');
  t.deepEqual(p.positionals, ['-weird-image', 'x']);
});

test('a value that looks like an option is still a value (--cpus -1)', (t) => {
  t.is(parseArgs(['--cpus', '-1', 'img']).opts.cpus, '-1');
});

test('unknown options and missing values are one clear line', (t) => {
  t.throws(() => parseArgs(['--bogus', 'img']), { instanceOf: TscError, message: 'unknown option --bogus' });
  t.throws(() => parseArgs(['-X']), { message: 'unknown option -X' });
  t.throws(() => parseArgs(['--memory']), { message: 'option --memory needs a value' });
  t.throws(() => parseArgs(['--rm=yes', 'img']), { instanceOf: TscError });
});

test('memory sizes', (t) => {
  t.is(parseBytes('64m'), 64 * 1024 * 1024);
  t.is(parseBytes('1g'), 1024 ** 3);
  t.is(parseBytes('512k'), 512 * 1024);
  t.is(parseBytes('1.5m'), 1.5 * 1024 * 1024);
  t.is(parseBytes('100000000'), 100000000);
  const e = t.throws(() => parseMemory('12q'), { instanceOf: TscError });
  t.regex(e!.message, /invalid memory size "12q"/);
  t.regex(e!.hint!, /e\.g\. 64m/);
  t.throws(() => parseMemory('1m'), { message: /too small/ });
});

test('cpus, cpu-shares, pids-limit, hostname, network validation', (t) => {
  t.is(parseCpus('0.2', 2), 0.2);
  t.throws(() => parseCpus('-1', 2), { message: 'invalid --cpus "-1"' });
  t.throws(() => parseCpus('3', 2), { message: /out of range/ });
  t.throws(() => parseCpus('abc', 2));
  t.is(parseCpuShares('512'), 512);
  t.throws(() => parseCpuShares('1'));
  t.throws(() => validateOptions(parseArgs(['--pids-limit', '0', 'x'])), { message: 'invalid --pids-limit "0"' });
  t.throws(() => validateOptions(parseArgs(['--network', 'overlay', 'x'])), { message: /unsupported network mode/ });
  t.throws(() => validateOptions(parseArgs(['-w', 'rel/dir', 'x'])), { message: /not absolute/ });
  t.is(parseHostname('web-1'), 'web-1');
  t.throws(() => parseHostname('bad_name!'));
  const v = validateOptions(
    parseArgs(['-m', '32m', '--pids-limit', '20', '--cpus', '0.5', '--cpu-shares', '512', 'x']),
    2,
  );
  t.deepEqual(v.limits, { memory: 32 * 1024 * 1024, pids: 20, cpus: 0.5, cpuShares: 512 });
  t.deepEqual(v.net.mode, { kind: 'bridge' }, 'bridge is the default, as in docker');
});

test('env: KEY=VAL, bare KEY from the host, later wins', (t) => {
  t.deepEqual(parseEnv(['A=1', 'HOME', 'MISSING'], { HOME: '/h' }), ['A=1', 'HOME=/h']);
  t.throws(() => parseEnv(['1X=2'], {}), { message: /invalid environment variable/ });
  t.deepEqual(mergeEnv(['PATH=/bin', 'A=1'], ['A=2']), ['PATH=/bin', 'A=2']);
});

test('help text lists every option with its description', (t) => {
  const h = helpText('tscontain run IMAGE');
  t.regex(h, /-m, --memory BYTES/);
  t.regex(h, /--pids-limit N/);
  t.regex(h, /--no-pivot/);
});
