// Where tscontain keeps things on the host. Everything carries "tscontain" in its path.
// TSCONTAIN_ROOT moves both roots at once (tests use a temp dir): $TSCONTAIN_ROOT/lib and $TSCONTAIN_ROOT/run.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The system's program directories: the PATH of host programs, and a container's default PATH. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Roots {
  lib: string; // images and containers: /var/lib/tscontain
  run: string; // runtime state: /run/tscontain
  /** the host's bridge network: its subnet and addresses (every store shares the one bridge) */
  net?: string;
}

export function roots(env: NodeJS.ProcessEnv = process.env): Roots {
  const r = env.TSCONTAIN_ROOT;
  const net = env.TSCONTAIN_NET_DIR || '/var/lib/tscontain/network';
  if (r) return { lib: join(r, 'lib'), run: join(r, 'run'), net };
  return { lib: '/var/lib/tscontain', run: '/run/tscontain', net };
}

export const imageDir = (r: Roots, name: string) => join(r.lib, 'images', name);
export const containerDir = (r: Roots, id: string) => join(r.lib, 'containers', id);
export const runDir = (r: Roots, id: string) => join(r.run, id);

/**
 * The store's two roots, made if missing, and 0700: a container's layer and an image may hold
 * setuid files, which a host user must never reach (docker keeps /var/lib/docker 0710).
 */
export function ensureRoots(r: Roots): void {
  for (const d of [r.lib, r.run]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    if ((statSync(d).mode & 0o077) !== 0) chmodSync(d, 0o700);
  }
}
