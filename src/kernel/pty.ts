// The container's terminal for `-t` (pty(7)) and its init for `--init`, as plan fragments. The
// programs are src/kernel/pty-relay.pl (the host side of -t, started by the supervisor at the start
// gate) and src/kernel/init.pl (the container's PID 1); docs/containment.md explains both. Pure:
// the caller says how perl is started and where things are.
import { sh, lit, type Sh } from '../plan/sh.js';

export interface TtyOptions {
  /** -i: the caller's stdin goes to the container (raw mode if it is a terminal) */
  interactive: boolean;
  /** -d: no caller terminal; the output goes to the supervisor's stdout, the log */
  detach: boolean;
}

export const PTY_MAN = 'pty(7), pidfd_open(2), openat2(2), ioctl_tty(2)';
export const INIT_MAN = 'pid_namespaces(7), signal(7), waitpid(2)';

/** pty-relay.pl's mode flag. */
export function relayFlags(o: TtyOptions): string[] {
  if (o.detach) return ['--detach'];
  return o.interactive ? ['--stdin'] : [];
}

/**
 * The supervisor at the start gate of a `-t` container, PID 1 waiting there after pivot_root: start
 * the relay with PID 1's host pid and read the slave's path, which it writes to its fd 6 (a FIFO).
 * If the relay fails or dies before, fd 6 closes empty: tsc_pts is then empty and the relay's
 * message is on stderr. Sets tsc_relay (its pid) and tsc_pts (`/dev/pts/N`, for become.pl --tty).
 * @param relay how pty-relay.pl is run, e.g. sh`${perl} ${file}`
 * @param pid1 a sh word with PID 1's host pid, e.g. lit('"$tsc_pid1"')
 * @param fifo a path for the FIFO, e.g. lit('"$tsc_run/pts"')
 * @param stdinFd the supervisor's fd with the caller's stdin (a background job's own is /dev/null)
 */
export function startRelay(o: TtyOptions, relay: Sh, pid1: Sh, fifo: Sh, stdinFd: number): Sh[] {
  const input = o.interactive && !o.detach ? sh`<&${stdinFd}` : lit('</dev/null');
  return [
    sh`mkfifo ${fifo}`,
    sh`${relay} ${relayFlags(o)} --report-fd 6 ${pid1} ${input} 6>${fifo} &`,
    lit('tsc_relay=$!'),
    sh`read -r tsc_pts < ${fifo} || tsc_pts=`,
    sh`rm -f ${fifo}`,
    lit('case ${tsc_pts#/dev/pts/} in "$tsc_pts"|\'\'|*[!0-9]*|0?*) tsc_pts= ;; esac   # /dev/pts/N or nothing'),
  ];
}

/**
 * After the container ended, before the supervisor prints anything: the relay copies the last of
 * the output and restores the caller's terminal, then ends by itself (EIO, or PID 1's pidfd). A
 * trapped signal interrupts `wait`, hence the loop.
 */
export const waitRelay: Sh[] = [
  lit('while [ -n "${tsc_relay-}" ]; do wait "$tsc_relay"; kill -0 "$tsc_relay" 2>/dev/null || tsc_relay=; done'),
];

/**
 * init.pl's arguments. The command's environment and working directory are data: init.pl runs with
 * an empty environment (ld.so and perl read theirs before its first line, while its cwd is still the
 * host's root) and sets these right before it executes the command.
 */
export function initArgs(s: { workdir: string; env: readonly string[]; argv: readonly string[] }): string[] {
  for (const e of s.env) if (!/^[^=]+=/s.test(e)) throw new Error(`not NAME=VALUE: ${e}`);
  if (!s.argv.length) throw new Error('no command');
  return ['--wd', s.workdir, ...s.env.flatMap((e) => ['--env', e]), '--', ...s.argv];
}
