// An image's symlinks, as the container sees them and as tscontain must not follow them on the host
// before the root switch: -v, --tmpfs and -w through /data -> HOST_DIR (absolute) and
// /rel -> ../../../srv still work inside, and HOST_DIR (a temp dir of this file) stays empty;
// /proc as a symlink is refused; exec -u reads the container's /etc/passwd, a regular file only.
// Every symlink points into a temp dir of this file: even a wrong tscontain writes nowhere else.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { env, isRoot, killStarted, tsc, until } from './helpers.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';

const it = isRoot ? test : test.skip;
test.after.always(killStarted);
test.after.always(removeTempDirs);

const BUSYBOX = join(env.TSCONTAIN_ROOT, 'lib', 'images', 'busybox', 'rootfs');

/** A rootfs directory: the busybox image plus symlinks NAME -> TARGET. */
function rootfsWith(links: [string, string][]): string {
  const r = join(tempDir('tscontain-symlinks-'), 'rootfs');
  execFileSync('cp', ['-a', BUSYBOX, r]);
  for (const [name, target] of links) {
    execFileSync('rm', ['-rf', join(r, name)]);
    symlinkSync(target, join(r, name));
  }
  return r;
}

it("mounts and the working directory through an image's symlinks: seen at the given path inside, none on the host", async (t) => {
  const host = tempDir('tscontain-symlinks-target-');
  const rootfs = rootfsWith([
    ['data', host],
    ['rel', '../../../srv'],
  ]);
  const src = tempDir('tscontain-symlinks-src-');
  writeFileSync(join(src, 'f'), 'volume file\n');
  writeFileSync(join(src, 'in-dir'), 'dir volume\n');
  const script = [
    'cat /data/file /rel/sub/file /data/dir/in-dir',
    '[ "$(pwd -P)" = "$(cd /data/w && pwd -P)" ] && echo cwd=/data/w',
    'stat -f -c %T /data/t',
    'ls /srv/sub',
  ].join('; ');
  const r = await tsc([
    'run',
    '--rm',
    '--network',
    'none',
    '-v',
    `${join(src, 'f')}:/data/file:ro`,
    '-v',
    `${join(src, 'f')}:/rel/sub/file`,
    '-v',
    `${src}:/data/dir`,
    '--tmpfs',
    '/data/t',
    '-w',
    '/data/w',
    rootfs,
    'sh',
    '-c',
    script,
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'volume file\nvolume file\ndir volume\ncwd=/data/w\ntmpfs\nfile\n');
  t.deepEqual(readdirSync(host), [], 'made on the host through the image symlink');
});

it('an image whose /proc is a symlink is refused in one line, and nothing is made where it points', async (t) => {
  const host = tempDir('tscontain-symlinks-target-');
  const rootfs = rootfsWith([['proc', join(host, 'proc')]]);
  const r = await tsc(['run', '--rm', '--network', 'none', rootfs, 'true']);
  t.is(r.code, 125);
  t.regex(r.stderr, /\/proc is a symbolic link/);
  t.deepEqual(readdirSync(host), []);
});

it("exec -u NAME: the container's /etc/passwd as a fifo or a symlink to a host path is never read on the host", async (t) => {
  const host = tempDir('tscontain-symlinks-host-');
  writeFileSync(join(host, 'passwd'), 'hostuser:x:4321:4321::/host-home:/bin/sh\n');
  const d = await tsc([
    'run',
    '-d',
    '--network',
    'none',
    'busybox',
    'sh',
    '-c',
    `mv /etc/passwd /etc/passwd.real; ln -s ${host}/passwd /etc/passwd; echo ready > /tmp/ready; sleep 300`,
  ]);
  t.is(d.code, 0, d.stderr);
  const id = d.stdout.trim();
  try {
    await until(async () => (await tsc(['exec', id, 'cat', '/tmp/ready'])).stdout === 'ready\n', 'the container');
    const viaLink = await tsc(['exec', '-u', 'hostuser', id, 'id']);
    t.not(viaLink.code, 0);
    t.regex(viaLink.stderr, /unable to find user hostuser/);
    t.is((await tsc(['exec', id, 'sh', '-c', 'rm /etc/passwd && mkfifo /etc/passwd'])).code, 0);
    const fifo = await tsc(['exec', '-u', 'root', id, 'id']);
    t.not(fifo.code, 0);
    t.regex(fifo.stderr, /the container's \/etc\/passwd is not a regular file/);
  } finally {
    await tsc(['rm', '-f', id]);
  }
});
