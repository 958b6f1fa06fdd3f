// Images and overlay containers, with real containers.
import test from 'ava';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, tsc, privateStore, removeStoreContainers, env as suiteEnv } from './helpers.js';
import { ociLayout } from '../fixtures/tarball.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

const it = isRoot ? test : test.skip;
test.after.always(removeStoreContainers);
const lines = (s: string) => s.trim().split('\n').filter(Boolean);

it('an imported OCI image: its Env, Cmd, WorkingDir and User are honoured, and deleted files stay deleted', async (t) => {
  const env = privateStore();
  const bb = join(suiteEnv.TSCONTAIN_ROOT, 'lib', 'images', 'busybox', 'rootfs');
  // layer 1: the busybox image (a tarball made by GNU tar); layer 2: an app directory and a whiteout of /etc/group
  const { execFileSync } = await import('node:child_process');
  const base = execFileSync('tar', ['-C', bb, '-cf', '-', '.'], { maxBuffer: 1 << 28 });
  const layout = ociLayout(
    tempDir('tscontain-oci-'),
    [
      base,
      [
        { name: 'app/', type: 'dir', mode: 0o777 },
        { name: 'app/hello', data: 'hello from the image\n' },
        { name: 'etc/.wh.group' },
      ],
    ],
    {
      Env: ['PATH=/usr/bin:/bin', 'GREETING=hi'],
      Entrypoint: ['sh', '-c'],
      Cmd: ['echo "$GREETING $(id -u) $(pwd)"; cat hello; ls /etc/group 2>&1 || true'],
      WorkingDir: '/app',
      User: '65534',
    },
  );
  const imported = await tsc(['import', layout, 'app'], { env });
  t.is(imported.code, 0, imported.stderr);
  t.regex(imported.stdout, /imported app \(oci, 2 layers\)/);
  const r = await tsc(['run', '--rm', 'app'], { env });
  t.is(r.code, 0, r.stderr);
  const [first, second] = lines(r.stdout);
  t.is(first, 'hi 65534 /app');
  t.is(second, 'hello from the image');
  t.regex(r.stdout + r.stderr, /can't access|No such file/, '/etc/group was deleted by the whiteout');
  const override = await tsc(['run', '--rm', '-u', '0', '-w', '/', 'app', 'echo $GREETING-override $(id -u) $(pwd)'], {
    env,
  });
  t.is(override.stdout.trim(), 'hi-override 0 /', 'a command replaces Cmd, the Entrypoint stays');
  t.regex((await tsc(['images'], { env })).stdout, /^app +\d+\.\d+MB +\S+ +import:.* \(oci\)$/m);
  const used = await tsc(['run', '-d', 'app'], { env });
  await tsc(['wait', used.stdout.trim()], { env });
  const rmi = await tsc(['rmi', 'app'], { env });
  t.is(rmi.code, 125);
  t.regex(rmi.stderr, /image app is used by container/);
  await tsc(['rm', used.stdout.trim()], { env });
  t.is((await tsc(['rmi', 'app'], { env })).code, 0);
  t.false(readdirSync(join(env.TSCONTAIN_ROOT!, 'lib', 'images')).includes('app'));
});

it('overlay: a container writes /etc/x; the image is unchanged and a second container does not see it', async (t) => {
  const env = privateStore();
  const a = await tsc(
    ['run', '--name', 'writer', 'busybox', 'sh', '-c', 'echo mine > /etc/x; rm /bin/vi; cat /etc/x'],
    { env },
  );
  t.is(a.stdout.trim(), 'mine');
  const img = join(suiteEnv.TSCONTAIN_ROOT, 'lib', 'images', 'busybox', 'rootfs');
  t.false(existsSync(join(img, 'etc/x')));
  t.true(existsSync(join(img, 'bin/vi')));
  const b = await tsc(['run', '--rm', 'busybox', 'sh', '-c', 'cat /etc/x 2>/dev/null || echo absent; ls /bin/vi'], {
    env,
  });
  t.deepEqual(lines(b.stdout), ['absent', '/bin/vi']);
  // export the changed container and import it as a new image
  const out = join(tempDir('tscontain-export-'), 'writer.tar');
  t.is((await tsc(['export', 'writer', out], { env })).code, 0);
  t.is((await tsc(['import', out, 'written'], { env })).code, 0);
  const c = await tsc(['run', '--rm', 'written', 'sh', '-c', 'cat /etc/x; ls /bin/vi 2>/dev/null || echo vi-gone'], {
    env,
  });
  t.deepEqual(lines(c.stdout), ['mine', 'vi-gone']);
  await tsc(['rm', 'writer'], { env });
  await tsc(['rmi', 'written'], { env });
});

it('--read-only refuses writes; -v shows data on the host (and :ro refuses it); --tmpfs mounts a tmpfs', async (t) => {
  const host = tempDir('tscontain-vol-');
  writeFileSync(join(host, 'in'), 'from host\n');
  const r = await tsc([
    'run',
    '--rm',
    '--read-only',
    '-v',
    `${host}:/data`,
    '-v',
    `${host}/in:/etc/in.txt:ro`,
    '--tmpfs',
    '/scratch:size=2m',
    'busybox',
    'sh',
    '-c',
    'cat /data/in; echo from container > /data/out; touch /x 2>/dev/null || echo root-ro; echo y > /etc/in.txt 2>/dev/null || echo file-ro; grep " /scratch " /proc/mounts | cut -d" " -f3; echo z > /scratch/z && echo scratch-rw',
  ]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(lines(r.stdout), ['from host', 'root-ro', 'file-ro', 'tmpfs', 'scratch-rw']);
  t.is(readFileSync(join(host, 'out'), 'utf8'), 'from container\n');
  const bad = await tsc(['run', '--rm', '-v', 'named:/data', 'busybox', 'true']);
  t.is(bad.code, 125);
  t.regex(bad.stderr, /named volumes are not supported/);
});

it('a full disk leaves no half-made image', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const root = tempDir('tscontain-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tscontain-full', root]);
  try {
    const env = { ...suiteEnv, TSCONTAIN_ROOT: root };
    const big = join(tempDir('tscontain-big-'), 'big.tar');
    const src = tempDir('tscontain-bigsrc-');
    writeFileSync(join(src, 'blob'), Buffer.alloc(3 * 1024 * 1024, 7));
    execFileSync('tar', ['-C', src, '-cf', big, '.']);
    const r = await tsc(['import', big, 'big'], { env });
    t.is(r.code, 125);
    t.regex(r.stderr, /no space left|No space left/i);
    t.deepEqual(readdirSync(join(root, 'lib', 'images')), [], 'neither the image nor a temporary directory is left');
  } finally {
    execFileSync('umount', [root]);
  }
});

