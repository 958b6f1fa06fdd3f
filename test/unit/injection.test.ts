// No text from a user or an image can run as shell: for random hostile strings in every field,
// the plan parses (sh -n), its functions run against fake trees and stub programs without running
// anything the data spells (a canary function named in the data), and the programs receive the
// data byte for byte. Needs no root: programs are stubs, roots and cgroup trees are temp dirs.
import test from 'ava';
import fc from 'fast-check';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TscError } from '../../src/errors.js';
import type { Plan } from '../../src/plan/plan.js';
import { inert, q, WIDTH } from '../../src/plan/sh.js';
import { fakeCgroupV1, fakeCgroupV2, fakeRootfs } from './helpers.js';
import { makePlan, type PlanOptions } from './plan-fixture.js';
import { cases } from '../fixtures/poll.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

test.after.always(removeTempDirs);

// Serial: each property runs synchronously (spawnSync) for tens of seconds; run side by side they
// would hold the worker's event loop for minutes, and ava, hearing nothing, would time out.
const heavy = test.serial;

/** What an attacker would type: sh syntax, line ends, escapes, and a call of the canary. */
const PIECES = [
  '\n',
  '\r',
  "'",
  '"',
  '$(',
  ')',
  '`',
  ';',
  '&',
  '|',
  '\\',
  '*',
  '~',
  '-',
  '--',
  '#',
  ' ',
  '\t',
  '$',
  '{',
  '}',
  '>',
  '<',
  '!',
  'a',
  'é',
  '\u2028',
  '\u001b[2J',
  '\u0085',
  'tsc_canary',
  '$(tsc_canary)',
  '`tsc_canary`',
  ';tsc_canary;',
  '\ntsc_canary #',
  "'\ntsc_canary\n'",
  '"$(tsc_canary)"',
  '${tsc_x:=$(tsc_canary)}',
  '%s',
  '\\n',
  '*)',
  'esac',
];
const hostile = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.constantFrom(...PIECES), { maxLength: 12 }).map((a) => a.join('')) },
  { weight: 1, arbitrary: fc.constantFrom(...PIECES).map((p) => p.repeat(2000)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }).map((s) => s.replace(/\0/g, '')) },
);
/** Strings as they reach a file: a lone surrogate becomes U+FFFD in UTF-8. */
const asWritten = (s: string) => Buffer.from(s, 'utf8').toString('utf8');

const STUB = '#!/bin/sh\nfor a; do printf \'%s\\0\' "$a"; done > "$TSC_STUB_OUT"\n';

interface Run {
  canary: boolean;
  start: string[];
  become: string[];
  stderr: string;
}

