// Breakout probes against the default container, the way container-escape checklists (deepce,
// amicontained, CDK, the runc/docker CVE list) probe it. Each asserts what docker does. Every probe
// is harmless to the host even where the isolation fails: it reads a marker this file planted, opens
// kernel files for append without writing, writes only to files this file made, and makes sockets it
// never connects. containment.test.ts and seccomp.test.ts hold the probes that came first.
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  BIN,
  CLEAN_FDS,
  containerCgroup,
  env,
  isRoot,
  killStarted,
  privateStore,
  removeStoreContainers,
  tsc,
  until,
} from './helpers.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';
import { ociLayout, type Member } from '../fixtures/tarball.js';
import { DATA, syscallElf, type Arg } from '../fixtures/syscall-elf.js';
import { hostTools } from '../../src/host/tools.js';

const x86 = process.arch === 'x64';
// the v2 guest leaves these to the native suite (its time is short): the cgroup v2 layers they touch,
// the device program and the cgroup namespace, have their own tests there (containment, kernel-devices)
const lean = !!process.env.TSCONTAIN_TEST_LEAN;
const it = isRoot && !lean ? test : test.skip;
const itX86 = isRoot && x86 && !lean ? test : test.skip;
test.after.always(killStarted);
test.after.always(removeStoreContainers);
test.after.always(removeTempDirs);

const BUSYBOX = join(env.TSCONTAIN_ROOT, 'lib', 'images', 'busybox', 'rootfs');

/** A file on the host that no container should be able to read: its path and its secret. */
function hostMarker(): { path: string; secret: string } {
  const secret = `tscontain-host-secret-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  const path = join(tempDir('tscontain-breakout-'), 'marker');
  writeFileSync(path, `${secret}\n`);
  return { path, secret };
}
/** A path to the marker relative to any directory: enough `..` to reach the root of its tree first. */
const upTo = (path: string) => '../'.repeat(16) + path.slice(1);

/** Run a busybox sh script in a default container (plus options); stdout and stderr together. */
async function probe(script: string, opts: string[] = []) {
  const r = await tsc(['run', '--rm', ...opts, 'busybox', 'sh', '-c', script]);
  return { ...r, all: r.stdout + r.stderr };
}

/** A detached busybox container; its id. */
async function detached(script: string, opts: string[] = []): Promise<string> {
  const d = await tsc(['run', '-d', ...opts, 'busybox', 'sh', '-c', script]);
  if (d.code !== 0) throw new Error(`run -d: ${d.stderr}`);
  return d.stdout.trim();
}

const images: string[] = [];
test.after.always(async () => {
  // in the suite's store: a private store may be gone by now, and its images directory is the suite's
  for (const name of images.splice(0)) await tsc(['rmi', '-f', name]);
});
/**
 * An image made of the busybox image and the members of a second layer (symlinks an image controls),
 * in a store of its own whose images are the suite's (so under a name of its own, removed after).
 */
async function imageWith(members: Member[], config: Record<string, unknown> = {}) {
  const e = privateStore();
  const name = `tscontain-breakout-${process.pid}-${images.length + 1}`;
  images.push(name);
  const base = execFileSync('tar', ['-C', BUSYBOX, '-cf', '-', '.'], { maxBuffer: 1 << 28 });
  const layout = ociLayout(tempDir('tscontain-breakout-oci-'), [base, members], {
    Env: ['PATH=/usr/bin:/bin:/usr/sbin:/sbin'],
    Cmd: ['sh'],
    ...config,
  });
  const r = await tsc(['import', layout, name], { env: e });
  if (r.code !== 0) throw new Error(`import: ${r.stderr}`);
  return { env: e, name };
}

// ---- the working directory (CVE-2024-21626: runc's cwd through a leaked fd or /proc/self/cwd) ----

it("-w through /proc: the command's working directory is never the host's root", async (t) => {
  const m = hostMarker();
  for (const wd of ['/proc/self/cwd', '/proc/1/cwd', '/proc/thread-self/cwd', '/proc/self/fd/3', '/proc/self/fd/5']) {
    const r = await probe(`cat ${upTo(m.path)} 2>/dev/null; pwd`, ['-w', wd]);
    t.notRegex(r.all, new RegExp(m.secret), `run -w ${wd}: the host's files are reachable from the cwd`);
  }
});

