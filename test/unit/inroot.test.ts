// Paths resolved inside a container's root as the kernel resolves them after pivot_root: tables of
// image trees (absolute and relative symlinks, chains, loops, missing tails) and the container's
// mounts over the image (its /etc files, /dev, kernel filesystems, volumes and tmpfs in fstab order).
import test from 'ava';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { dirLook, resolveInRoot, walk } from '../../src/store/inroot.js';
import { resolveTargets, type TargetRequest } from '../../src/spec/targets.js';
import { TscError } from '../../src/errors.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';

test.after.always(removeTempDirs);

/** A directory on the host that symlinks of the images point to: nothing may resolve into it. */
const HOST = tempDir('tscontain-inroot-host-');

/** An image tree: `name/` a directory, `name -> target` a symlink, else a file. */
function tree(entries: string[]): string {
  const r = tempDir('tscontain-inroot-');
  for (const e of entries) {
    const [name, link] = e.split(' -> ');
    mkdirSync(join(r, dirname(name)), { recursive: true });
    if (link !== undefined) symlinkSync(link, join(r, name));
    else if (name.endsWith('/')) mkdirSync(join(r, name), { recursive: true });
    else writeFileSync(join(r, name), '');
  }
  return r;
}

// [what, image tree, path, resolved path (or an error's words), the last name exists]
const rows: [string, string[], string, string | RegExp, boolean?][] = [
  ['a plain path', ['etc/', 'etc/motd'], '/etc/motd', '/etc/motd', true],
  ['an absolute symlink to a host directory', [`data -> ${HOST}`], '/data/x', `${HOST}/x`, false],
  ['an absolute symlink to /', ['data -> /', 'etc/'], '/data/etc', '/etc', true],
  ['an absolute symlink below the root', ['usr/x -> /etc', 'etc/'], '/usr/x/f', '/etc/f', false],
  ['a relative symlink climbing above the root', ['data -> ../../../../etc', 'etc/'], '/data/x', '/etc/x', false],
  ['a relative symlink in a subdirectory', ['usr/lib/', 'lib -> usr/lib'], '/lib/x', '/usr/lib/x', false],
  ['a chain of symlinks', ['a -> /b', 'b -> c/d', 'c/d -> ../e', 'e/'], '/a/f', '/e/f', false],
  ['.. after a symlink is taken from its target', ['d -> /x/y', 'x/y/', 'x/z/'], '/d/../z', '/x/z', true],
  ['.. at the root stays at the root', ['etc/'], '/../../etc', '/etc', true],
  ['a symlink as the last name', ['etc/', 'etc/motd', 'm -> etc/motd'], '/m', '/etc/motd', true],
  ['a missing tail is kept as it is', ['srv/'], '/srv/new/dir', '/srv/new/dir', false],
  ['a dangling symlink: its target, made by mkdir', ['w -> /nowhere/w'], '/w/x', '/nowhere/w/x', false],
  ['a loop of symlinks', ['l1 -> /l2', 'l2 -> l1'], '/l1/x', /too many levels of symbolic links/],
  ['a symlink to itself', ['me -> me'], '/me', /too many levels/],
  ['a file in the middle', ['etc/', 'etc/motd'], '/etc/motd/x', /"\/etc\/motd" is not a directory/],
  ['.. after what does not exist', ['d -> /nope/../etc', 'etc/'], '/d', /".." after "\/nope"/],
];

for (const [what, entries, path, want, exists] of rows)
  test(`walk: ${what}`, (t) => {
    const w = walk(path, dirLook(tree(entries)));
    if (want instanceof RegExp) {
      t.true('error' in w);
      if ('error' in w) t.regex(w.error, want);
      return;
    }
    if ('error' in w) return t.fail(w.error);
    t.like(w, { path: want, exists: !!exists, kernel: false });
  });

test('resolveInRoot: existing paths only', (t) => {
  const r = tree(['bin/', 'bin/sh', 'usr/bin/', 'usr/bin/env -> /bin/sh', `x -> ${HOST}`]);
  t.is(resolveInRoot(r, '/usr/bin/env'), '/bin/sh');
  t.is(resolveInRoot(r, '/x'), undefined);
  t.is(resolveInRoot(r, '/nope'), undefined);
});

/** The targets of a container of `entries` (its volumes' sources in `src`). */
function targets(entries: string[], req: Partial<TargetRequest>) {
  return resolveTargets({
    image: 'img',
    rootfs: tree(entries),
    volumes: [],
    tmpfs: [],
    devices: [],
    workdir: '/',
    ...req,
  });
}
const vol = (host: string, path: string, o: { file?: boolean; exists?: boolean } = {}) => ({
  host,
  path,
  readOnly: false,
  file: !!o.file,
  exists: o.exists ?? true,
});

test('targets: volumes, tmpfs and the working directory through an image symlink stay inside the root', (t) => {
  const src = tempDir('tscontain-inroot-src-');
  writeFileSync(join(src, 'f'), '');
  const r = targets([`data -> ${HOST}`, 'rel -> ../../../srv', 'srv/'], {
    volumes: [vol(src, '/data/dir'), vol(join(src, 'f'), '/rel/sub/file', { file: true })],
    tmpfs: [{ path: '/data/t', options: '' }],
    workdir: '/data/w',
  });
  t.deepEqual(
    r.volumes.map((v) => [v.path, v.target]),
    [
      ['/data/dir', `${HOST}/dir`],
      ['/rel/sub/file', '/srv/sub/file'],
    ],
  );
  t.deepEqual(
    r.tmpfs.map((v) => [v.path, v.target]),
    [['/data/t', `${HOST}/t`]],
  );
  t.is(r.workdirMkdir, `${HOST}/w`);
});