it("the host recipe builds a working rootfs from this machine's programs", async (t) => {
  const env = privateStore();
  const b = await tsc(['rootfs', 'build', 'host'], { env });
  t.is(b.code, 0, b.stderr);
  const r = await tsc(['run', '--rm', 'host', 'sh', '-c', 'ls /bin/ls && id -u && ps -o pid= | head -1'], { env });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(
    lines(r.stdout).map((l) => l.trim()),
    ['/bin/ls', '0', '1'],
  );
});

// The slow group: debootstrap downloads a few dozen packages (a few minutes). CI runs it on the
// host; TSCONTAIN_OFFLINE=1 (the pure cgroup v2 guest, which has no network) skips it.
const online = process.env.TSCONTAIN_SKIP_SLOW !== '1' && process.env.TSCONTAIN_OFFLINE !== '1';
(isRoot && online ? test.serial : test.serial.skip)(
  'slow: the debian recipe builds a distribution in which apt-get and dpkg run',
  async (t) => {
    t.timeout(15 * 60 * 1000);
    const b = await tsc(['rootfs', 'build', 'debian']);
    t.is(b.code, 0, b.stderr);
    const r = await tsc([
      'run',
      '--rm',
      'debian',
      'bash',
      '-c',
      'apt-get --version | head -1; dpkg --print-architecture; cat /etc/debian_version',
    ]);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^apt \d/m);
    t.regex(r.stdout, /^amd64|^arm64/m);
    t.regex(r.stdout, /^12\./m);
  },
);

test.after.always(removeTempDirs);