it("an image's WorkingDir through /proc: the command's working directory is never the host's root", async (t) => {
  const m = hostMarker();
  const img = await imageWith([], { WorkingDir: '/proc/self/cwd', Cmd: ['sh', '-c', `cat ${upTo(m.path)}`] });
  const r = await tsc(['run', '--rm', img.name], { env: img.env });
  t.notRegex(r.stdout + r.stderr, new RegExp(m.secret));
});

it("exec -w through /proc: never one of exec's host directories or the caller's cwd", async (t) => {
  const m = hostMarker();
  const id = await detached('sleep 300');
  try {
    for (const wd of ['/proc/self/cwd', ...[3, 4, 5, 6, 7, 8].map((n) => `/proc/self/fd/${n}`)]) {
      const r = await tsc(['exec', '-w', wd, id, 'sh', '-c', `cat ${upTo(m.path)} 2>/dev/null; pwd`]);
      t.notRegex(r.stdout + r.stderr, new RegExp(m.secret), `exec -w ${wd}`);
    }
  } finally {
    await tsc(['rm', '-f', id]);
  }
});

// ---- exec's helpers (CVE-2016-9962, CVE-2019-5736: the joining process seen from inside) ----

it("exec: the container cannot reach the host through the /proc entries of exec's helper", async (t) => {
  // A racer inside (sh builtins only) looks through every fd and cwd of every process for a way up
  // to the marker; many --env values keep the joining process busy after it dropped to the
  // container's capabilities, while it still holds the host's loader, perl and library directories.
  const m = hostMarker();
  const racer =
    'm=$1; echo ready; while :; do for d in /proc/[0-9]*/fd/* /proc/[0-9]*/cwd; do ' +
    '[ -r "$d/$m" ] && { echo "ESCAPE through $d"; cat "$d/$m"; exit 0; }; done; done';
  const c = await tsc(['run', '-d', 'busybox', 'sh', '-c', racer, 'racer', upTo(m.path)]);
  t.is(c.code, 0, c.stderr);
  const rid = c.stdout.trim();
  try {
    await until(async () => /ready/.test((await tsc(['logs', rid])).stdout), 'the racer to start');
    const many = Array.from({ length: 2000 }, (_, i) => ['-e', `TSCONTAIN_PROBE_${i}=x`]).flat();
    let logs = '';
    for (let i = 0; i < 10 && !/ESCAPE/.test(logs); i++) {
      await tsc(['exec', ...many, rid, 'true']);
      logs = (await tsc(['logs', rid])).stdout;
    }
    t.notRegex(logs, new RegExp(m.secret), logs);
    t.notRegex(logs, /ESCAPE/);
  } finally {
    await tsc(['rm', '-f', rid]);
  }
});

it('exec: no process of the container has a writable host file as its /proc/PID/exe (CVE-2019-5736)', async (t) => {
  // A script whose interpreter is /proc/self/exe, run by exec, makes the exe of whatever execs it
  // (the host's loader, behind become.pl) the program of a process of the container; its argument,
  // a FIFO, holds it there. The container opens that exe for reading, lets the process end, then
  // asks for the same file for writing (an open for append, nothing written).
  const inside = [
    'mkfifo /tmp/fifo; printf "#!/proc/self/exe /tmp/fifo\\n" > /tmp/x; chmod 755 /tmp/x; echo ready',
    'me=$(readlink /proc/$$/exe)',
    'while :; do for p in /proc/[0-9]*; do e=$(readlink $p/exe 2>/dev/null) && [ "$e" != "$me" ] && ' +
      '{ pid=${p#/proc/}; break 2; }; done; done',
    'echo "exe of $pid: $(readlink /proc/$pid/exe)"; exec 3</proc/$pid/exe',
    'echo go > /tmp/fifo; while [ -e /proc/$pid ]; do :; done',
    '( : >> /proc/$$/fd/3 ) 2>/dev/null && echo "HOST FILE OPEN FOR WRITING: $(readlink /proc/$$/fd/3)"',
    'echo done; sleep 300',
  ].join('\n');
  const id = await detached(inside);
  try {
    await until(async () => /ready/.test((await tsc(['logs', id])).stdout), 'the container to be ready');
    await tsc(['exec', id, '/tmp/x']);
    const logs = await until(async () => {
      const l = (await tsc(['logs', id])).stdout;
      return /done/.test(l) && l;
    }, 'the probe to end');
    t.notRegex(logs, /HOST FILE OPEN FOR WRITING/, logs);
  } finally {
    await tsc(['rm', '-f', id]);
  }
});

