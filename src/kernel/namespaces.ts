// namespaces(7): which namespaces a container gets, and what is set up inside the new ones that
// belongs to no other concept (the hostname, the loopback device).
import { lit, sh, type Sh } from '../plan/sh.js';
import type { Step } from '../plan/step.js';

/** unshare(1) flags: a new UTS, IPC, mount and PID namespace; a network one unless it shares one. */
export function namespaceFlags(ownNet: boolean): string[] {
  return ['--uts', '--ipc', '--mount', '--pid', ...(ownNet ? ['--net'] : [])];
}

export function hostnameStep(hostname: string): Step {
  return {
    title: `Set the hostname to ${hostname}`,
    man: 'uts_namespaces(7)',
    lines: [sh`printf '%s' ${hostname} > /proc/sys/kernel/hostname`],
  };
}

/** lo comes up in the background while the mounts are made; `loopbackWait` waits for it. */
export function loopbackStep(ip: string): Step {
  return {
    title: 'Bring up lo in the new network namespace (in the background, while the mounts are made)',
    man: 'network_namespaces(7), ip-link(8)',
    lines: [sh`${ip} link set lo up & tsc_ip=$!`],
  };
}

export const loopbackWait: Sh = lit('wait "$tsc_ip"   # lo is up (set -e: or the container does not start)');