test("targets: a volume's own symlinks (a container wrote them) resolve inside the root too", (t) => {
  const src = tempDir('tscontain-inroot-src-');
  symlinkSync(HOST, join(src, 'link'));
  symlinkSync('../../../..', join(src, 'up'));
  const r = targets(['mnt/', 'etc/'], {
    volumes: [vol(src, '/mnt'), vol('/dev/null', '/mnt/link/f', { file: true })],
    tmpfs: [{ path: '/mnt/up/etc/t', options: '' }],
    workdir: '/mnt/link/w',
  });
  // the tmpfs comes first in the fstab: the volume is not there yet, /mnt/up is a missing name then
  t.is(r.tmpfs[0].target, '/mnt/up/etc/t');
  t.is(r.volumes[1].target, `${HOST}/f`);
  t.is(r.workdirMkdir, `${HOST}/w`);
});

test('targets: a tmpfs hides the image below it; the container /etc files are its own', (t) => {
  const r = targets([`run/x -> ${HOST}`, 'etc/', `etc/hosts -> ${HOST}/hosts`, `etc/other -> ${HOST}`], {
    tmpfs: [{ path: '/run', options: '' }],
    volumes: [vol('/dev/null', '/etc/hosts', { file: true }), vol('/dev/null', '/etc/other/f', { file: true })],
    workdir: '/run/x/w',
  });
  t.is(r.workdirMkdir, '/run/x/w');
  t.is(r.volumes[0].target, '/etc/hosts');
  t.is(r.volumes[1].target, `${HOST}/f`);
});

test("targets: the image's /etc is a symlink: the container's /etc is its own upper directory alone", (t) => {
  const r = targets([`etc -> ${HOST}`], { workdir: '/etc/x/y' });
  t.is(r.workdirMkdir, '/etc/x/y');
});

test("targets: /dev is tscontain's own; /dev/fd leads into /proc, refused for a mount", (t) => {
  const r = targets(['dev/', `dev/log -> ${HOST}/log`], {
    volumes: [vol('/dev/null', '/dev/log', { file: true })],
    workdir: '/dev/fd/3',
  });
  t.is(r.volumes[0].target, '/dev/log');
  t.is(r.workdirMkdir, undefined, 'no mkdir in a kernel filesystem');
  t.throws(() => targets([], { volumes: [vol('/dev/null', '/dev/fd/5/x', { file: true })] }), {
    instanceOf: TscError,
    message: /leads into "\/proc\/self\/fd\/5\/x" through a symbolic link/,
  });
  t.is(targets([], { devices: ['/dev/fd/x'], workdir: '/dev/fd/w' }).workdirMkdir, '/dev/fd/w', 'a --device dir');
});

test('targets: into /proc through a symlink, /proc/self, the root itself, loops: refused in one line', (t) => {
  const bad: [string[], Partial<TargetRequest>, RegExp][] = [
    [['data -> /proc/self/root/tmp'], { tmpfs: [{ path: '/data/t', options: '' }] }, /through a symbolic link/],
    [['data -> /proc'], { volumes: [vol(HOST, '/data')] }, /through a symbolic link/],
    [[], { volumes: [vol(HOST, '/proc/1/root/tmp')] }, /a process of the host's/],
    [[], { tmpfs: [{ path: '/proc/self/cwd/t', options: '' }] }, /a process of the host's/],
    [['data -> ../..'], { volumes: [vol(HOST, '/data')] }, /the root itself/],
    [['l -> l'], { volumes: [vol(HOST, '/l/x')] }, /-v: the container path "\/l\/x" cannot be resolved/],
    [['l -> l'], { workdir: '/l' }, /the working directory "\/l" cannot be resolved/],
  ];
  // an image's names are data: a newline or an escape in one stays inside a one-line message
  bad.push([
    ['d -> /evil\n\u001b[2J/f', 'evil\n\u001b[2J/', 'evil\n\u001b[2J/f'],
    { workdir: '/d/x' },
    /^[^\n\u001b]*$/,
  ]);
  for (const [entries, req, msg] of bad) t.throws(() => targets(entries, req), { instanceOf: TscError, message: msg });
  t.is(targets([], { workdir: '/proc/self/cwd' }).workdirMkdir, undefined, 'left to become.pl');
  t.is(targets(['data -> ../..'], { workdir: '/data' }).workdirMkdir, undefined);
});

test("targets: the image's /proc, /sys and /dev must be directories (or missing), never symlinks", (t) => {
  for (const d of ['proc', 'sys', 'dev']) {
    t.throws(() => targets([`${d} -> ${HOST}`], {}), { message: new RegExp(`/${d} is a symbolic link`) });
    t.throws(() => targets([d], {}), { message: new RegExp(`/${d} is not a directory`) });
  }
  t.notThrows(() => targets(['proc/', 'sys/'], {}));
});