/** The host pids of a container's processes (its pids cgroup, or the one v2 cgroup). */
function containerPids(id: string): number[] {
  const procs = join(containerCgroup(id, 'pids'), 'cgroup.procs');
  return readFileSync(procs, 'utf8').split('\n').filter(Boolean).map(Number);
}

/**
 * Whether the exe of one of the container's processes, once that process is gone, opens for
 * writing: the test keeps the reference the container could keep (an fd to /proc/PID/exe, passed out
 * to a second container through a socket of a shared volume, say), ends the container, then opens it
 * for append and writes nothing. The exe is the host's loader (the only host file a process of the
 * container may run as); null: no process of the container has it as its exe.
 */
async function exeOpensForWriting(t: ExecutionContext, id: string, e: NodeJS.ProcessEnv = env): Promise<string | null> {
  const ldso = statSync(hostTools({ ip: false, awk: false, perl: false }).ldso!);
  const same = (p: number) => {
    try {
      const s = statSync(`/proc/${p}/exe`);
      return s.dev === ldso.dev && s.ino === ldso.ino;
    } catch {
      return false;
    }
  };
  const pid = await until(() => containerPids(id).find(same), "a process of the container with the host's loader");
  const held = openSync(`/proc/${pid}/exe`, 'r');
  try {
    await tsc(['rm', '-f', id], { env: e });
    await until(() => !existsSync(`/proc/${pid}`), 'the process to end');
    // ETXTBSY (checked before the mount): another container runs the loader right now; try again
    // for a while, then take it as the answer (refused, but says nothing about the mount)
    let tried = 'ETXTBSY';
    await until(
      () => {
        try {
          closeSync(openSync(`/proc/self/fd/${held}`, 'a'));
          tried = 'opened';
        } catch (e) {
          tried = (e as NodeJS.ErrnoException).code!;
        }
        return tried !== 'ETXTBSY';
      },
      'an answer other than ETXTBSY',
      10_000,
    ).catch(() => undefined);
    t.log(`the host's loader, the exe of ${pid}, opened for append after it ended: ${tried}`);
    return tried === 'opened' ? readlinkSync(`/proc/self/fd/${held}`) : null;
  } finally {
    closeSync(held);
  }
}

it("run: a command `#!/proc/self/exe` is the host's loader, which never opens for writing", async (t) => {
  // the interpreter resolves to become.pl's exe; its argument, a FIFO, holds the loader there
  const img = await imageWith(
    [
      { name: 'x', data: '#!/proc/self/exe /fifo\n', mode: 0o755 },
      { name: 'fifo', type: 'fifo' },
    ],
    { Cmd: ['/x'] },
  );
  const d = await tsc(['run', '-d', '--network', 'none', img.name], { env: img.env });
  t.is(d.code, 0, d.stderr);
  const id = d.stdout.trim();
  try {
    t.is(await exeOpensForWriting(t, id, img.env), null);
  } finally {
    await tsc(['rm', '-f', id], { env: img.env });
  }
});

it("--init: init.pl as PID 1 is the host's loader, which never opens for writing", async (t) => {
  const id = await detached('sleep 300', ['--init', '--network', 'none']);
  try {
    t.is(await exeOpensForWriting(t, id), null);
  } finally {
    await tsc(['rm', '-f', id]);
  }
});

