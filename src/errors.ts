// One place that turns failures into messages and exit codes (after google/zx's src/error.ts).
// Exit codes follow docker: 125 the runtime failed, 126 cannot execute, 127 not found.

export const EXIT_RUNTIME = 125;
export const EXIT_CANNOT_EXEC = 126;
export const EXIT_NOT_FOUND = 127;

/** A failure the user can act on: one line saying what is wrong and what to do. */
export class TscError extends Error {
  constructor(message: string, readonly hint?: string, readonly exitCode = EXIT_RUNTIME) {
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
  const msg = e && e.message ? e.message : String(err);
  process.stderr.write(`tscontain: ${msg}${debug ? '' : ' (run with --debug for details)'}\n`);
  if (debug && e && e.stack) process.stderr.write(e.stack + '\n');
  return EXIT_RUNTIME;
}
