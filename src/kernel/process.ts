// The container's process: the environment it gets, the user and directory it runs as, and the
// exec(2) that makes PID 1 the command.
import { lit, sh, type Sh } from '../plan/sh.js';
import { type Step } from '../plan/step.js';
import { showArgv } from '../plan/sh.js';
import { type Loader, viaLoader } from './rootfs.js';

export interface ProcessSpec {
  argv: string[];
  workdir: string;
  user?: { uid: number; gid: number };
}

/** Tell the supervisor the command was reached, and give the command the container's stderr. */
const handoff: Sh[] = [lit('echo started >&4; exec 4>&-'), lit('exec 2>&3 3>&-')];
/** The container's environment, nothing of this shell's (env -i started the shell with it). */
const ownEnv = lit('PATH=$tsc_cpath; unset PWD OLDPWD');

const who = (p: ProcessSpec) => (p.user ? ` as ${p.user.uid}:${p.user.gid}` : '');

/** After pivot_root: exec the command (as root), or unshare --wd --setuid from the old root. */
export function becomeStep(p: ProcessSpec, l: Loader, unshare: string): Step {
  const title = `Become the command: ${showArgv(p.argv)}${who(p)}, in ${showArgv([p.workdir])}`;
  if (!p.user)
    return { title, man: 'execve(2)', lines: [...handoff, sh`cd ${p.workdir}`, ownEnv, lit('exec "$@"')] };
  const u = p.user;
  return {
    title,
    man: 'execve(2), unshare(1), setresuid(2)',
    lines: [
      ...handoff,
      ownEnv,
      sh`exec ${viaLoader(l, unshare)} --wd=${p.workdir} --setgid ${u.gid} --setuid ${u.uid} -- "$@"`,
    ],
  };
}

/** --no-pivot: chroot(2) only; the host's root stays mounted and can be escaped. */
export function chrootBecomeStep(p: ProcessSpec, unshare: string): Step {
  const u = p.user ? sh` --setgid ${p.user.gid} --setuid ${p.user.uid}` : lit('');
  return {
    title: `Become the command with chroot, which can be escaped (no pivot_root): ${showArgv(p.argv)}${who(p)}`,
    man: 'chroot(2)',
    lines: [...handoff, ownEnv, sh`exec ${unshare} --root="$tsc_root" --wd=${p.workdir}${u} -- "$@"`],
  };
}
