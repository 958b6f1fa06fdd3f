// The plan: every host change a container needs, in order, as data (steps of shell lines) and as
// the POSIX sh script that `tscontain run` executes. The printed plan *is* what runs, so the two
// cannot drift: `tscontain run --dry-run` and `tscontain plan` print exactly this script.
import { join } from 'node:path';
import { type CgroupDriver } from './cgroup.js';
import { type HostTools } from './host.js';
import { formatBytes } from './options.js';
import { containerDir, runDir, type Roots } from './paths.js';
import { q, qa } from './sh.js';
import { type RunSpec } from './spec.js';

export interface Step {
  title: string;
  /** the kernel feature and its manual page */
  why: string;
  lines: string[];
}

export interface Plan {
  spec: RunSpec;
  ctr: string; // /var/lib/tscontain/containers/<id>
  run: string; // /run/tscontain/<id>
  cgroup: CgroupDriver;
  host: Step[]; // before the container starts, on the host
  init: Step[]; // inside the new namespaces, as the container's PID 1, before it becomes the command
  exit: Step[]; // after the container ended
  script: string;
}

export interface PlanContext {
  roots: Roots;
  cgroup: CgroupDriver;
  tools: HostTools;
  /** host programs by name -> absolute path */
  bin: (name: string) => string;
  /** how a step is narrated by --explain (default: its title) */
  narrate?: (step: Step, n: number) => string;
  explain?: boolean;
}

const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function namespaceFlags(s: RunSpec): string[] {
  return ['--uts', '--ipc', '--mount', '--pid', ...(s.network === 'none' ? ['--net'] : [])];
}

