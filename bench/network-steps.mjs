// What --network bridge adds per container, measured against `tscontain run --rm busybox /bin/true`
// (--network none) in the same run, rounds interleaved (a VM's speed drifts). The network steps run
// as the supervisor would run them, in a network namespace of their own (the "host"), against a fake
// container (unshare --net sleep): host setup + gate (start-up cost), then the exit steps.
// Each timed sh is compared with an empty sh with the same variables, so only the steps count.
// Usage (root, after npm run build): node bench/network-steps.mjs [ROUNDS]
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { planNetwork } from '../dist/src/kernel/network/index.js';
import { parseNetworkOptions } from '../dist/src/kernel/network/options.js';
import { parseProcNetRoute } from '../dist/src/kernel/network/subnet.js';
import { inert } from '../dist/src/plan/sh.js';

const rounds = Number(process.argv[2] || 30);
const H = `tscontain-bench-h${process.pid}`;
const root = `/tmp/tscontain-bench-net-${process.pid}`;
const roots = { lib: join(root, 'lib'), run: join(root, 'run') };
const ip = '/usr/sbin/ip';
const inH = (args, input) => spawnSync(ip, ['netns', 'exec', H, ...args], { input, encoding: 'utf8' });
const render = (steps) => steps.flatMap((s) => [`# ${inert(s.title)}`, ...s.lines.map((l) => l.text)]).join('\n');
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};
const timed = (cmd, args) => {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
};

spawnSync(ip, ['netns', 'add', H]);
inH(['ip', 'link', 'set', 'lo', 'up']);
const fake = spawn(ip, ['netns', 'exec', H, 'unshare', '--net', '--fork', 'sleep', '1000'], { stdio: 'ignore' });
let pid1 = '';
try {
  for (let i = 0; i < 500 && !pid1; i++) {
    try {
      pid1 = readFileSync(`/proc/${fake.pid}/task/${fake.pid}/children`, 'utf8').trim();
    } catch {
      /* not yet */
    }
    if (!pid1) await new Promise((r) => setTimeout(r, 10));
  }
  const id = 'be'.repeat(32);
  const run = join(roots.run, id),
    ctr = join(roots.lib, 'containers', id);
  mkdirSync(join(ctr, 'upper', 'etc'), { recursive: true }); // made by tscontain run with the other dirs
  mkdirSync(run, { recursive: true });
  const vars = `set -eu\ntsc_id=${id}; tsc_run=${run}; tsc_ctr=${ctr}; tsc_pid1=${pid1}\n`;
  const scripts = (publish) => {
    const plan = planNetwork({
      id,
      hostname: id.slice(0, 12),
      net: parseNetworkOptions({ publish }),
      roots,
      facts: {
        routes: parseProcNetRoute(inH(['cat', '/proc/net/route']).stdout),
        resolv: 'nameserver 192.0.2.53\n',
        listening: { tcp: new Set(), udp: new Set() },
      },
    });
    return {
      start: [vars, render(plan.host), render(plan.gate), render(plan.afterStart), ''].join('\n'),
      exit: vars + render(plan.exit) + '\n',
    };
  };
  const variants = { bridge: scripts([]), 'bridge -p 8080:80': scripts(['8080:80']) };
  const t = { none: [], empty: [], one: [] };
  for (const v of Object.keys(variants)) {
    t[`${v} start`] = [];
    t[`${v} exit`] = [];
  }
  // warm-up: the bridge and the table are made once (first use), not per container
  for (const v of Object.values(variants)) {
    timed(ip, ['netns', 'exec', H, 'sh', '-c', v.start]);
    timed(ip, ['netns', 'exec', H, 'sh', '-c', v.exit]);
  }
  timed('bin/tscontain', ['run', '--rm', 'busybox', '/bin/true']);
  for (let r = 0; r < rounds; r++) {
    t.none.push(timed('bin/tscontain', ['run', '--rm', '--network', 'none', 'busybox', '/bin/true']));
    t.empty.push(timed(ip, ['netns', 'exec', H, 'sh', '-c', vars]));
    t.one.push(timed(ip, ['netns', 'exec', H, 'sh', '-c', `${vars}\n/bin/true\n`]));
    for (const [v, s] of Object.entries(variants)) {
      t[`${v} start`].push(timed(ip, ['netns', 'exec', H, 'sh', '-c', s.start]));
      t[`${v} exit`].push(timed(ip, ['netns', 'exec', H, 'sh', '-c', s.exit]));
    }
  }
  const base = median(t.empty);
  console.log(`medians of ${rounds} interleaved rounds on this machine:`);
  const none = median(t.none);
  const what = 'tscontain run --rm --network none busybox /bin/true';
  console.log(`  ${what.padEnd(50)} ${none.toFixed(1).padStart(6)} ms`);
  for (const v of Object.keys(variants)) {
    const s = median(t[`${v} start`]) - base,
      e = median(t[`${v} exit`]) - base;
    console.log(
      `  ${(v + ': host setup + gate').padEnd(50)} ${s.toFixed(1).padStart(6)} ms` +
        `  = ${((100 * s) / median(t.none)).toFixed(0)}% of run --network none`,
    );
    console.log(
      `  ${(v + ': exit').padEnd(50)} ${e.toFixed(1).padStart(6)} ms  = ${((100 * e) / median(t.none)).toFixed(0)}%`,
    );
  }
  console.log(`  (an empty sh in the namespace, subtracted: ${base.toFixed(1)} ms)`);
  console.log(`  (one program start, /bin/true, for scale: ${(median(t.one) - base).toFixed(1)} ms)`);
} finally {
  try {
    process.kill(Number(pid1), 'SIGKILL');
  } catch {
    /* gone */
  }
  fake.kill('SIGKILL');
  spawnSync(ip, ['netns', 'del', H]);
  rmSync(root, { recursive: true, force: true });
}
