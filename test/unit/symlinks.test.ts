// An image's symlinks in the plan: the sh lines that run before pivot_root (mkdir, the fstab's
// mount points, file volumes) name paths resolved inside the image, never through its symlinks;
// -u NAME reads the image's /etc/passwd inside it, a regular file only.
import test from 'ava';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { resolveUser } from '../../src/store/image.js';
import { TscError } from '../../src/errors.js';
import { fakeRootfs } from './helpers.js';
import { lineTexts, makePlan } from './plan-fixture.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';

test.after.always(removeTempDirs);

/** The fake rootfs with /data -> a directory of the host (absolute) and /up -> ../../srv (relative). */
function evilRootfs(host: string): string {
  const r = fakeRootfs();
  mkdirSync(join(r, 'srv'));
  symlinkSync(host, join(r, 'data'));
  symlinkSync('../../srv', join(r, 'up'));
  return r;
}

test('the plan makes directories, files and mount points at the resolved paths, not through symlinks', (t) => {
  const host = tempDir('tscontain-symlinks-host-');
  const src = tempDir('tscontain-symlinks-src-');
  writeFileSync(join(src, 'f'), '');
  const plan = makePlan(
    ['-w', '/data/w', '-v', `${src}:/data/d`, '-v', `${join(src, 'f')}:/up/x/f`, '--tmpfs', '/data/t'],
    ['sh'],
    { rootfs: evilRootfs(host) },
  );
  const lines = lineTexts(plan, 'prepare').join('\n');
  t.true(lines.includes(`mkdir -p "$tsc_root"${host}/w`), lines);
  t.true(lines.includes(`  tmpfs ${host}/t tmpfs nosuid,nodev,X-mount.mkdir \\`));
  t.true(lines.includes(`  ${src} ${host}/d none bind,X-mount.mkdir`));
  t.true(lines.includes(`[ -e "$tsc_root"/srv/x/f ] || { mkdir -p "$tsc_root"/srv/x; : > "$tsc_root"/srv/x/f; }`));
  t.true(lines.includes(`mount --bind ${join(src, 'f')} "$tsc_root"/srv/x/f`));
  t.notRegex(lines, /"\$tsc_root"\/data|"\$tsc_root"\/up| \/data\/| \/up\//, 'a path through a symlink');
  // what the command sees is unchanged: its cwd is the path given, reached through the image's symlink
  t.regex(lineTexts(plan, 'become').join('\n'), /--wd \/data\/w/);
});

test('the lines made before pivot_root refuse a symlink that appeared since the plan', (t) => {
  const root = tempDir('tscontain-symlinks-root-');
  const host = tempDir('tscontain-symlinks-host-');
  const plan = makePlan(['-w', '/a/b'], ['sh'], { rootfs: fakeRootfs() });
  const lines = lineTexts(plan, 'prepare');
  const from = lines.findIndex((l) => l.startsWith('for tsc_link in /a /a/b'));
  t.not(from, -1, lines.join('\n'));
  const script = lines.slice(from, from + 4).join('\n');
  t.true(script.endsWith('mkdir -p "$tsc_root"/a/b'), script);
  symlinkSync(host, join(root, 'a'));
  const r = (() => {
    try {
      return execFileSync('/bin/sh', ['-ec', script], { env: { tsc_root: root }, stdio: 'pipe' }).toString();
    } catch (e) {
      return `failed: ${(e as { stderr: Buffer }).stderr}`;
    }
  })();
  t.regex(r, /failed: .*became a symlink/);
  t.deepEqual(execFileSync('ls', ['-A', host]).toString(), '', 'made through the symlink');
});

test('-u NAME: /etc/passwd is read inside the image: an absolute symlink is not a host file', (t) => {
  const host = tempDir('tscontain-symlinks-host-');
  writeFileSync(join(host, 'passwd'), 'hostuser:x:4321:4321::/host-home:/bin/sh\n');
  const r = fakeRootfs();
  mkdirSync(join(r, 'usr/etc'), { recursive: true });
  writeFileSync(join(r, 'usr/etc/passwd'), 'inside:x:77:78::/in:/bin/sh\n');
  execFileSync('mv', [join(r, 'etc/passwd'), join(r, 'etc/passwd.old')]);
  symlinkSync(`${host}/passwd`, join(r, 'etc/passwd'));
  t.throws(() => resolveUser(r, 'hostuser'), { message: /unable to find user hostuser/ }, 'a host file was read');
  execFileSync('rm', [join(r, 'etc/passwd')]);
  symlinkSync('/usr/etc/passwd', join(r, 'etc/passwd'));
  t.deepEqual(resolveUser(r, 'inside'), { uid: 77, gid: 78, home: '/in' });
});

test('-u NAME: a fifo, a directory or a loop as /etc/passwd is refused in one line, without waiting', (t) => {
  const r = fakeRootfs();
  execFileSync('rm', [join(r, 'etc/passwd')]);
  execFileSync('mkfifo', [join(r, 'etc/passwd')]);
  t.throws(() => resolveUser(r, 'app'), {
    instanceOf: TscError,
    message: /the image's \/etc\/passwd is not a regular file/,
  });
  execFileSync('rm', [join(r, 'etc/passwd')]);
  mkdirSync(join(r, 'etc/passwd'));
  t.throws(() => resolveUser(r, 'app'), { instanceOf: TscError, message: /not a regular file/ });
  execFileSync('rmdir', [join(r, 'etc/passwd')]);
  symlinkSync('passwd', join(r, 'etc/passwd'));
  t.throws(() => resolveUser(r, 'app'), { instanceOf: TscError, message: /too many levels of symbolic links/ });
  t.deepEqual(resolveUser(r, '5:6'), { uid: 5, gid: 6, home: undefined }, 'a number needs no passwd entry');
});
