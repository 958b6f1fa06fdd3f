// The container's process: its environment, user, capabilities, seccomp filter, cgroup namespace
// and working directory, all set by become.pl (src/kernel/become.pl) right before it execs the
// command, which makes PID 1 the command.
import { BECOME_MAN, becomeOptions, type BecomeSpec } from './capabilities.js';
import { joinSh, lit, sh, showArgv, type Sh } from '../plan/sh.js';
import type { Step } from '../plan/step.js';
import { type Loader, OLD_ROOT, viaLoader } from './rootfs.js';
import { INIT_MAN, initArgs } from './pty.js';

export interface ProcessSpec {
  argv: string[];
  workdir: string;
  env: string[];
  user?: { uid: number; gid: number };
}

/** Tell the supervisor the command was reached, and give the command the container's stderr. */
const handoff: Sh[] = [lit('echo started >&4; exec 4>&-'), lit('exec 2>&3 3>&-')];

const who = (p: ProcessSpec) => (p.user ? ` as ${p.user.uid}:${p.user.gid}` : '');

/** become.pl's options as continuation lines: one option and its value a line. */
function optionLines(opts: string[]): Sh[] {
  const out: Sh[] = [];
  for (let i = 0; i < opts.length; i++) {
    const o = opts[i];
    if (o !== '--' && opts[i + 1] !== undefined && !opts[i + 1].startsWith('--')) out.push(sh`${o} ${opts[++i]}`);
    else out.push(sh`${o}`);
  }
  return out;
}

/**
 * After pivot_root: host perl, started through the loader from the detached old root (the cwd),
 * runs become.pl (the plan's tsc_become_pl) with the container's settings as data; "$@" is the
 * command.
 */
export type BecomeSettings = Omit<BecomeSpec, 'workdir' | 'env' | 'uid' | 'gid'> & { seccomp?: { flags: number } };

/** The filter is long: it is the plan's variable tsc_seccomp_bpf, given to become.pl as hex. */
const seccompLines = (b: BecomeSettings): Sh[] =>
  b.seccomp
    ? [lit('--seccomp-hex "$tsc_seccomp_bpf"'), ...(b.seccomp.flags ? [sh`--seccomp-flags ${b.seccomp.flags}`] : [])]
    : [];

/** -t: the pty slave's path, which the supervisor passes through the start gate (tsc_go). */
const ttyLines = (tty: boolean): Sh[] => (tty ? [lit('--tty "$tsc_go"')] : []);

export function becomeStep(
  p: ProcessSpec & { tty: boolean; init: boolean },
  b: BecomeSettings,
  l: Loader,
  perl: string,
): Step {
  const title = `Become the command: ${showArgv(p.argv)}${who(p)}, in ${showArgv([p.workdir])}`;
  const ids = { uid: p.user?.uid, gid: p.user?.gid };
  if (!p.init) {
    const opts = becomeOptions({ ...b, detach: OLD_ROOT, workdir: p.workdir, env: p.env, ...ids });
    return {
      title,
      man: BECOME_MAN,
      lines: [
        ...handoff,
        joinSh(
          [
            sh`exec ${viaLoader(l, perl)} -e "$tsc_become_pl" --`,
            ...ttyLines(p.tty),
            ...seccompLines(b),
            ...optionLines(opts),
            lit('"$@"'),
          ],
          ' \\\n    ',
        ),
      ],
    };
  }
  // --init: become.pl makes the process what the container must be, then execs init.pl (host perl
  // again, from the old root, with an empty environment), which changes into the container and runs
  // the command as its child
  const opts = becomeOptions({ ...b, detach: OLD_ROOT, workdir: '/', env: [], keepCwd: true, ...ids });
  const init = initArgs({ workdir: p.workdir, env: p.env, argv: ['-'] }).slice(0, -1);
  return {
    title: `${title}, under init.pl as PID 1 (--init)`,
    man: `${BECOME_MAN}, ${INIT_MAN}`,
    lines: [
      ...handoff,
      joinSh(
        [
          sh`exec ${viaLoader(l, perl)} -e "$tsc_become_pl" --`,
          ...ttyLines(p.tty),
          ...seccompLines(b),
          ...optionLines(opts),
          sh`${viaLoader(l, perl)} -e "$tsc_init_pl" --`,
          ...optionLines(init),
          lit('"$@"'),
        ],
        ' \\\n    ',
      ),
    ],
  };
}

/**
 * --no-pivot: chroot(2) only; the host's root stays mounted and can be escaped. become.pl runs
 * from the host's root, chroots and execs the command in the image.
 */
export function chrootBecomeStep(p: ProcessSpec & { tty: boolean }, b: BecomeSettings, perl: string): Step {
  const opts = becomeOptions({ ...b, workdir: p.workdir, env: p.env, uid: p.user?.uid, gid: p.user?.gid });
  return {
    title: `Become the command with chroot, which can be escaped (no pivot_root): ${showArgv(p.argv)}${who(p)}`,
    man: `chroot(2), ${BECOME_MAN}`,
    lines: [
      ...handoff,
      joinSh(
        [
          sh`exec ${perl} -e "$tsc_become_pl" --`,
          lit('--chroot "$tsc_root"'),
          ...ttyLines(p.tty),
          ...seccompLines(b),
          ...optionLines(opts),
          lit('"$@"'),
        ],
        ' \\\n    ',
      ),
    ],
  };
}
