// --network container:NAME: the new container joins the network namespace of a running one (a
// pod, a sidecar). Its unshare gets no --net; instead the supervisor holds the other container's
// namespace open on fd 8 (checked to belong to the same process: pid *and* start time), and runs
// the whole start command under `nsenter --net=/proc/$$/fd/8`, which enters it and execs on:
// unshare, and PID 1 after it, are then born inside it. The held fd pins the namespace, so a pid
// reused in between can never hand over a stranger's.
import { join } from 'node:path';
import { type Sh, lit, sh } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';

/** The file, in a container's run dir, with "PID START-TICKS" of its PID 1 (written at the gate). */
export const PID1_FILE = 'pid1';

/** sh function: given the /proc/PID/stat fields after comm, sets tsc_net_state (field 3) and tsc_net_ticks (22). */
const statFn = lit('tsc_net_statf() { tsc_net_state=$1; shift 19; tsc_net_ticks=$1; }');

/**
 * At the gate: record PID 1's host pid and start time in "$tsc_run/pid1", so containers can join
 * this one's network namespace (and others can find PID 1: exec, kill). Builtins only.
 */
export function recordPid1Lines(pid: Sh): Sh[] {
  return [
    statFn,
    sh`read -r tsc_net_stat < /proc/${pid}/stat; tsc_net_statf ${lit('${tsc_net_stat##*) }')}`,
    sh`echo ${pid} "$tsc_net_ticks" > "$tsc_run/pid1"`,
  ];
}

/**
 * sh for the supervisor right after it started unshare in the background ($tsc_upid): wait for
 * unshare's child, PID 1, and set tsc_pid1 (builtins only: the fork takes well under a
 * millisecond). If unshare ends first, the container did not start: one line, exit 1.
 */
export function findPid1Lines(upid: Sh = lit('"$tsc_upid"')): Sh[] {
  return [
    lit('tsc_pid1='),
    lit('while [ -z "$tsc_pid1" ]; do'),
    sh`  read -r tsc_pid1 tsc_net_more 2>/dev/null < /proc/${upid}/task/${upid}/children || :`,
    sh`  [ -n "$tsc_pid1" ] || kill -0 ${upid} 2>/dev/null ||`,
    lit("    { echo 'tscontain: the container did not start' >&2; exit 1; }"),
    lit('done'),
  ];
}

export interface JoinTarget {
  name: string;
  runDir: string;
  /** its hostname, which the joining container takes (as docker's does) */
  hostname?: string;
  /**
   * The directory with the /etc/hosts, /etc/resolv.conf and /etc/hostname it shares (the upper
   * layer's etc of the first container down a container:NAME chain): bound over the joiner's own.
   */
  etcDir?: string;
}

/** The /etc files a container shares with those that join its network namespace. */
export const SHARED_ETC = ['hosts', 'resolv.conf', 'hostname'] as const;

/** fstab binds of the joined container's /etc files over the joiner's own (written first, so they exist). */
export function sharedEtcBinds(t: JoinTarget | undefined): { host: string; path: string }[] {
  return t?.etcDir ? SHARED_ETC.map((f) => ({ host: join(t.etcDir!, f), path: `/etc/${f}` })) : [];
}

/** Host setup: open the other container's network namespace on fd 8, or fail in one line. */
export function joinStep(t: JoinTarget): Step {
  const file = join(t.runDir, PID1_FILE);
  const fail = `tscontain: container ${t.name} is not running: --network container:${t.name} needs it running`;
  return {
    title: `Hold the network namespace of container ${t.name} open (fd 8), to start in it`,
    man: 'network_namespaces(7), proc(5) /proc/PID/ns/net and /proc/PID/stat, nsenter(1)',
    lines: [
      statFn,
      sh`tsc_net_pid=; tsc_net_t=; read -r tsc_net_pid tsc_net_t 2>/dev/null < ${file} || :`,
      lit("case $tsc_net_pid in ''|*[!0-9]*) tsc_net_pid=0 ;; esac"),
      sh`[ -r "/proc/$tsc_net_pid/ns/net" ] || { echo ${fail} >&2; exit 1; }`,
      lit('exec 8< "/proc/$tsc_net_pid/ns/net"'),
      lit('tsc_net_stat=; read -r tsc_net_stat 2>/dev/null < "/proc/$tsc_net_pid/stat" || :'),
      lit('tsc_net_state=; tsc_net_ticks=; [ -z "$tsc_net_stat" ] || tsc_net_statf ${tsc_net_stat##*) }'),
      sh`[ "$tsc_net_ticks" = "$tsc_net_t" ] && [ "$tsc_net_state" != Z ] || { exec 8<&-; echo ${fail} >&2; exit 1; }`,
    ],
  };
}

/**
 * Words to put before the start command (setpriv ... unshare ...): enter the held namespace. The
 * start command must also get `8<&-`, so the container does not inherit the fd; nsenter opens the
 * supervisor's fd 8 by path, it does not need its own copy, but the supervisor shell ($$) must
 * still be there: the start command runs in the background (`&`), never as the shell's last
 * command, which sh would exec. After unshare started: `exec 8<&-`.
 */
export const joinPrefix = (nsenter: string): Sh => sh`${nsenter} --net=/proc/$$/fd/8`;