export function planRun(spec: RunSpec, ctx: PlanContext): Plan {
  const { cgroup: cg, tools, bin } = ctx;
  const ctr = containerDir(ctx.roots, spec.id);
  const run = runDir(ctx.roots, spec.id);
  const R = '"$tsc_root"';
  const host: Step[] = [];
  const init: Step[] = [];
  const exit: Step[] = [];

  // ---- on the host ----
  if (spec.image.recipe)
    host.push({ title: `Build the image ${spec.image.name} with its recipe`, why: 'a root filesystem is just a directory tree', lines: [`[ -d "$tsc_image" ] || sh ${q(spec.image.recipe)} "$tsc_image"`] });
  const config = JSON.stringify({ id: spec.id, name: spec.name, image: spec.image.name, rootfs: spec.image.rootfs, argv: spec.argv, env: spec.env, hostname: spec.hostname, workdir: spec.workdir, user: spec.user, network: spec.network, limits: spec.limits, rm: spec.rm, detach: spec.detach, readOnly: spec.readOnly, pivot: spec.pivot, cgroups: cg.all, created: new Date().toISOString() });
  host.push({
    title: 'Create the container\'s directories and record its config',
    why: 'state lives under /run/tscontain and /var/lib/tscontain',
    lines: [
      `mkdir -p "$tsc_run" ${spec.readOnly ? '' : '"$tsc_ctr/upper" "$tsc_ctr/work" '}"$tsc_root"`,
      `printf '%s\\n' ${q(config)} > "$tsc_ctr/config.json"`,
    ],
  });
  const lim = spec.limits;
  const limText = [lim.memory !== undefined && `memory ${formatBytes(lim.memory)}`, lim.pids !== undefined && `pids ${lim.pids}`, lim.cpus !== undefined && `cpus ${lim.cpus}`, lim.cpuShares !== undefined && `cpu-shares ${lim.cpuShares}`].filter(Boolean).join(', ');
  host.push({
    title: `Create cgroup tscontain/${spec.id.slice(0, 12)}… (v${cg.version})${limText ? ` with ${limText}` : ''}`,
    why: `cgroups(7): limits for every process in the group (cgroup v${cg.version})`,
    lines: cg.create(),
  });

  // ---- inside the namespaces, as PID 1, still on the host's root ----
  init.push({ title: 'Join the container\'s cgroup', why: 'cgroups(7): writing 0 to cgroup.procs moves the writer; children inherit it', lines: cg.join() });
  init.push({ title: `Set the hostname to ${spec.hostname}`, why: 'uts_namespaces(7): the hostname belongs to the new UTS namespace; the host\'s does not change', lines: [`printf '%s' ${q(spec.hostname)} > /proc/sys/kernel/hostname`] });
  if (spec.network === 'none')
    init.push({ title: 'Bring up lo in the new network namespace', why: 'network_namespaces(7): a new namespace has only a loopback device, down', lines: [`${bin('ip')} link set lo up`] });
  init.push({
    title: spec.readOnly ? 'Mount the image read-only as the root filesystem' : 'Mount the root filesystem: overlayfs, the image below, the container\'s own layer above',
    why: spec.readOnly ? 'mount(8) --bind -o ro: the container cannot write its root' : 'overlayfs: writes go to upper/, the image is never changed; the mount exists only in this mount namespace (mount_namespaces(7))',
    lines: [spec.readOnly
      ? `mount --bind -o ro "$tsc_image" ${R}`
      : `mount -t overlay -o "lowerdir=$tsc_image,upperdir=$tsc_ctr/upper,workdir=$tsc_ctr/work" overlay ${R}`,
    ...(spec.readOnly ? [] : [`mkdir -p ${R}/proc ${R}/sys ${R}/dev ${R}/tmp ${R}${q(spec.workdir)}`])],
  });
  init.push({ title: 'Mount /proc for the new PID namespace', why: 'proc(5), pid_namespaces(7): ps reads /proc, so it shows only the container\'s processes', lines: [`mount -t proc -o nosuid,nodev,noexec proc ${R}/proc`] });
  init.push({ title: 'Mount /sys read-only', why: 'sysfs(5): read-only, so the container cannot reconfigure the host\'s devices', lines: [`mount -t sysfs -o ro,nosuid,nodev,noexec sysfs ${R}/sys`] });
  init.push({
    title: 'Make a minimal /dev: null, zero, full, random, urandom, tty, pts, shm',
    why: 'tmpfs(5), devpts (pts(4)): only these devices, not the host\'s disks',
    lines: [
      `mount -t tmpfs -o nosuid,strictatime,mode=755,size=65536k tmpfs ${R}/dev`,
      `mkdir ${R}/dev/pts ${R}/dev/shm${spec.pivot ? ` ${R}/dev/.oldroot` : ''}`,
      `cp -a /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty ${R}/dev/`,
      `mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,nosuid,noexec devpts ${R}/dev/pts`,
      `mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm ${R}/dev/shm`,
      `ln -s pts/ptmx ${R}/dev/ptmx`,
      `ln -s /proc/self/fd ${R}/dev/fd`,
      `ln -s /proc/self/fd/0 ${R}/dev/stdin`,
      `ln -s /proc/self/fd/1 ${R}/dev/stdout`,
      `ln -s /proc/self/fd/2 ${R}/dev/stderr`,
    ],
  });

  const user = spec.user ? ` --setgid ${spec.user.gid} --setuid ${spec.user.uid}` : '';
  const handoff = [
    `echo started >&4; exec 4>&-`,
    `PATH=$tsc_cpath; unset PWD OLDPWD`,
    `exec 2>&3 3>&-`,
  ];
  if (spec.pivot && tools.ldso) {
    const rel = (p: string) => '.' + p;
    const ld = `${rel(tools.ldso)} --library-path ${tools.libPath.map(rel).join(':')}`;
    init.push({
      title: 'Switch root with pivot_root and detach the host\'s root',
      why: 'pivot_root(2), umount(2) MNT_DETACH: afterwards the host\'s files are unreachable, unlike with chroot(2). The old root is put in our /dev tmpfs, and host programs run from it through the dynamic loader ld.so(8), since their interpreter path would be looked up in the new root',
      lines: [
        `cd ${R}`,
        `pivot_root . dev/.oldroot`,
        `cd /dev/.oldroot`,
        `${ld} ${rel(tools.umount)} -l /dev/.oldroot`,
        `${ld} ${rel(tools.rmdir)} /dev/.oldroot`,
      ],
    });
    init.push({
      title: `Become the command: ${spec.argv.join(' ')}${spec.user ? ` as ${spec.user.uid}:${spec.user.gid}` : ''}, in ${spec.workdir}`,
      why: 'execve(2): the command replaces this shell and is PID 1 of the new PID namespace; unshare(1) -w/-S/-G sets its directory and user (with no namespace flags it only switches)',
      lines: [...handoff, `exec ${ld} ${rel(tools.unshare)} --wd=${q(spec.workdir)}${user} -- "$@"`],
    });
  } else {
    init.push({
      title: `Become the command with chroot (no pivot_root): ${spec.argv.join(' ')}`,
      why: 'chroot(2): changes only this process\'s root; the host\'s root stays mounted and a process with CAP_SYS_CHROOT can escape. Use pivot_root (the default) for real isolation',
      lines: [...handoff, `exec ${tools.unshare} --root="$tsc_root" --wd=${q(spec.workdir)}${user} -- "$@"`],
    });
  }

  // ---- after the container ended ----
  exit.push({ title: 'Remove the container\'s cgroup', why: 'cgroups(7): an empty cgroup is removed with rmdir', lines: cg.remove() });
  exit.push(spec.rm
    ? { title: 'Remove the container (--rm)', why: 'its layer and state go; the image is untouched', lines: ['rm -rf "$tsc_ctr" "$tsc_run"'] }
    : { title: 'Record how the container ended', why: 'tscontain ps -a and inspect read it', lines: [`printf '{"status":"exited","exitCode":%s,"oomKilled":%s,"finishedAt":"%s"}\\n' "$tsc_rc" "$tsc_oomkilled" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$tsc_ctr/state.json"`, 'rm -rf "$tsc_run"'] });

  const plan: Plan = { spec, ctr, run, cgroup: cg, host, init, exit, script: '' };
  plan.script = renderScript(plan, ctx);
  return plan;
}

function renderSteps(steps: Step[], ctx: PlanContext, first: number, indent = '  '): string {
  return steps.map((s, i) => {
    const n = first + i;
    const say = ctx.narrate ? ctx.narrate(s, n) : `${n}. ${s.title}`;
    return [`${indent}# ${n}. ${s.title}`, `${indent}#    ${s.why}`, `${indent}say ${q(say)}`, ...s.lines.map((l) => indent + l)].join('\n');
  }).join('\n\n');
}

