// Where tscontain keeps things on the host. Everything carries "tscontain" in its path.
// TSCONTAIN_ROOT moves both roots at once (tests use a temp dir): $TSCONTAIN_ROOT/lib and $TSCONTAIN_ROOT/run.
import { join } from 'node:path';

export interface Roots {
  lib: string; // images and containers: /var/lib/tscontain
  run: string; // runtime state: /run/tscontain
}

export function roots(env: NodeJS.ProcessEnv = process.env): Roots {
  const r = env.TSCONTAIN_ROOT;
  if (r) return { lib: join(r, 'lib'), run: join(r, 'run') };
  return { lib: '/var/lib/tscontain', run: '/run/tscontain' };
}

export const imageDir = (r: Roots, name: string) => join(r.lib, 'images', name);
export const containerDir = (r: Roots, id: string) => join(r.lib, 'containers', id);
export const runDir = (r: Roots, id: string) => join(r.run, id);
