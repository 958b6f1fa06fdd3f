// The plan: every host change a container needs, in order, as data (steps of shell lines) and as
// the POSIX sh script that `tscontain run` executes. The printed plan *is* what runs, so the two
// cannot drift: `tscontain run --dry-run` and `tscontain plan` print exactly this script.
import { existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { type CgroupDriver } from './cgroup.js';
import { TscError } from './errors.js';
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
  /** the directories of step 1, absolute, in the order they are made (the cgroup's last) */
  dirs: string[];
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

/** Give the container's name back, if it is still ours (a failed claim never owned it). */
function release(spec: RunSpec): string[] {
  return spec.name ? [`tsc_owner=; read -r tsc_owner < "$tsc_names"/${q(spec.name)} 2>/dev/null; [ "$tsc_owner" != "$tsc_id" ] || rm -f "$tsc_names"/${q(spec.name)}`] : [];
}

/** Paths go into fstab(5) lines and overlayfs options, which cannot hold these characters. */
function plainPath(p: string): void {
  if (/[,:\s\\"$`]/.test(p)) throw new TscError(`the path ${p} contains a comma, colon, blank, quote or backslash, which fstab and overlayfs options cannot hold`, 'move it (or TSCONTAIN_ROOT) to a plain path');
}

/** sh that writes "PID START-TICKS" of this shell to a file, with builtins only (no program started). */
export const writePidFile = (file: string) => `read -r tsc_stat < /proc/$$/stat; tsc_start() { shift 19; echo "$$ $1"; }; tsc_start \${tsc_stat##*) } > ${file}`;

/**
 * sh that fails unless the process a pid file names ("PID START-TICKS") is alive and not a zombie:
 * state.ts markAlive, with builtins only.
 */
export const checkPidFile = (file: string) => `tsc_p=; tsc_t=; tsc_s=; { read -r tsc_p tsc_t < ${file}; read -r tsc_s < "/proc/\${tsc_p:-0}/stat"; } 2>/dev/null; tsc_alive() { [ $# -ge 20 ] && [ "$1" != Z ] && shift 19 && [ "$1" = "$tsc_t" ]; }; tsc_alive \${tsc_s##*) }`;

/** The /dev every container gets, made once and shared read-only under each container's own layer: device nodes, the usual links. */
const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];
const DEV_LINKS: [string, string][] = [['ptmx', 'pts/ptmx'], ['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2']];

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
  const config = JSON.stringify({ id: spec.id, name: spec.name, image: spec.image.name, rootfs: spec.image.rootfs, argv: spec.argv, env: spec.env, hostname: spec.hostname, workdir: spec.workdir, user: spec.user, network: spec.network, limits: spec.limits, rm: spec.rm, detach: spec.detach, readOnly: spec.readOnly, pivot: spec.pivot, created: new Date().toISOString() });
  // made by `tscontain run` itself just before it hands the plan over (one program start less on
  // every start); run on its own, the plan makes them. The last one is made last.
  const dirs = [run, ...['upper', 'work', 'dev/upper', 'dev/work', 'rootfs'].map((d) => join(ctr, d)), ...(spec.name ? [join(ctx.roots.lib, 'names')] : []), ...cg.all];
  const cgRefs = cg.mkdirs();
  host.push({
    title: `Create the container's directories and its cgroup tscontain/${spec.id.slice(0, 12)}… (cgroup v${cg.version})`,
    why: 'state lives under /run/tscontain and /var/lib/tscontain; cgroups(7): a cgroup is a directory in cgroupfs',
    lines: [
      '# tscontain run has made them already (without starting a program); run on its own, this plan makes them',
      `[ -d ${cgRefs[cgRefs.length - 1]} ] || mkdir -p "$tsc_run" "$tsc_ctr/upper" "$tsc_ctr/work" "$tsc_ctr/dev/upper" "$tsc_ctr/dev/work" "$tsc_root"${spec.name ? ' "$tsc_names"' : ''} ${cgRefs.join(' ')}`,
      '# who watches this container (pid and start time, /proc/PID/stat field 22): gc cleans up after a dead one',
      writePidFile('"$tsc_run/supervisor"'),
      `printf '%s\\n' ${q(config)} > "$tsc_ctr/config.json"`,
      ...(spec.name ? [
        `# claim the name: set -C (noclobber) creates the file only if it does not exist, so of two at once exactly one wins`,
        `( set -C; echo "$tsc_id" > "$tsc_names"/${q(spec.name)} ) 2>/dev/null || { echo ${q(`tscontain: the name "${spec.name}" is already in use by another container: choose another or remove that one (tscontain rm ${spec.name})`)} >&2; exit 1; }`,
      ] : []),
    ],
  });
  const missing = spec.volumes.filter((v) => !v.file && !existsSync(v.host));
  if (missing.length)
    host.push({ title: 'Make the missing host directories of -v', why: 'like docker: a bind mount needs its source', lines: [`mkdir -p ${missing.map((v) => q(v.host)).join(' ')}`] });
  const lim = spec.limits;
  const limText = [lim.memory !== undefined && `memory ${formatBytes(lim.memory)}`, lim.pids !== undefined && `pids ${lim.pids}`, lim.cpus !== undefined && `cpus ${lim.cpus}`, lim.cpuShares !== undefined && `cpu-shares ${lim.cpuShares}`].filter(Boolean).join(', ');
  const limitLines = cg.setLimits();
  if (limitLines.length)
    host.push({ title: `Set the limits${limText ? `: ${limText}` : ''}`, why: `cgroups(7): the kernel enforces them on every process in the cgroup (cgroup v${cg.version} files)`, lines: limitLines });
  host.push({
    title: 'Make the /dev skeleton once (device nodes and links every container gets)',
    why: 'mknod(2) via cp -a: only these devices, never the host\'s disks',
    lines: [
      'if [ ! -d "$tsc_dev" ]; then',
      '  mkdir -p "$tsc_dev.$tsc_id/pts" "$tsc_dev.$tsc_id/shm"',
      `  cp -a ${DEV_NODES.map((n) => '/dev/' + n).join(' ')} "$tsc_dev.$tsc_id/"`,
      ...DEV_LINKS.map(([n, t]) => `  ln -s ${t} "$tsc_dev.$tsc_id/${n}"`),
      '  mv -T "$tsc_dev.$tsc_id" "$tsc_dev" 2>/dev/null || rm -rf "$tsc_dev.$tsc_id"',
      'fi',
    ],
  });

  // ---- inside the namespaces, as PID 1, still on the host's root ----
  init.push({ title: 'Join the container\'s cgroup', why: 'cgroups(7): writing 0 to cgroup.procs moves the writer; its children inherit the cgroup', lines: [...cg.join(),
    '# the supervisor may have died before setpriv --pdeathsig was set, and then nobody would clean up: do not start.',
    '# If it dies later, this process dies by its death signal, or gc kills it: gc finds it by its cgroup from here on',
    checkPidFile('"$tsc_run/supervisor"')] });
  init.push({ title: `Set the hostname to ${spec.hostname}`, why: 'uts_namespaces(7): the hostname belongs to the new UTS namespace; the host\'s does not change', lines: [`printf '%s' ${q(spec.hostname)} > /proc/sys/kernel/hostname`] });
  if (spec.network === 'none')
    init.push({ title: 'Bring up lo in the new network namespace (in the background, while the mounts are made)', why: 'network_namespaces(7): a new namespace has only a loopback device, and it is down', lines: [`${bin('ip')} link set lo up & tsc_ip=$!`] });
  const mk = ',X-mount.mkdir';
  plainPath(spec.image.rootfs);
  plainPath(ctr);
  for (const v of spec.volumes) if (!v.file) plainPath(v.host);
  for (const p of [...spec.volumes.map((v) => v.path), ...spec.tmpfs.map((t) => t.path)]) plainPath(p);
  const root = 'overlay /. overlay lowerdir=$tsc_image,upperdir=$tsc_ctr/upper,workdir=$tsc_ctr/work 0 0';
  init.push({
    title: 'Mount the container\'s filesystems from its fstab: overlayfs as / (the image below, the container\'s own layer above), then /proc, a read-only /sys, /dev (the skeleton below, the container\'s own layer above), a new devpts and /dev/shm',
    why: 'mount_namespaces(7): these mounts exist only in the new mount namespace. overlayfs: writes go to upper/, the image and the /dev skeleton never change. proc(5): ps reads /proc, so it shows the new PID namespace. sysfs(5), tmpfs(5), pts(4). mount(8) --all --target-prefix mounts them all in one process ("/." because --all skips "/")',
    lines: [
      `printf '%s\\n' > "$tsc_run/fstab" \\`,
      ...[
        root,
        `proc   /proc    proc   nosuid,nodev,noexec${mk} 0 0`,
        `sysfs  /sys     sysfs  ro,nosuid,nodev,noexec${mk} 0 0`,
        'overlay /dev    overlay lowerdir=$tsc_dev,upperdir=$tsc_ctr/dev/upper,workdir=$tsc_ctr/dev/work,nosuid' + mk + ' 0 0',
        `devpts /dev/pts devpts newinstance,ptmxmode=0666,mode=0620,nosuid,noexec,X-mount.mkdir 0 0`,
        `shm    /dev/shm tmpfs  nosuid,nodev,noexec,mode=1777,size=65536k,X-mount.mkdir 0 0`,
        ...spec.tmpfs.map((t) => `tmpfs  ${t.path} tmpfs  nosuid,nodev${t.options ? ',' + t.options : ''}${mk} 0 0`),
        ...spec.volumes.filter((v) => !v.file).map((v) => `${v.host} ${v.path} none   bind${v.readOnly ? ',ro' : ''}${mk} 0 0`),
      ].map((l, i, a) => `  ${l.includes('$') ? `"${l}"` : q(l)}${i < a.length - 1 ? ' \\' : ''}`),
      `mount --all --fstab "$tsc_run/fstab" --target-prefix ${R}`,
      ...spec.volumes.filter((v) => v.file).flatMap((v) => [
        `[ -e ${R}${q(v.path)} ] || { mkdir -p ${R}${q(posix.dirname(v.path))}; : > ${R}${q(v.path)}; }`,
        `mount --bind${v.readOnly ? ' -o ro' : ''} ${q(v.host)} ${R}${q(v.path)}`,
      ]),
      ...(spec.workdir === '/' ? [] : [`mkdir -p ${R}${q(spec.workdir)}`]),
      ...(spec.readOnly ? [`mount -o remount,bind,ro ${R}   # --read-only: the root itself, not the mounts on it`] : []),
      ...(spec.network === 'none' ? ['wait "$tsc_ip"   # lo is up (set -e: or the container does not start)'] : []),
    ],
  });

  const user = spec.user ? ` --setgid ${spec.user.gid} --setuid ${spec.user.uid}` : '';
  const handoff = [
    `echo started >&4; exec 4>&-`,
    `exec 2>&3 3>&-`,
  ];
  const env = `PATH=$tsc_cpath; unset PWD OLDPWD   # the container's environment, nothing of this shell's`;
  if (spec.pivot && tools.ldso) {
    const rel = (p: string) => '.' + p;
    const ld = `${rel(tools.ldso)} --library-path ${tools.libPath.map(rel).join(':')}`;
    init.push({
      title: 'Switch root with pivot_root and detach the host\'s root',
      why: 'pivot_root(2), umount(2) MNT_DETACH: afterwards the host\'s files are unreachable, unlike with chroot(2). The old root is parked on /dev/shm, then detached from there; host programs run from it through the dynamic loader ld.so(8), because their interpreter path would be looked up in the new root',
      lines: [
        `cd ${R}`,
        `pivot_root . dev/shm`,
        `cd /dev/shm`,
        `${ld} ${rel(tools.umount)} -l /dev/shm`,
      ],
    });
    init.push({
      title: `Become the command: ${spec.argv.join(' ')}${spec.user ? ` as ${spec.user.uid}:${spec.user.gid}` : ''}, in ${spec.workdir}`,
      why: spec.user
        ? 'execve(2): the command replaces this shell and is PID 1 of the new PID namespace; unshare(1) without namespace flags only sets the directory (-w) and the user (-S, -G)'
        : 'execve(2): the command replaces this shell (exec) and is PID 1 of the new PID namespace',
      lines: [...handoff, ...(spec.user
        ? [env, `exec ${ld} ${rel(tools.unshare)} --wd=${q(spec.workdir)}${user} -- "$@"`]
        : [`cd ${q(spec.workdir)}`, env, 'exec "$@"'])],
    });
  } else {
    init.push({
      title: `Become the command with chroot (no pivot_root): ${spec.argv.join(' ')}`,
      why: 'chroot(2): changes only this process\'s root; the host\'s root stays mounted and a process with CAP_SYS_CHROOT can escape. Use pivot_root (the default) for real isolation',
      lines: [...handoff, env, `exec ${tools.unshare} --root="$tsc_root" --wd=${q(spec.workdir)}${user} -- "$@"`],
    });
  }

  // ---- after the container ended ----
  const rmCgroup = { title: 'Remove the container\'s cgroup', why: 'cgroups(7): an empty cgroup is removed with rmdir', lines: cg.remove() };
  if (spec.rm) {
    exit.push({
      title: 'Remove the container (--rm) and its cgroup',
      why: 'its layer, logs and state go; the image is untouched. cgroups(7): a cgroup is removed with rmdir(2), which find -delete does for its directory in the same pass (find never unlinks its control files: the kernel removes them with the cgroup)',
      lines: [...release(spec), ...cg.removeWith(['"$tsc_ctr"', '"$tsc_run"'])],
    });
  } else exit.push(rmCgroup, {
      title: 'Record how the container ended',
      why: 'tscontain ps -a, wait and inspect read it; written to a temporary file and renamed, so no reader sees half of it',
      lines: [
        `printf '{"status":"exited","exitCode":%s,"oomKilled":%s,"finishedAt":"%s"}\\n' "$tsc_rc" "$tsc_oomkilled" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" > "$tsc_ctr/state.json.tmp"`,
        'mv -f "$tsc_ctr/state.json.tmp" "$tsc_ctr/state.json"',
        'rm -rf "$tsc_run"',
      ],
    });

  const plan: Plan = { spec, ctr, run, dirs, cgroup: cg, host, init, exit, script: '' };
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

function logWriter(s: RunSpec, ctx: PlanContext): string {
  return `# Detached containers: stdout and stderr go through a FIFO each to an awk that timestamps every
# line and keeps at most ${formatBytes(s.logMaxSize)} per stream (the current file and one rotated).
tsc_log() {
  exec ${ctx.tools.awk} -v f="$tsc_ctr/$1.log" -v s="$1" -v cap=${Math.floor(s.logMaxSize / 2)} '
    BEGIN { while ((getline l < "/proc/stat") > 0) if (l ~ /^btime /) bt = substr(l, 7); close("/proc/stat") }
    { getline up < "/proc/uptime"; close("/proc/uptime"); split(up, u, " ")
      line = sprintf("%.2f %s %s", bt + u[1], s, $0); print line >> f; fflush(f); n += length(line) + 1
      if (n > cap) { close(f); system("mv -f \\047" f "\\047 \\047" f ".1\\047"); n = 0 } }'
}

`;
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
# It needs only util-linux, coreutils, findutils and iproute2 (no Node.js), and cleans up after itself.
# Each step names the kernel feature behind it and its manual page (man 7 namespaces, ...).
set -u
tsc_id=${s.id}
tsc_image=${q(s.image.rootfs)}
tsc_ctr=${q(p.ctr)}
tsc_run=${q(p.run)}
tsc_root="$tsc_ctr/rootfs"
tsc_dev=${q(join(ctx.roots.run, 'dev'))}
tsc_names=${q(join(ctx.roots.lib, 'names'))}
tsc_detach=${s.detach ? 1 : ''}
${p.cgroup.vars().join('\n')}
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

# A container that never started leaves nothing behind, --rm or not.
discard() {
${[...release(s), ...p.cgroup.removeWith(['"$tsc_ctr"', '"$tsc_run"'])].map((l) => '  ' + l).join('\n')}
}

# Signals for tscontain go to the container's PID 1 (unshare --fork forwards none). Like docker,
# the third SIGINT (Ctrl-C) kills the container outright.
tsc_ints=0
tsc_forward() {
  tsc_sig=$1
  if [ "$tsc_sig" = INT ]; then tsc_ints=$((tsc_ints + 1)); [ "$tsc_ints" -lt 3 ] || tsc_sig=KILL; fi
  tsc_pid1=
  [ -n "\${tsc_upid-}" ] && read -r tsc_pid1 tsc_more 2>/dev/null < "/proc/$tsc_upid/task/$tsc_upid/children"
  if [ -n "$tsc_pid1" ]; then kill -s "$tsc_sig" "$tsc_pid1" 2>/dev/null
  elif [ "$tsc_sig" = KILL ] && [ -n "\${tsc_upid-}" ]; then kill -s KILL "$tsc_upid" 2>/dev/null   # no PID 1 yet: unshare --kill-child takes it along
  fi
  return 0
}

# The supervisor ends: the watcher (below) goes first, then the exit code is the container's.
tsc_end() {
  [ -z "$tsc_watch" ] || kill "$tsc_watch" 2>/dev/null
  exit "$1"
}

${s.detach ? logWriter(s, ctx) : ''}supervise() {
  tsc_rc=0; tsc_oomkilled=false; tsc_watch=; tsc_orphan=
  export LC_ALL=C   # the programs started here need no translations (loading them costs ~1 ms each); the container gets only its own environment (env -i)
  exec 3>&2 5<&0   # 3: the container's stderr, 5: its stdin (a background job's own is /dev/null)
  trap 'tsc_orphan=1; tsc_forward KILL' ALRM   # tscontain died, so the container dies too
  if [ "\${1-}" = --die-with-parent ]; then
    # fd 7 is a pipe from tscontain that it never writes: the read returns when tscontain exits or
    # is killed, even by SIGKILL. What setpriv --pdeathsig does, without starting a program.
    { read -r tsc_x <&7; kill -s ALRM $$; } 2>/dev/null &
    tsc_watch=$!
    exec 7<&-
  fi
  # set -e: a failing step ends this shell, and the EXIT trap discards what was made so far
  trap 'echo "tscontain: preparing the container failed" >&2; discard; tsc_end 125' EXIT
  # stopped while it is prepared: nothing of it is kept (until it is started, there is no PID 1 to pass a signal to)
  trap 'trap - EXIT; discard; tsc_end 143' TERM; trap 'trap - EXIT; discard; tsc_end 130' INT; trap 'trap - EXIT; discard; tsc_end 129' HUP
  set -e; host_setup; set +e
  trap - EXIT
  [ -z "$tsc_orphan" ] || { discard; tsc_end 125; }
  if [ -n "$tsc_detach" ]; then
    mkfifo "$tsc_run/stdout" "$tsc_run/stderr"
    tsc_log out < "$tsc_run/stdout" & tsc_log err < "$tsc_run/stderr" &
    exec 1>"$tsc_run/stdout" 3>"$tsc_run/stderr" 5</dev/null
  fi
  for tsc_sig in TERM INT HUP QUIT USR1 USR2; do trap "tsc_forward $tsc_sig" $tsc_sig; done

  # ${nh + 1}. Start the container: new ${ns.map((f) => f.slice(2)).join(', ')} namespaces; its first process is PID 1
  #    unshare(1), namespaces(7); env(1): only the container's environment, INT and QUIT not ignored;
  #    setpriv(1) --pdeathsig: if this supervisor dies, even by SIGKILL, unshare dies, and PID 1 with it;
  #    PID 1 runs this script again (tsc_self: where it is when bin/tscontain read it with \`.\`)
  say ${q(ctx.narrate ? ctx.narrate({ title: `Start the container: unshare ${ns.join(' ')} --fork`, why: 'namespaces(7)', lines: [] }, nh + 1) : `${nh + 1}. Start the container`)}
  ${ctx.bin('env')} -i --default-signal=INT,QUIT ${env} \\
    ${ctx.bin('setpriv')} --pdeathsig KILL \\
    ${ctx.tools.unshare} ${ns.join(' ')} --fork --kill-child=SIGKILL --propagation private \\
    /bin/sh "\${tsc_self:-$0}" --init ${qa(s.argv)} ${s.interactive ? '<&5' : '</dev/null'} 5<&- 2>"$tsc_run/unshare.err" &
  tsc_upid=$!
  while :; do
    wait "$tsc_upid" 2>/dev/null; tsc_rc=$?   # 2>: sh's own "Killed" when it was, said below in tscontain's words
    kill -0 "$tsc_upid" 2>/dev/null || break   # still there: wait was interrupted by a signal
  done

  if [ ! -s "$tsc_run/started" ]; then
    if [ -z "$tsc_orphan" ]; then   # else tscontain was killed, and so was the container: nothing to say
      sed -e '/sigprocmask unblock failed/d' -e 's/^/tscontain: /' "$tsc_run/unshare.err" >&2   # that line: PID 1 was killed
      echo "tscontain: the container did not start" >&2
    fi
    tsc_rc=125
  else
    # util-linux 2.38 unshare reports a child killed by SIGKILL as exit 1 and this message
    while read -r tsc_line; do
      case $tsc_line in *'sigprocmask unblock failed'*) tsc_rc=137 ;; *) echo "tscontain: $tsc_line" >&2 ;; esac
    done < "$tsc_run/unshare.err"
  fi
${p.cgroup.oomCount().map((l) => '  ' + l).join('\n')}
  if [ "$tsc_oom" -gt 0 ]; then
    tsc_rc=137; tsc_oomkilled=true
    echo "tscontain: container ${s.id.slice(0, 12)} ran out of memory (limit ${s.limits.memory !== undefined ? formatBytes(s.limits.memory) : 'none'}) and was killed (OOM)" >&3
  fi
  trap '' TERM INT HUP QUIT USR1 USR2 ALRM
  if [ -n "$tsc_detach" ]; then exec 1>/dev/null 3>&-; wait; fi   # the log writers finish
  if [ -s "$tsc_run/started" ]; then cleanup; else discard; fi
  tsc_end "$tsc_rc"
}

case "\${1-}" in
  --init) shift; container_init "$@" ;;
  *) supervise "$@" ;;
esac
`;
}