export function renderScript(p: Plan, ctx: PlanContext): string {
  const s = p.spec;
  const env = s.env.map(q).join(' ');
  const ns = namespaceFlags(s);
  const nh = p.host.length;
  const ni = p.init.length;
  return `#!/bin/sh
# tscontain plan for container ${s.id.slice(0, 12)} (image ${s.image.name}): ${s.argv.join(' ')}
#
# This is exactly what \`tscontain run\` executes. Save it and run it as root: sh plan.sh
# It needs only util-linux, coreutils and iproute2 (no Node.js), and cleans up after itself.
# Each step names the kernel feature behind it and its manual page (man 7 namespaces, ...).
set -u
tsc_id=${s.id}
tsc_image=${q(s.image.rootfs)}
tsc_ctr=${q(p.ctr)}
tsc_run=${q(p.run)}
tsc_root="$tsc_ctr/rootfs"
tsc_explain=${ctx.explain ? 1 : ''}
say() { [ -z "$tsc_explain" ] || printf '%s\\n' "$*" >&3; }

# ---- on the host ----
host_setup() {
${renderSteps(p.host, ctx, 1)}
}

# ---- in the new namespaces: the container's PID 1 prepares its world, then becomes the command ----
container_init() {
  set -e
  tsc_cpath=$PATH; PATH=${HOST_PATH}
  exec 4>"$tsc_run/started"   # tells the supervisor that the command was reached

${renderSteps(p.init, ctx, nh + 2)}
}

# ---- after the container ended ----
cleanup() {
${renderSteps(p.exit, ctx, nh + ni + 2)}
}

# Signals for tscontain go to the container's PID 1 (unshare --fork forwards none).
tsc_forward() {
  tsc_pid1=
  [ -n "\${tsc_upid-}" ] && read -r tsc_pid1 tsc_more 2>/dev/null < "/proc/$tsc_upid/task/$tsc_upid/children"
  [ -n "$tsc_pid1" ] && kill -s "$1" "$tsc_pid1" 2>/dev/null
  return 0
}

supervise() {
  exec 3>&2 5<&0
  for tsc_sig in TERM INT HUP QUIT USR1 USR2; do trap "tsc_forward $tsc_sig" $tsc_sig; done
  trap 'tsc_forward KILL' ALRM   # parent-death signal: tscontain died, so the container dies too
  tsc_rc=0; tsc_oomkilled=false
  if ! (set -e; host_setup); then
    echo "tscontain: preparing the container failed" >&2
    cleanup; exit 125
  fi
  echo $$ > "$tsc_run/supervisor"   # tscontain gc: a container whose supervisor is gone gets cleaned up

  # ${nh + 1}. Start the container: new ${ns.map((f) => f.slice(2)).join(', ')} namespaces; its first process is PID 1
  #    unshare(1), namespaces(7); setpriv --pdeathsig: it dies if this script dies; env: plain signals, only the container's environment
  say ${q(ctx.narrate ? ctx.narrate({ title: `Start the container: unshare ${ns.join(' ')} --fork`, why: 'namespaces(7)', lines: [] }, nh + 1) : `${nh + 1}. Start the container`)}
  ${ctx.bin('env')} -i --default-signal=INT,QUIT ${env} \\
    ${ctx.bin('setpriv')} --pdeathsig KILL \\
    ${ctx.tools.unshare} ${ns.join(' ')} --fork --kill-child=SIGKILL --propagation private \\
    /bin/sh "$0" --init ${qa(s.argv)} ${s.interactive ? '<&5' : '</dev/null'} 5<&- 2>"$tsc_run/unshare.err" &
  tsc_upid=$!
  while :; do
    wait "$tsc_upid"; tsc_rc=$?
    kill -0 "$tsc_upid" 2>/dev/null || break   # still there: wait was interrupted by a signal
  done

  if [ ! -s "$tsc_run/started" ]; then
    sed 's/^/tscontain: /' "$tsc_run/unshare.err" >&2
    echo "tscontain: the container did not start" >&2
    tsc_rc=125
  elif grep -q 'sigprocmask unblock failed' "$tsc_run/unshare.err"; then
    tsc_rc=137   # util-linux 2.38 unshare reports a SIGKILLed child as exit 1 with this message
  fi
${p.cgroup.oomCount().map((l) => '  ' + l).join('\n')}
  if [ "$tsc_oom" -gt 0 ]; then
    tsc_rc=137; tsc_oomkilled=true
    echo "tscontain: container ${s.id.slice(0, 12)} ran out of memory (limit ${s.limits.memory !== undefined ? formatBytes(s.limits.memory) : 'none'}) and was killed (OOM)" >&2
  fi
  trap '' TERM INT HUP QUIT USR1 USR2 ALRM
  cleanup
  exit "$tsc_rc"
}

case "\${1-}" in
  --init) shift; container_init "$@" ;;
  *) supervise ;;
esac
`;
}
