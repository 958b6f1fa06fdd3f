// Host-side memory of a detached container: everything tscontain keeps running for it outside the
// container itself (its supervisor sh, unshare, the two log writers), as PSS (shared pages split
// between the processes that share them) and RSS. Target (issue 5): <= 5 MB per container.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

const N = Number(process.env.BENCH_CONTAINERS || 5);
const tsc = (...a) => execFileSync(process.execPath, ['bin/tscontain.cjs', ...a], { encoding: 'utf8' }).trim();
const kb = (pid, key) => {
  try {
    return Number(
      new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0,
    );
  } catch {
    return 0;
  }
};
const children = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
const inContainer = (pid) => {
  try {
    return /tscontain\//.test(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  } catch {
    return true;
  }
};

const ids = Array.from({ length: N }, () => tsc('run', '-d', 'busybox', 'sleep', '300'));
await new Promise((r) => setTimeout(r, 1000));
const run = process.env.TSCONTAIN_ROOT + '/run';
let pss = 0,
  rss = 0,
  procs = 0;
for (const id of ids) {
  const sup = Number(readFileSync(`${run}/${id}/supervisor`, 'utf8').split(' ')[0]); // "PID START-TICKS"
  const todo = [sup];
  while (todo.length) {
    const p = todo.pop();
    if (inContainer(p)) continue; // the container's own processes are not overhead
    pss += kb(p, 'Pss');
    rss += kb(p, 'Rss');
    procs++;
    todo.push(...children(p));
  }
}
tsc('rm', '-f', ...ids);
console.log(`${N} detached containers: ${procs / N} host-side processes each (supervisor sh, unshare, 2 log writers)`);
console.log(
  `host-side memory per container: PSS ${(pss / N / 1024).toFixed(2)} MB, RSS ${(rss / N / 1024).toFixed(2)} MB (target <= 5 MB)`,
);
console.log(`${readdirSync(run).filter((d) => /^[0-9a-f]{64}$/.test(d)).length} containers left running`);
