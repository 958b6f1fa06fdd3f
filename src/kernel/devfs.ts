// The /dev every container gets: made once, shared read-only below each container's own layer.
// Only these device nodes, copied with cp -a (mknod(2)); never the host's disks.
import { lit, sh } from '../plan/sh.js';
import type { Step } from '../plan/step.js';

export const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'].map((n) => `/dev/${n}`);
export const DEV_LINKS: [string, string][] = [
  ['ptmx', 'pts/ptmx'],
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
];

export function devSkeletonStep(): Step {
  return {
    title: 'Make the /dev skeleton once (device nodes and links every container gets)',
    man: 'mknod(2), cp(1)',
    lines: [
      lit('if [ ! -d "$tsc_dev" ]; then'),
      lit('  mkdir -p "$tsc_dev.$tsc_id/pts" "$tsc_dev.$tsc_id/shm"'),
      sh`  cp -a ${DEV_NODES} "$tsc_dev.$tsc_id/"`,
      ...DEV_LINKS.map(([n, t]) => sh`  ln -s ${t} "$tsc_dev.$tsc_id/"${n}`),
      lit('  mv -T "$tsc_dev.$tsc_id" "$tsc_dev" 2>/dev/null || rm -rf "$tsc_dev.$tsc_id"'),
      lit('fi'),
    ],
  };
}
