// One place that turns failures into messages and exit codes (after google/zx's src/error.ts).
// Exit codes follow docker: 125 the runtime failed, 126 cannot execute, 127 not found.

export const EXIT_RUNTIME = 125;
export const EXIT_CANNOT_EXEC = 126;
export const EXIT_NOT_FOUND = 127;

/** The commands that change the host need root: one line saying so, before anything is made. */
export function requireRoot(what: string, hint = 'run it as root, e.g. with sudo'): void {
  if (process.getuid && process.getuid() !== 0)
    throw new TscError(`${what} needs root (namespaces, mounts and cgroups)`, hint);
}

/** A child's end as docker reports it: its own code, or 128+N for signal N. */
export function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? process.getBuiltinModule('node:os').constants.signals[signal] : 0);
}

/** A failure the user can act on: one line saying what is wrong and what to do. */
export class TscError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode = EXIT_RUNTIME,
  ) {
    super(message);
    this.name = 'TscError';
  }
}

/** Print an error the docker way and return the exit code to use. Stack traces only with --debug. */
export function report(err: unknown, debug = false): number {
  if (err instanceof TscError) {
    process.stderr.write(`tscontain: ${err.message}${err.hint ? `: ${err.hint}` : ''}\n`);
    if (debug && err.stack) process.stderr.write(err.stack + '\n');
    return err.exitCode;
  }
  const e = err as NodeJS.ErrnoException;
  const msg = e?.message ? e.message : String(err);
  process.stderr.write(`tscontain: ${msg}${debug ? '' : ' (run with --debug for details)'}\n`);
  if (debug && e?.stack) process.stderr.write(e.stack + '\n');
  return EXIT_RUNTIME;
}