it('--init: the host program that is PID 1 cannot be opened for writing from inside', async (t) => {
  const r = await probe('( : >> /proc/1/exe ) 2>/dev/null && echo EXE-WRITABLE || echo refused', ['--init']);
  t.regex(r.stdout, /refused/, r.all);
});

// ---- the caller's terminal and files ----

it("without -t the container has no controlling terminal, and not the caller's terminal as its output", async (t) => {
  const inner =
    `sh ${CLEAN_FDS} ${BIN} run --rm busybox sh -c ` +
    `'echo tty_nr=$(cut -d" " -f7 /proc/self/stat); : </dev/tty && echo DEVTTY-OPEN; [ -t 1 ] && echo STDOUT-IS-A-TTY; true'`;
  const r = spawnSync('script', ['-qec', inner, '/dev/null'], { env, encoding: 'utf8', timeout: 60000 });
  const out = r.stdout.replace(/\r/g, '');
  t.regex(out, /^tty_nr=0$/m, `the caller's terminal is the container's controlling terminal: ${out}`);
  t.notRegex(out, /DEVTTY-OPEN/, '/dev/tty opens the caller terminal (TIOCSTI reaches the caller shell)');
  t.notRegex(out, /STDOUT-IS-A-TTY/);
});

it('-i with stdin from a host file: the container cannot write into that file', async (t) => {
  const dir = tempDir('tscontain-breakout-stdin-');
  const file = join(dir, 'input');
  writeFileSync(file, 'caller data\n');
  const fd = openSync(file, 'r');
  try {
    const r = spawnSync(
      'sh',
      [
        CLEAN_FDS,
        BIN,
        'run',
        '--rm',
        '-i',
        'busybox',
        'sh',
        '-c',
        'echo INJECTED-BY-CONTAINER >> /proc/$$/fd/0; cat >/dev/null',
      ],
      { env, stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8', timeout: 60000 },
    );
    t.is(r.status, 0, r.stderr);
  } finally {
    closeSync(fd);
  }
  t.is(readFileSync(file, 'utf8'), 'caller data\n', "the caller's file was opened for writing from inside");
});

// ---- an image's symlinks and tscontain's own writes before the root switch ----

it("an image's symlinks never lead tscontain to create files or directories on the host", async (t) => {
  const host = tempDir('tscontain-breakout-target-');
  const img = await imageWith(
    [
      { name: 'w', type: 'symlink', link: host },
      { name: 'data', type: 'symlink', link: host },
    ],
    { WorkingDir: '/data/image-workdir' },
  );
  const src = tempDir('tscontain-breakout-src-');
  writeFileSync(join(src, 'f'), 'volume file\n');
  const runs = [
    [], // the image's WorkingDir
    ['-w', '/w/workdir'],
    ['-w', '/', '-v', `${src}:/data/dir-volume`],
    ['-w', '/', '-v', `${join(src, 'f')}:/data/file-volume`],
    ['-w', '/', '-v', `${join(src, 'f')}:/data/sub/file-volume`],
    ['-w', '/', '--tmpfs', '/data/tmpfs'],
  ];
  for (const opts of runs) await tsc(['run', '--rm', ...opts, img.name, 'true'], { env: img.env });
  t.deepEqual(readdirSync(host), [], 'made on the host through the image symlinks');
});

// ---- the store on the host ----

it("a host user cannot reach a container's layer or an image's files (setuid files planted inside)", async (t) => {
  // a fresh store in a directory others may enter (as /var/lib is), so tscontain makes every mode below it
  const parent = tempDir('tscontain-breakout-store-');
  chmodSync(parent, 0o755);
  const root = join(parent, 'store');
  const e = { ...env, TSCONTAIN_ROOT: root };
  const tar = join(parent, 'busybox.tar');
  execFileSync('tar', ['-C', BUSYBOX, '-cf', tar, '.']);
  t.is((await tsc(['import', tar, 'bb'], { env: e })).code, 0);
  const d = await tsc(['run', '-d', 'bb', 'sh', '-c', 'cp /bin/busybox /planted && chmod 4755 /planted && sleep 300'], {
    env: e,
  });
  t.is(d.code, 0, d.stderr);
  const id = d.stdout.trim();
  try {
    const planted = join(root, 'lib', 'containers', id, 'upper', 'planted');
    await until(() => {
      try {
        return (statSync(planted).mode & 0o4000) !== 0;
      } catch {
        return false;
      }
    }, 'the setuid file in the container layer');
    const asNobody = (p: string) =>
      spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'test', '-e', p]).status;
    t.not(asNobody(planted), 0, `nobody reaches the container's setuid file ${planted}`);
    t.not(
      asNobody(join(root, 'lib', 'images', 'bb', 'rootfs', 'bin', 'busybox')),
      0,
      "nobody reaches the image's files",
    );
  } finally {
    await tsc(['rm', '-f', id], { env: e });
    await tsc(['rmi', 'bb'], { env: e });
  }
});

