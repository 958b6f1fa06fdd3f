// Run after the whole suite: nothing tscontain made may be left on the host.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { leftovers } from '../src/kernel/network/gc.js';
import { systemBin } from '../src/kernel/network/index.js';
import { netPaths } from '../src/kernel/network/store.js';
import { roots } from '../src/store/paths.js';

const problems: string[] = [];

const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
  .split('\n')
  .filter((l) => l.includes('tscontain'));
if (mounts.length) problems.push(`mounts: ${mounts.join('; ')}`);

function findCgroups(dir: string, depth: number, inside: boolean): string[] {
  if (depth > 5) return [];
  let ents: string[] = [];
  try {
    ents = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of ents) {
    const p = join(dir, e);
    try {
      if (!statSync(p).isDirectory()) continue;
    } catch {
      continue;
    }
    if (inside) out.push(p);
    out.push(...findCgroups(p, depth + 1, inside || e === 'tscontain'));
  }
  return out;
}
const cgs = findCgroups('/sys/fs/cgroup', 0, false);
if (cgs.length) problems.push(`cgroups: ${cgs.join(' ')}`);

for (const d of readdirSync('/proc')) {
  if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
  } catch {
    continue;
  }
  if (argv.some((a) => /tscontain.*\/plan\.sh$/.test(a)) || (argv[0] ?? '').endsWith('unshare'))
    problems.push(`process ${d}: ${argv.join(' ')}`);
}

try {
  // tsc0 (the bridge) may stay while empty (tscontain network prune removes it)
  const links = execFileSync('ip', ['-o', 'link'])
    .toString()
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0])
    .filter((n) => n?.startsWith('tsc') && n !== 'tsc0');
  if (links.length) problems.push(`network links: ${links.join(' ')}`);
} catch {
  /* no iproute2 */
}

const root = process.env.TSCONTAIN_ROOT;
if (root && existsSync(join(root, 'run'))) {
  const left = readdirSync(join(root, 'run')).filter((e) => /^[0-9a-f]{64}$/.test(e));
  if (left.length) problems.push(`runtime state: ${left.map((e) => join(root, 'run', e)).join(' ')}`);
}

problems.push(...leftovers(netPaths(roots()), undefined, systemBin));

const checks = 5;
if (problems.length) {
  process.stderr.write(
    `leak check: tscontain left these on the host:\n${problems.map((p) => '  - ' + p).join('\n')}\n`,
  );
}
process.stdout.write(`leak check: ${checks - (problems.length ? 1 : 0)} passed, ${problems.length ? 1 : 0} failed\n`);
process.exit(problems.length ? 1 : 0);
