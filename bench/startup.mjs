// Start-up: `tscontain run --rm busybox /bin/true` against node -e 0, raw unshare and runc, timed by
// hyperfine. A VM's speed drifts by tens of percent within a minute, so the commands are measured
// in rounds, each round in a different order, and compared by their medians over all rounds.
// Usage: node bench/startup.mjs OUT_DIR NAME=COMMAND...
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [out, ...pairs] = process.argv.slice(2);
const cmds = pairs.map((p) => {
  const i = p.indexOf('=');
  return [p.slice(0, i), p.slice(i + 1)];
});
const rounds = Number(process.env.BENCH_ROUNDS || 8),
  runs = Number(process.env.BENCH_RUNS || 5);
const times = Object.fromEntries(cmds.map(([n]) => [n, []]));
for (let r = 0; r < rounds; r++) {
  const order = cmds.map((_, i) => cmds[(i + r) % cmds.length]);
  const file = join(out, `round${r}.json`);
  const res = spawnSync(
    'hyperfine',
    [
      '-N',
      '--warmup',
      '2',
      '--runs',
      String(runs),
      '--style',
      'none',
      '--export-json',
      file,
      ...order.flatMap(([n, c]) => ['-n', n, c]),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
  );
  if (res.status !== 0) {
    process.stderr.write(res.stderr);
    process.exit(res.status ?? 1);
  } // else only hyperfine's outlier warnings
  for (const x of JSON.parse(readFileSync(file, 'utf8')).results) times[x.command].push(...x.times);
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return ((s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2) * 1000;
};
const ms = Object.fromEntries(cmds.map(([n]) => [n, median(times[n])]));
console.log(`medians of ${rounds} rounds x ${runs} runs:`);
for (const [n] of cmds) console.log(`  ${n.padEnd(16)} ${ms[n].toFixed(1).padStart(7)} ms`);
writeFileSync(join(out, 'medians.json'), JSON.stringify(ms));
if (!ms['tscontain run']) process.exit(0); // another comparison (bench/import.sh): the caller reads medians.json
const ratio = ms['tscontain run'] / (ms['node -e 0'] + ms['raw unshare']);
console.log(
  `\ntscontain run / (node -e 0 + raw unshare) = ${ratio.toFixed(2)}  (target <= 1.5: ${ratio <= 1.5 ? 'met' : 'NOT met'})`,
);
console.log(
  `tscontain run - tscontain plan (executing the plan) = ${(ms['tscontain run'] - ms['tscontain plan']).toFixed(1)} ms`,
);
console.log(
  `tscontain plan - node -e 0 (our JavaScript, and bin/tscontain's sh) = ${(ms['tscontain plan'] - ms['node -e 0']).toFixed(1)} ms`,
);
if (ms['node .cjs run'])
  console.log(
    `node bin/tscontain.cjs run (Node.js starts the plan and waits) - bin/tscontain run (the plan is handed back and exec'd) = ${(ms['node .cjs run'] - ms['tscontain run']).toFixed(1)} ms`,
  );
if (ms['run bridge'])
  console.log(
    `--network bridge - --network none (veth, address, NAT) = ${(ms['run bridge'] - ms['tscontain run']).toFixed(1)} ms (target <= 10)`,
  );
if (ms['run unconfined'])
  console.log(
    `the seccomp filter (default - seccomp=unconfined) = ${(ms['tscontain run'] - ms['run unconfined']).toFixed(1)} ms`,
  );
if (ms['run privileged'])
  console.log(
    `masks, device rules and seccomp together (default - --privileged) = ${(ms['tscontain run'] - ms['run privileged']).toFixed(1)} ms`,
  );
if (ms['runc run']) console.log(`tscontain run / runc run = ${(ms['tscontain run'] / ms['runc run']).toFixed(2)}`);
