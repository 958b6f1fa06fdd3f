// What a compiled seccomp filter depends on besides its profile, in a module of its own: the run
// path reads a kept filter with these alone, and loads the compiler (src/kernel/seccomp.ts, with its
// syscall tables and docker's profile) only when it has to compile.

export type SeccompArch = 'x86_64' | 'aarch64';

/** Node's process.arch as the compiler's arch, or undefined where tscontain has no syscall table. */
export function hostSeccompArch(nodeArch: string = process.arch): SeccompArch | undefined {
  return nodeArch === 'x64' ? 'x86_64' : nodeArch === 'arm64' ? 'aarch64' : undefined;
}

/** Bump when the compiler's output for the same input changes (kept filters are then rebuilt). */
export const SECCOMP_COMPILER_VERSION = 1;
