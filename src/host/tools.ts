// Facts about the host that the plan needs, read from files (no subprocess on the hot path).
import { accessSync, constants, openSync, readSync, closeSync, realpathSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TscError } from '../errors.js';
import type { HostTools } from '../plan/plan.js';

import { SYSTEM_PATH as HOST_PATH } from '../store/paths.js';

/**
 * Absolute path of a host program, like `command -v`, but the system's directories first: a
 * runtime running as root takes util-linux from /usr/bin, not from whatever PATH puts before it.
 */
export function which(cmd: string, path = process.env.PATH || HOST_PATH): string | undefined {
  for (const d of HOST_PATH.split(':').concat(path.split(':'))) {
    if (!d) continue;
    const p = join(d, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The ELF program interpreter (PT_INTERP) of a binary, e.g. /lib64/ld-linux-x86-64.so.2; undefined for static binaries. */
export function elfInterpreter(file: string): string | undefined {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(64);
    readSync(fd, b, 0, 64, 0);
    if (b.readUInt32BE(0) !== 0x7f454c46) return undefined;
    const is64 = b[4] === 2;
    const le = b[5] === 1;
    const u16 = (buf: Buffer, o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
    const u32 = (buf: Buffer, o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    const word = (buf: Buffer, o: number) =>
      is64 ? Number(le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o)) : u32(buf, o);
    const phoff = word(b, is64 ? 32 : 28);
    const phentsize = u16(b, is64 ? 54 : 42);
    const phnum = u16(b, is64 ? 56 : 44);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (u32(ph, o) !== 3) continue; // PT_INTERP
      const off = word(ph, o + (is64 ? 8 : 4));
      const size = word(ph, o + (is64 ? 32 : 16));
      const s = Buffer.alloc(size);
      readSync(fd, s, 0, size, off);
      return s.toString('latin1').replace(/\0.*$/s, '');
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** awk for the log writers of detached containers: mawk needs -W interactive to not wait for a full buffer. */
function awkCommand(): { path: string; opts: string } {
  const awk = which('awk') ?? '/usr/bin/awk';
  let real = awk;
  try {
    real = realpathSync.native(awk);
  } catch {
    /* keep */
  }
  return { path: awk, opts: real.endsWith('mawk') ? '-Winteractive' : '' };
}

/** A program the plan needs, or one line saying how to get it. */
export function bin(name: string): string {
  const p = which(name);
  if (!p) {
    const pkg = name === 'ip' ? 'iproute2' : name === 'env' ? 'coreutils' : 'util-linux';
    throw new TscError(
      `${name} is not installed`,
      `install it (apt-get install ${pkg}); tscontain doctor checks everything`,
    );
  }
  return p;
}

/**
 * After pivot_root the host's root is only reachable below the old-root mount point, and a host
 * binary there cannot be started by name: its ELF interpreter path would be looked up in the
 * container's root. So the plan starts such binaries through the loader itself:
 *   ./LDSO --library-path LIBS ./usr/bin/perl ...
 * Paths are real paths (no absolute symlinks) because they are used relative to the old root.
 */
export function hostTools(need: { ip: boolean; awk: boolean; perl: boolean }): HostTools {
  const real = (p: string) => realpathSync.native(p); // realpath(3): one call, not an lstat per component
  const unshare = real(which('unshare') ?? '/usr/bin/unshare');
  const interp = elfInterpreter(unshare);
  const libPath: string[] = [];
  let ldso: string | undefined;
  if (interp) {
    ldso = real(interp);
    const triple = /ld-linux-([a-z0-9_]+)/.exec(ldso)?.[1]?.replace(/-/g, '_');
    const cands = [dirname(ldso), '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
    if (triple) cands.push(`/lib/${triple}-linux-gnu`, `/usr/lib/${triple}-linux-gnu`);
    for (const c of cands) {
      if (!existsSync(c)) continue;
      const r = real(c);
      if (!libPath.includes(r)) libPath.push(r);
    }
  }
  return {
    ldso,
    libPath,
    unshare,
    setpriv: bin('setpriv'),
    ip: need.ip ? bin('ip') : undefined,
    awk: need.awk ? awkCommand() : undefined,
    perl: need.perl ? real(which('perl') ?? '/usr/bin/perl') : undefined,
    bin,
  };
}
