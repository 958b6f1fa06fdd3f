// The plan as step data, for tables of specs; the rendered script's shape; sh -n and shellcheck.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PHASES } from '../../src/plan/plan.js';
import { WIDTH } from '../../src/plan/sh.js';
import { fakeCgroupV1, fakeCgroupV2 } from './helpers.js';
import { lineTexts, makePlan, ID } from './plan-fixture.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

test.after.always(removeTempDirs);

type Row = [string, string[], string[], keyof ReturnType<typeof makePlan>['phases'], string[]];
// [what, options, command, phase, lines that phase must hold, exactly]
const rows: Row[] = [
  [
    '--network none: lo comes up in the background',
    ['--network', 'none'],
    ['sh'],
    'prepare',
    ['/usr/sbin/ip link set lo up & tsc_ip=$!'],
  ],
  [
    'the hostname is the short id',
    [],
    ['sh'],
    'prepare',
    [`printf '%s' ${ID.slice(0, 12)} > /proc/sys/kernel/hostname`],
  ],
  ['-h sets it', ['-h', 'box'], ['sh'], 'prepare', [`printf '%s' box > /proc/sys/kernel/hostname`]],
  [
    'one mount --all for the fstab',
    [],
    ['sh'],
    'prepare',
    ['mount --all --no-canonicalize --fstab "$tsc_run/fstab" --target-prefix "$tsc_root"'],
  ],
  [
    '--read-only remounts the root',
    ['--read-only'],
    ['sh'],
    'prepare',
    ['mount -o remount,bind,ro "$tsc_root"   # --read-only: the root itself, not the mounts on it'],
  ],
  ['-w makes the directory', ['-w', '/srv/data'], ['sh'], 'prepare', ['mkdir -p "$tsc_root"/srv/data']],
  ['pivot_root, then the old root detached', [], ['sh'], 'switch', ['pivot_root . dev/shm', 'cd /dev/shm']],

  ['--rm: the exit is the discard', ['--rm'], ['sh'], 'exit', ['tsc_discard']],
  [
    'v1 limits in v1 files',
    ['-m', '32m', '--pids-limit', '20', '--cpus', '0.5'],
    ['sh'],
    'host',
    [
      'echo 33554432 > "$tsc_cg_memory"/memory.limit_in_bytes',
      'echo 20 > "$tsc_cg_pids"/pids.max',
      'echo 50000 > "$tsc_cg_cpu"/cpu.cfs_quota_us',
    ],
  ],
  [
    'a volume and a tmpfs are fstab entries',
    ['-v', '/tmp:/data:ro', '--tmpfs', '/run:size=1m'],
    ['sh'],
    'prepare',
    [
      '  tmpfs /run tmpfs nosuid,nodev,size=1m,X-mount.mkdir \\',
      '  /tmp /data none bind,ro,X-mount.mkdir > "$tsc_run/fstab"',
    ],
  ],
  [
    'a path with blanks is encoded for fstab, then quoted',
    ['--tmpfs', '/a b#c'],
    ['sh'],
    'prepare',
    ['  tmpfs \'/a\\040b\\043c\' tmpfs nosuid,nodev,X-mount.mkdir > "$tsc_run/fstab"'],
  ],
];
for (const [what, opts, cmd, phase, want] of rows)
  test(`plan: ${what}`, (t) => {
    const have = lineTexts(makePlan(opts, cmd), phase);
    for (const w of want) t.true(have.includes(w), `${w}\nnot in ${phase}:\n${have.join('\n')}`);
  });

test('plan: --network host has no network namespace and no lo step', (t) => {
  const p = makePlan(['--network', 'host'], ['sh']);
  t.false(lineTexts(p, 'start').join('\n').includes('--net '));
  t.false(lineTexts(p, 'prepare').some((l) => l.includes('link set lo up')));
});

