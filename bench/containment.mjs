// What the masks and the device rules add to a start, measured where they run, in one process:
// - `mount --all` with the container's proc and sysfs lines, with and without the mask lines
//   (alternating, in one mount namespace, timed by bash's $EPOCHREALTIME around mount alone);
// - the cgroup v2 loader (one perl run: BPF_PROG_LOAD + BPF_PROG_ATTACH), next to `perl -e 1`;
// - the cgroup v1 lines (sh builtins: one echo per rule).
// Cgroups are made under tscontain/bench-* and removed. Usage (root, after npm run build):
//   node bench/containment.mjs [ROUNDS]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RULES, v1Lines, v2Lines } from '../dist/src/kernel/devices.js';
import { hostMaskFacts, maskFstab } from '../dist/src/kernel/masks.js';

const N = Number(process.argv[2] || 40);
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};
const ms = (x) => `${(x * 1000).toFixed(2)} ms`;
const dir = mkdtempSync(join(tmpdir(), 'tscontain-bench-'));

function bash(script, args) {
  const r = spawnSync('bash', ['-c', script, 'bash', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

/** lines "NAME START END" ($EPOCHREALTIME values) -> NAME -> [seconds] */
function collect(out) {
  const t = {};
  for (const l of out.trim().split('\n')) {
    const [n, a, b] = l.split(' ');
    (t[n] ??= []).push(Number(b) - Number(a));
  }
  return t;
}

try {
  const root = join(dir, 'root');
  mkdirSync(root);
  const base = [
    'proc /proc proc nosuid,nodev,noexec,X-mount.mkdir 0 0',
    'sysfs /sys sysfs ro,nosuid,nodev,noexec,X-mount.mkdir 0 0',
  ];
  const masks = maskFstab(hostMaskFacts(), { root });
  writeFileSync(join(dir, 'base'), base.join('\n') + '\n');
  writeFileSync(join(dir, 'masked'), [...base, ...masks].join('\n') + '\n');
  const mountLoop = `
    for i in $(seq "$1"); do for f in base masked; do
      t0=$EPOCHREALTIME; mount --all --fstab "$2/$f" --target-prefix "$3"; t1=$EPOCHREALTIME
      echo "$f $t0 $t1"
      umount -R "$3/proc" "$3/sys"
    done; done`;
  const r = spawnSync(
    'unshare',
    ['--mount', '--propagation', 'private', 'bash', '-c', mountLoop, 'bash', String(N), dir, root],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  const m = collect(r.stdout);
  console.log(`mount --all, ${N} runs each, alternating (${masks.length} mask lines on this host):`);
  console.log(`  proc + sysfs only   ${ms(median(m.base))}`);
  console.log(
    `  + masks, read-only  ${ms(median(m.masked))}   ratio ${(median(m.masked) / median(m.base)).toFixed(2)}`,
  );

  const v2root = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
  const v1root = '/sys/fs/cgroup/devices';
  const timeLines = (name, cgRoot, lines) => {
    const out = [];
    mkdirSync(join(cgRoot, 'tscontain'), { recursive: true });
    for (let i = 0; i < N; i++) {
      const cg = join(cgRoot, 'tscontain', `bench-${process.pid}-${i}`);
      mkdirSync(cg);
      try {
        const text = lines(cg)
          .map((l) => l.text)
          .join('\n');
        out.push(
          bash(
            `t0=$EPOCHREALTIME; ${text}\nt1=$EPOCHREALTIME; perl -e 1; t2=$EPOCHREALTIME
          echo "${name} $t0 $t1"; echo "perl-e-1 $t1 $t2"`,
            [],
          ),
        );
      } finally {
        rmdirSync(cg);
      }
    }
    return collect(out.join(''));
  };
  if (existsSync(join(v2root, 'cgroup.procs'))) {
    const v2 = timeLines('v2', v2root, (cg) => v2Lines(DEFAULT_RULES, cg, 'perl'));
    console.log(`cgroup v2 device program (devices-attach.pl), ${N} runs:`);
    console.log(`  load + attach       ${ms(median(v2.v2))}   (perl -e 1: ${ms(median(v2['perl-e-1']))})`);
  }
  if (existsSync(join(v1root, 'devices.allow'))) {
    const v1 = timeLines('v1', v1root, (cg) => v1Lines(DEFAULT_RULES, cg));
    console.log(`cgroup v1 devices lines (${DEFAULT_RULES.length} echo builtins), ${N} runs:`);
    console.log(`  writes              ${ms(median(v1.v1))}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
