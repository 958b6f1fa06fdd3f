// How `tscontain exec` starts on the host, before nsenter: exec-enter.pl joins the container's
// cgroups and opens the host programs the joining process runs (the loader, perl, its library
// directories) through read-only binds in a mount namespace of its own, as fds 3, 4, 5, ... So no
// process of the container ever has a writable host file as its exe (runc: CVE-2019-5736): a
// script `#!/proc/self/exe` run by exec makes the loader the interpreter, and /proc/PID/exe then
// answers EROFS to a write open. See docs/containment.md.
import { kernel_exec_enter_pl_code } from '../gen/assets.js';

/** The first fd the read-only files get: /proc/self/fd/(FIRST_FD + i) for the i-th. */
export const FIRST_FD = 3;

export interface EnterSpec {
  /** the host's perl, which runs exec-enter.pl (on the host, before entering) */
  perl: string;
  /** the container's cgroup directories, joined first */
  cgroups: string[];
  /** host files and directories opened read-only, in this order, from fd FIRST_FD */
  readOnly: string[];
}

/** The path under which the command finds the i-th read-only file. */
export const readOnlyFd = (i: number) => `/proc/self/fd/${FIRST_FD + i}`;

/** perl exec-enter.pl --join DIR/cgroup.procs ... --ro PATH ... -- COMMAND... (an argv: no sh reads it) */
export function enterArgv(e: EnterSpec, command: string[]): string[] {
  return [
    e.perl,
    '-e',
    kernel_exec_enter_pl_code,
    '--',
    ...e.cgroups.flatMap((d) => ['--join', `${d}/cgroup.procs`]),
    ...e.readOnly.flatMap((p) => ['--ro', p]),
    '--',
    ...command,
  ];
}