test('plan: v2 limits in the one unified cgroup', (t) => {
  const have = lineTexts(makePlan(['-m', '32m', '--cpus', '0.5'], ['sh'], { cg: fakeCgroupV2() }), 'host');
  t.true(have.includes('echo 33554432 > "$tsc_cg_unified"/memory.max'));
  t.true(have.includes(`echo '50000 100000' > "$tsc_cg_unified"/cpu.max`));
});

test('plan: with the bridge PID 1 starts no ip of its own: the gate brings lo up with eth0', (t) => {
  const p = makePlan([], ['sh']);
  t.false(lineTexts(p, 'prepare').some((l) => l.includes('ip link set lo up')));
  t.true(lineTexts(p, 'gate').some((l) => l.includes('link set lo up')));
});

test('plan: host programs start with a host environment; PID 1 gets the argv, each one word', (t) => {
  const p = makePlan(['-e', 'A=1 2', '-e', 'LD_PRELOAD=/x.so'], ['sh', '-c', 'echo "$A"']);
  const start = lineTexts(p, 'start').join('\n');
  t.true(start.includes(`--init sh -c 'echo "$A"'`));
  t.true(start.includes('/usr/bin/setpriv --reset-env --pdeathsig KILL'));
  t.false(start.includes('LD_PRELOAD'), "the container's environment never reaches a host program");
});

/** become.pl's argv in the become step, as sh would split it (one option a line). */
const becomeText = (opts: string[], cmd = ['sh'], o = {}) => lineTexts(makePlan(opts, cmd, o), 'become').join('\n');

test("become: docker's capabilities, a cgroup namespace, the environment as --env, then the command", (t) => {
  const b = becomeText(['-e', 'A=1 2', '-w', '/srv']);
  t.regex(
    b,
    /^exec \.\/usr\/lib\/x86_64-linux-gnu\/ld-linux-x86-64\.so\.2 \\\n +--library-path \.\/usr\/lib\/x86_64-linux-gnu \\\n +\.\/usr\/bin\/perl -e "\$tsc_become_pl" --/m,
  );
  t.regex(b, /--caps 00000000a80425fb/);
  t.regex(b, /--cgroupns/);
  t.regex(b, /--wd \/srv/);
  t.regex(b, /--detach \/dev\/shm/, "become.pl detaches the host's old root");
  t.regex(b, /--env 'A=1 2'/);
  t.regex(b, /-- \\\n +"\$@"$/);
  t.notRegex(b, /--nnp/);
});

const capsRows: [string[], RegExp][] = [
  [['--cap-drop', 'ALL'], /--caps 0000000000000000/],
  [['--cap-add', 'SYS_ADMIN'], /--caps 00000000a82425fb/],
  [['--cap-drop', 'chown', '--cap-add', 'cap_net_admin'], /--caps 00000000a80435fa/],
  [['--security-opt', 'no-new-privileges'], /--nnp/],
  [['--cgroupns', 'host'], /^(?![\s\S]*--cgroupns)/],
  [['-u', 'app'], /--uid 1000 \\\n +--gid 1001/],
];
for (const [opts, re] of capsRows) test(`become: ${opts.join(' ')}`, (t) => t.regex(becomeText(opts), re));

test("--no-pivot: become.pl chroots (from the host's root)", (t) => {
  const b = becomeText(['--no-pivot']);
  t.regex(b, /^exec \/usr\/bin\/perl -e "\$tsc_become_pl" -- \\\n +--chroot "\$tsc_root"/m);
});