// ---- system calls, from programs of our own (busybox has no way to make a raw system call) ----

/** Run syscall probes (name → program) in one default container: name → errno. */
async function syscalls(progs: Record<string, Buffer>, opts: string[] = []): Promise<Record<string, number>> {
  const dir = tempDir('tscontain-breakout-elf-');
  for (const [name, bytes] of Object.entries(progs)) writeFileSync(join(dir, name), bytes, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const script = `for p in /p/*; do "$p"; echo "\${p#/p/}=$?"; done`;
  const r = await probe(script, ['-v', `${dir}:/p:ro`, ...opts]);
  return Object.fromEntries([...r.stdout.matchAll(/^([\w-]+)=(\d+)$/gm)].map((x) => [x[1], Number(x[2])]));
}

itX86(
  'seccomp: no AF_VSOCK or AF_ALG socket through socket(2); the i386 socketcall(2) stays open, as in docker',
  async (t) => {
    const sc = (family: number, type: number) => syscallElf(102, [1, DATA], { i386: true, data: [family, type, 0] });
    const r = await syscalls({
      'socketcall-inet': sc(2, 2),
      'socketcall-vsock': sc(40, 1),
      'socket-vsock': syscallElf(41, [40, 1, 0]),
      'socket-alg': syscallElf(41, [38, 5, 0]),
    });
    t.is(r['socket-vsock'], 1, 'socket(AF_VSOCK): EPERM');
    t.is(r['socket-alg'], 1, 'socket(AF_ALG): EPERM');
    // socketcall's arguments are behind a pointer, which a filter cannot read; denying it would take
    // every socket from 32-bit programs (Debian's i386 glibc calls it for all of them). moby allows it
    // too and leaves the rest to AppArmor: a known gap, written down in docs/containment.md.
    t.log(`i386 socketcall: inet ${r['socketcall-inet']}, vsock ${r['socketcall-vsock']} (0: a socket was made)`);
  },
);

itX86("seccomp: the calls docker's profile denies answer EPERM in the container, by every ABI", async (t) => {
  // Arguments are null pointers or bad values, so a call that got through would fail in the kernel
  // (EFAULT, EINVAL, EBADF) without acting. x86_64 numbers; x32 is the same number | 0x40000000.
  const X32 = 0x40000000;
  const calls: [string, number, Arg[], boolean?][] = [
    ['bpf', 321, [0, 0, 0]],
    ['perf_event_open', 298, [0, 0, -1, -1, 0]],
    ['userfaultfd', 323, [0x80000]],
    ['io_uring_setup', 425, [1, 0]],
    ['open_by_handle_at', 304, [-100, 0, 0]],
    ['kexec_load', 246, [0, 0, 0, 0xdead0000]],
    ['kexec_file_load', 320, [-1, -1, 0, 0, 0xdead0000]],
    ['keyctl', 250, [0, -2, 0]],
    ['add_key', 248, [0, 0, 0, 0, -2]],
    ['request_key', 249, [0, 0, 0, 0]],
    ['mount', 165, [0, 0, 0, 0, 0]],
    ['umount2', 166, [0, 0]],
    ['pivot_root', 155, [0, 0]],
    ['unshare-user', 272, [0x10000000]],
    ['unshare-mnt', 272, [0x20000]],
    ['setns', 308, [-1, 0]],
    ['fsopen', 430, [0, 0]],
    ['open_tree', 428, [-100, 0, 1]],
    ['fsmount', 432, [-1, 0, 0]],
    ['move_mount', 429, [-1, 0, -1, 0, 0]],
    ['init_module', 175, [0, 0, 0]],
    ['finit_module', 313, [-1, 0, 0]],
    ['delete_module', 176, [0, 0x800]],
    ['swapon', 167, [0, 0]],
    ['swapoff', 168, [0]],
    ['acct', 163, [1]],
    ['syslog', 103, [10, 0, 0]],
    ['quotactl', 179, [0, 0, 0, 0]],
    ['reboot', 169, [0, 0, 0, 0]],
    ['settimeofday', 164, [0, 0]],
    ['clock_settime', 227, [0, 0]],
    ['ioperm', 173, [0x80, 1, 1]],
    ['iopl', 172, [3]],
    ['fanotify_init', 300, [0, 0]],
    ['sethostname', 170, [0, 1]],
    ['setdomainname', 171, [0, 1]],
    ['personality', 135, [0x0040000]],
    ['lookup_dcookie', 212, [0, 0, 0]],
    ['x32-unshare-user', X32 | 272, [0x10000000]],
    ['x32-keyctl', X32 | 250, [0, -2, 0]],
    ['x32-socket-vsock', X32 | 41, [40, 1, 0]],
    // i386 numbers
    ['i386-unshare-user', 310, [0x10000000], true],
    ['i386-keyctl', 288, [0, -2, 0], true],
    ['i386-mount', 21, [0, 0, 0, 0, 0], true],
    ['i386-bpf', 357, [0, 0, 0], true],
    ['i386-socket-vsock', 359, [40, 1, 0], true],
  ];
  const progs = Object.fromEntries(calls.map(([n, nr, a, i386]) => [n, syscallElf(nr, a, { i386 })]));
  progs.getpid = syscallElf(39);
  progs['clone3'] = syscallElf(435, [0, 0]);
  const r = await syscalls(progs);
  t.is(r.getpid, 0, `the probes run: ${JSON.stringify(r)}`);
  t.is(r.clone3, 38, 'clone3: ENOSYS, so the C library falls back to clone');
  // ENOSYS: the kernel has no such ABI (x32 is often off) or no such call
  for (const [n] of calls) t.true(r[n] === 1 || r[n] === 38, `${n}: ${r[n]}`);
});

itX86("-u 1000: a user's process gets nothing more from the same calls", async (t) => {
  const r = await syscalls({ 'unshare-user': syscallElf(272, [0x10000000]), getpid: syscallElf(39) }, ['-u', '1000']);
  t.is(r.getpid, 0);
  t.is(r['unshare-user'], 1);
});

// ---- devices, kernel files, namespaces, network ----

it('devices: nodes the container makes for memory, ports, terminals, tun, fuse, loop and the host pty 0 cannot be opened', async (t) => {
  const nodes = [
    ['mem', 'c 1 1'],
    ['kmem', 'c 1 2'],
    ['port', 'c 1 4'],
    ['tty1', 'c 4 1'],
    ['ttyS0', 'c 4 64'],
    ['console', 'c 5 1'],
    ['tun', 'c 10 200'],
    ['fuse', 'c 10 229'],
    ['loop-control', 'c 10 237'],
    ['kvm', 'c 10 232'],
    ['loop0', 'b 7 0'],
    ['hostpts0', 'c 136 0'],
  ];
  const script = nodes
    .map(
      ([n, spec]) =>
        `mknod /tmp/${n} ${spec} && { ( : < /tmp/${n} ) 2>/dev/null && echo ${n}-OPENED || echo ${n}-refused; }`,
    )
    .join('; ');
  const r = await probe(script);
  for (const [n] of nodes) t.regex(r.stdout, new RegExp(`${n}-refused`), r.all);
});

it('kernel files that change the machine cannot be opened for writing; masked files are empty', async (t) => {
  const files = [
    '/proc/sys/kernel/modprobe',
    '/proc/sys/kernel/hotplug',
    '/proc/sys/fs/binfmt_misc/register',
    '/sys/kernel/uevent_helper',
    '/proc/sysrq-trigger',
    '/proc/sys/kernel/panic',
    '/proc/sys/net/ipv4/ip_forward',
    '/sys/power/state',
    '/sys/kernel/mm/transparent_hugepage/enabled',
    '/sys/class/net/eth0/mtu',
    '/proc/irq/default_smp_affinity',
  ];
  const script = files.map((f) => `[ ! -e ${f} ] || { ( : >> ${f} ) 2>/dev/null && echo "OPEN ${f}"; }`).join('; ');
  const r = await probe(
    `${script}; head -c 1 /proc/kmsg >/dev/null 2>&1 && echo KMSG-READ; dmesg >/dev/null 2>&1 && echo DMESG; true`,
  );
  t.notRegex(r.stdout, /OPEN /, r.all);
  t.notRegex(r.stdout, /KMSG-READ|DMESG/);
});

it("namespaces: every one but the user and time namespaces is the container's own; no host process or IPC object in sight", async (t) => {
  const kinds = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'uts'];
  const host = Object.fromEntries(kinds.map((k) => [k, readlinkSync(`/proc/self/ns/${k}`)]));
  const key = 0x7c5a0000 + (process.pid % 0xffff);
  const shm = spawnSync('ipcmk', ['-M', '4096', '-p', '0600', '-K', String(key)], { encoding: 'utf8' });
  const shmid = /(\d+)/.exec(shm.stdout)?.[1];
  try {
    const r = await probe(
      `for k in ${kinds.join(' ')} user; do echo "$k $(readlink /proc/self/ns/$k)"; done; ` +
        'echo procs=$(ls -d /proc/[0-9]* | wc -l); cat /proc/sysvipc/shm',
    );
    for (const k of kinds) {
      const line = new RegExp(`^${k} (.*)$`, 'm').exec(r.stdout)?.[1];
      t.truthy(line, r.all);
      t.not(line, host[k], `the ${k} namespace is the host's`);
    }
    t.regex(r.stdout, new RegExp(`^user ${readlinkSync('/proc/self/ns/user').replace(/[[\]]/g, '\\$&')}$`, 'm'));
    const procs = Number(/procs=(\d+)/.exec(r.stdout)?.[1]);
    t.true(procs > 0 && procs < 10, `host processes are visible: ${procs}`);
    t.notRegex(r.stdout, new RegExp(`\\b${key}\\b`), "the host's shared memory segment is visible");
  } finally {
    if (shmid) spawnSync('ipcrm', ['-m', shmid]);
  }
});

it('network: no NET_ADMIN, so the container cannot change its address, routes or links; net sysctls are read-only', async (t) => {
  const r = await probe(
    'ip addr add 10.254.254.254/32 dev lo 2>/dev/null && echo ADDR; ip route add 10.254.0.0/16 dev lo 2>/dev/null && echo ROUTE; ' +
      'ip link set lo mtu 1400 2>/dev/null && echo LINK; sysctl -w net.ipv4.ip_forward=1 >/dev/null 2>&1 && echo SYSCTL; true',
  );
  t.notRegex(r.stdout, /ADDR|ROUTE|LINK|SYSCTL/, r.all);
});

test('the probe programs are well-formed x86_64 executables', (t) => {
  const elf = syscallElf(39);
  t.is(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
  t.is(elf.readUInt16LE(18), 0x3e);
  const data = syscallElf(102, [1, DATA], { i386: true, data: [40, 1, 0] });
  t.is(data.readUInt32LE(data.length - 12), 40, 'the data words at the end');
});