/** Run the plan's functions (not its supervisor) with stub programs and a canary. */
function exercise(p: Plan, dir: string): Run {
  const defs = p.script.slice(0, p.script.indexOf('# ---- the supervisor:'));
  const canary = join(dir, 'canary'),
    start = join(dir, 'start'),
    become = join(dir, 'become');
  const script = [
    `tsc_canary() { echo ran >> ${q(canary)}; }`,
    defs,
    'say() { :; }',
    'tsc_self=/plan.sh; tsc_rc=0; tsc_oomkilled=false',
    'tsc_host_setup',
    `TSC_STUB_OUT=${q(start)}; export TSC_STUB_OUT`,
    'tsc_start_container; wait',
    // the kernel removes a cgroup's files with it: here they are plain files, so they go first
    `find ${q(p.cgroup.root)} -path '*/tscontain/*' -type f -delete`,
    'tsc_cleanup; tsc_discard',
    `TSC_STUB_OUT=${q(become)}`,
    // the loader is the stub (the plan names it relative to the old root: here /)
    `cd /; exec 3>/dev/null 4>/dev/null; set -- ${p.spec.argv.map(q).join(' ')}; tsc_become "$@"`,
  ].join('\n');
  writeFileSync(join(dir, 'run.sh'), script);
  execFileSync('/bin/sh', ['-n', join(dir, 'run.sh')]);
  const r = spawnSync('/bin/sh', [join(dir, 'run.sh')], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\0').slice(0, -1) : []);
  return { canary: existsSync(canary), start: read(start), become: read(become), stderr: r.stderr };
}

/** What become.pl was given: the command's environment (--env) and the command (after the last --). */
function becameWith(argv: string[]) {
  const env: string[] = [];
  const dd = argv.indexOf('--', argv.indexOf('--') + 1);
  for (let i = argv.indexOf('--'); i < dd; i++) if (argv[i] === '--env') env.push(argv[++i]);
  return { env, cmd: argv.slice(dd + 1) };
}

/** A plan for these options and command, or undefined when the input is refused with one clear line. */
function planOrRefused(opts: string[], cmd: string[], o: PlanOptions = {}): Plan | undefined {
  try {
    return makePlan(opts, cmd, o);
  } catch (e) {
    if (e instanceof TscError) return undefined;
    throw e;
  }
}

/** A temp dir with roots and a stub program, a fake cgroup tree; plans made with it start only the stub. */
function fixture() {
  const dir = tempDir('tscontain-'); // short: the plan's lines hold its paths, as the real roots'
  const roots = { lib: join(dir, 'lib'), run: join(dir, 'run') };
  const stub = join(dir, 'stub');
  writeFileSync(stub, STUB, { mode: 0o755 });
  const tools = { setpriv: stub, unshare: stub, ip: stub, ldso: stub, bin: () => stub };
  return { dir, roots, tools, cg: Math.random() < 0.5 ? fakeCgroupV1() : fakeCgroupV2() };
}

const RUNS = cases(40);

heavy('argv, env values, workdir: the plan runs nothing they spell, and the programs get them byte for byte', (t) => {
  fc.assert(
    fc.property(fc.array(hostile, { minLength: 1, maxLength: 4 }), hostile, hostile, (args, value, wd) => {
      const f = fixture();
      const p = planOrRefused(['-e', `X=${value}`, '-w', `/${wd}`, '--name', 'web'], ['sh', ...args], {
        roots: f.roots,
        cg: f.cg,
        tools: f.tools,
      });
      if (!p) return;
      const r = exercise(p, f.dir);
      t.false(r.canary, r.stderr);
      t.deepEqual(r.start.slice(-args.length - 1), ['sh', ...args].map(asWritten), 'PID 1 gets the command');
      const b = becameWith(r.become);
      t.deepEqual(b.env, p.spec.env.map(asWritten));
      t.true(b.env.includes(asWritten(`X=${value}`)));
      t.deepEqual(b.cmd, ['sh', ...args].map(asWritten));
      t.is(r.become[r.become.indexOf('--wd') + 1], asWritten(`/${wd}`));
      // long values are folded, comments cut: the plan stays readable
      t.deepEqual(
        p.script.split('\n').filter((l) => [...l].length > WIDTH),
        [],
        'no line over WIDTH columns',
      );
    }),
    { numRuns: RUNS },
  );
});

heavy('the config record written by the plan holds the data exactly', (t) => {
  fc.assert(
    fc.property(fc.array(hostile, { maxLength: 3 }), hostile, (args, value) => {
      const f = fixture();
      const p = planOrRefused(['-e', `X=${value}`, '-d'], ['sh', ...args], {
        roots: f.roots,
        cg: f.cg,
        tools: f.tools,
      });
      if (!p) return;
      const defs = p.script.slice(0, p.script.indexOf('# ---- the supervisor:'));
      writeFileSync(
        join(f.dir, 'h.sh'),
        `tsc_canary() { echo ran > ${q(join(f.dir, 'canary'))}; }\n${defs}\nsay() { :; }\ntsc_host_setup\n`,
      );
      spawnSync('/bin/sh', [join(f.dir, 'h.sh')]);
      t.false(existsSync(join(f.dir, 'canary')));
      const c = JSON.parse(readFileSync(join(p.ctr, 'config.json'), 'utf8'));
      t.deepEqual(c.argv, ['sh', ...args].map(asWritten));
      t.true(c.env.includes(asWritten(`X=${value}`)));
      rmSync(f.dir, { recursive: true, force: true });
    }),
    { numRuns: RUNS },
  );
});

heavy('every other field: env names, env files, hostname, user, name, volumes, tmpfs, image, roots', (t) => {
  const fields: [string, (v: string, dir: string) => [string[], PlanOptions]][] = [
    ['env name', (v) => [['-e', v], {}]],
    [
      'env file',
      (v, dir) => {
        writeFileSync(join(dir, 'env'), `A=${v}\n${v}\n`);
        return [['--env-file', join(dir, 'env')], {}];
      },
    ],
    ['hostname', (v) => [['-h', v], {}]],
    ['user', (v) => [['-u', v], {}]],
    ['name', (v) => [['--name', v], {}]],
    [
      'volume',
      (v, dir) => {
        mkdirSync(join(dir, `v${v.length}`), { recursive: true });
        return [['-v', `${join(dir, `v${v.length}`)}/${v}:/${v}`], {}];
      },
    ],
    ['tmpfs', (v) => [['--tmpfs', `/${v}`], {}]],
    ['tmpfs options', (v) => [['--tmpfs', `/t:${v}`], {}]],
    ['image path', (v) => [[], { rootfs: `/${v}` }]],
    ['TSCONTAIN_ROOT', (v, dir) => [[], { roots: { lib: join(dir, v, 'lib'), run: join(dir, v, 'run') } }]],
  ];
  for (const [what, make] of fields)
    fc.assert(
      fc.property(hostile, (v) => {
        const f = fixture();
        const [opts, o] = make(v, f.dir);
        const p = planOrRefused(opts, ['sh', '-c', 'true'], { roots: f.roots, cg: f.cg, tools: f.tools, ...o });
        if (!p) return;
        const r = exercise(p, f.dir);
        t.false(r.canary, `${what}: ${JSON.stringify(v)}\n${r.stderr}`);
      }),
      { numRuns: cases(15) },
    );
  t.pass();
});

heavy('an image config is data: Cmd, Entrypoint, Env, WorkingDir', (t) => {
  fc.assert(
    fc.property(
      fc.array(hostile, { minLength: 1, maxLength: 3 }),
      fc.array(hostile, { maxLength: 2 }),
      hostile,
      hostile,
      (cmd, ep, env, wd) => {
        const f = fixture();
        const name = 'img';
        const image = join(f.roots.lib, 'images', name);
        mkdirSync(image, { recursive: true });
        const rootfs = fakeRootfs();
        execFileSync('cp', ['-a', `${rootfs}/.`, join(image, 'rootfs')]);
        const config = { Cmd: cmd, Entrypoint: ['sh', ...ep], Env: [`E=${env}`], WorkingDir: `/${wd}` };
        writeFileSync(join(image, 'config.json'), JSON.stringify({ config }));
        const p = planOrRefused([], [], { roots: f.roots, cg: f.cg, tools: f.tools, rootfs: name });
        if (!p) return;
        const r = exercise(p, f.dir);
        t.false(r.canary, r.stderr);
        const b = becameWith(r.become);
        t.deepEqual(b.cmd, ['sh', ...ep, ...cmd].map(asWritten));
        t.true(b.env.includes(asWritten(`E=${env}`)));
      },
    ),
    { numRuns: RUNS },
  );
});

test('inert: any text becomes one printable line', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
      t.notRegex(inert(s), /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
    }),
    { numRuns: cases(300) },
  );
});

test('q: sh reads back exactly what was quoted', (t) => {
  fc.assert(
    fc.property(fc.array(hostile, { maxLength: 5 }), (words) => {
      const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${words.map(q).join(' ')} ''`]).toString('utf8');
      t.deepEqual(out.split('\0').slice(0, -2), words.map(asWritten));
    }),
    { numRuns: cases(60) },
  );
});