test('script: step numbers run in order, each title once, each function once', (t) => {
  for (const cg of [fakeCgroupV1(), fakeCgroupV2()]) {
    const p = makePlan(['--rm', '--name', 'web', '-m', '8m'], ['sh'], { cg });
    const nums = [...p.script.matchAll(/^ *# (\d+)\. /gm)].map((m) => Number(m[1]));
    t.deepEqual(
      nums,
      nums.map((_, i) => i + 1),
    );
    t.is(
      nums.length,
      PHASES.reduce((n, ph) => n + p.phases[ph].length, 0),
    );
    const titles = [...p.script.matchAll(/^ *# \d+\. (.*)$/gm)].map((m) => m[1]);
    t.is(new Set(titles).size, titles.length);
    const fns = [...p.script.matchAll(/^(\w+)\(\) \{$/gm)].map((m) => m[1]);
    t.is(new Set(fns).size, fns.length, fns.join(' '));
  }
});

test('script: every step has a manual page line', (t) => {
  const p = makePlan([], ['sh']);
  for (const ph of PHASES) for (const s of p.phases[ph]) t.regex(s.man, /\S/, s.title);
});

/** A matrix of specs: each rendered plan parses (sh -n), shellcheck finds no error, no line is wider than WIDTH. */
const matrix: string[][] = [
  [],
  ['--rm'],
  ['-d'],
  ['-i'],
  ['--network', 'host'],
  ['--no-pivot'],
  ['--read-only'],
  ['-u', 'app', '-w', '/x y'],
  ['--name', 'web', '-m', '8m', '--pids-limit', '5', '--cpus', '0.5', '--cpu-shares', '512'],
  ['-v', '/tmp:/data', '-v', '/etc/hostname:/etc/h:ro', '--tmpfs', "/it's"],
  ['-e', 'X=$(id)\n`id`'],
  ['--init', '-t', '--network', 'none', '--device', '/dev/null:/dev/x', '--cap-add', 'ALL'],
  ['-p', '8080:80', '--name', 'web'],
  ['--privileged', '-e', `LONG=${"x'y ".repeat(100)}`, '-w', `/${'d'.repeat(300)}`],
];
const shellcheck = spawnSync('shellcheck', ['--version']).status === 0;
for (const cg of ['v1', 'v2'])
  (shellcheck ? test : test.skip)(
    `script: sh -n and shellcheck (errors) pass for a matrix of specs, and no line is over 120 columns, cgroup ${cg}`,
    (t) => {
      const dir = tempDir('tscontain-plan-');
      const files = matrix.map((opts, i) => {
        const p = makePlan(opts, ['sh', '-c', 'echo "$@"', "it's"], {
          cg: cg === 'v1' ? fakeCgroupV1() : fakeCgroupV2(),
        });
        const f = join(dir, `plan${i}.sh`);
        writeFileSync(f, p.script);
        execFileSync('/bin/sh', ['-n', f]);
        const wide = p.script.split('\n').filter((l) => [...l].length > WIDTH);
        t.deepEqual(wide, [], opts.join(' '));
        return f;
      });
      // one shellcheck for all (its start is the cost); it names the file of each finding
      const r = spawnSync('shellcheck', ['-s', 'sh', '-S', 'error', ...files], { encoding: 'utf8' });
      const specs = matrix.map((opts, i) => `plan${i}.sh: ${opts.join(' ')}`).join('\n');
      t.is(r.status, 0, `${r.stdout}\n${specs}`);
    },
  );

(shellcheck ? test : test.skip)('the supervisor file passes shellcheck (warnings too)', (t) => {
  const r = spawnSync('shellcheck', ['-s', 'sh', '-S', 'warning', 'src/plan/supervisor.sh'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stdout);
});

test("step 1's directories are data: tscontain makes them itself; the script makes them only when missing", (t) => {
  for (const cg of [fakeCgroupV1(), fakeCgroupV2()]) {
    const p = makePlan(['--name', 'web'], ['sh'], { cg });
    t.deepEqual(p.dirs.slice(0, 6), [
      p.run,
      ...['upper/etc', 'work', 'dev/upper', 'dev/work', 'rootfs'].map((d) => join(p.ctr, d)),
    ]);
    t.true(p.dirs.includes('/var/lib/tscontain/names'), 'the names directory with --name');
    t.deepEqual(p.dirs.slice(-p.cgroup.all.length), p.cgroup.all, 'the cgroup directories last');
    const guard = p.cgroup.mkdirs()[p.cgroup.mkdirs().length - 1].text;
    t.true(lineTexts(p, 'host').some((l) => l.startsWith(`[ -d ${guard} ] || mkdir -p`)));
  }
});
