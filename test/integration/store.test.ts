// Importing images: crafted archives for every escape (checked on the host filesystem), layers
// with whiteouts, docker-archive and OCI formats, corrupt input. No containers are started, but
// an import keeps the owners of the files, which needs root.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { importImage, safePath } from '../../src/store/archive.js';
import { TscError } from '../../src/errors.js';
import { dockerArchive, paxRecord, tarball, ociLayout, type Member } from '../fixtures/tarball.js';
import { isRoot } from './helpers.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';
import { until } from '../fixtures/poll.js';

const it = isRoot ? test : test.skip;

const tmp = tempDir;
test.after.always(removeTempDirs);

function store() {
  const root = tmp('tscontain-store-');
  return { lib: join(root, 'lib'), run: join(root, 'run') };
}
const file = (b: Buffer, name = 'x.tar') => {
  const d = tmp('tscontain-archive-');
  const f = join(d, name);
  writeFileSync(f, b);
  return f;
};
const rootfs = (r: { lib: string }, name: string) => join(r.lib, 'images', name, 'rootfs');
const leftovers = (r: { lib: string }) => readdirSync(join(r.lib, 'images')).filter((d) => d.startsWith('.'));

it('escapes are refused or neutralized: .., absolute paths, symlink then write through it, hard links out', async (t) => {
  const outside = tmp('tscontain-outside-');
  const secret = join(outside, 'secret');
  writeFileSync(secret, 'host secret\n');
  const depth = '../'.repeat(12);
  const r = store();
  const res = await importImage(
    r,
    file(
      tarball([
        { name: `${depth}${outside.slice(1)}/dotdot`, data: 'x' },
        { name: `${outside}/absolute`, data: 'x' },
        { name: 'evil', type: 'symlink', link: outside },
        { name: 'evil/through-symlink', data: 'x' },
        { name: 'up', type: 'symlink', link: depth },
        { name: `up/${outside.slice(1)}/through-relative-symlink`, data: 'x' },
        { name: 'hard-abs', type: 'hardlink', link: secret },
        { name: 'hard-rel', type: 'hardlink', link: `${depth}${secret.slice(1)}` },
        { name: 'ok/file', data: 'fine\n' },
      ]),
    ),
    'escapes',
  );
  t.deepEqual(readdirSync(outside), ['secret'], 'nothing written outside');
  t.is(readFileSync(secret, 'utf8'), 'host secret\n');
  const root = rootfs(r, 'escapes');
  t.is(readFileSync(join(root, 'ok/file'), 'utf8'), 'fine\n');
  t.true(existsSync(join(root, outside.slice(1), 'absolute')), 'an absolute path lands inside the image');
  const evil = lstatSync(join(root, 'evil'));
  t.true(
    evil.isSymbolicLink() || evil.isDirectory(),
    'the symlink was kept, or replaced by a directory inside the image',
  );
  t.false(existsSync(join(outside, 'through-symlink')));
  for (const h of ['hard-abs', 'hard-rel']) {
    const p = join(root, h);
    t.false(existsSync(p) && statSync(p).ino === statSync(secret).ino, `${h} is no link to the host file`);
  }
  t.true(res.warnings.length >= 3, res.warnings.join('\n'));
});

it('layers apply in order with whiteouts and opaque directories; a whiteout through a symlink touches nothing', async (t) => {
  const outside = tmp('tscontain-outside-');
  writeFileSync(join(outside, 'important'), 'keep\n');
  const l1: Member[] = [
    { name: 'etc/', type: 'dir' },
    { name: 'etc/a', data: 'a' },
    { name: 'etc/b', data: 'b' },
    { name: 'opq/', type: 'dir' },
    { name: 'opq/old', data: 'old' },
    { name: 'opq/sub/', type: 'dir' },
    { name: 'opq/sub/deep', data: 'd' },
    { name: 'link', type: 'symlink', link: outside },
    { name: 'gone/', type: 'dir' },
    { name: 'gone/x', data: 'x' },
  ];
  const l2: Member[] = [
    { name: 'etc/.wh.a' },
    { name: 'opq/new', data: 'new' },
    { name: 'opq/.wh..wh..opq' },
    { name: 'link/.wh.important' },
    { name: '.wh.gone' },
    { name: 'dev/null', type: 'char' },
    { name: 'fifo', type: 'fifo' },
  ];
  const layout = ociLayout(tmp('tscontain-oci-'), [l1, l2], {
    Env: ['PATH=/bin', 'GREETING=from-image'],
    Cmd: ['sh', '-c', 'echo $GREETING'],
    WorkingDir: '/opq',
    User: '65534',
  });
  const r = store();
  const res = await importImage(r, layout, 'layered');
  t.is(res.format, 'oci');
  t.is(res.layers, 2);
  const root = rootfs(r, 'layered');
  t.false(existsSync(join(root, 'etc/a')), 'a file deleted in layer 2 is absent');
  t.true(existsSync(join(root, 'etc/b')));
  t.deepEqual(readdirSync(join(root, 'opq')), ['new'], "an opaque directory hides layer 1's content");
  t.false(existsSync(join(root, 'gone')));
  t.is(readFileSync(join(outside, 'important'), 'utf8'), 'keep\n', 'the host file behind the symlink survived');
  t.false(existsSync(join(root, 'dev/null')), 'device nodes are skipped');
  t.true(res.warnings.some((w) => /skipped device node dev\/null/.test(w)));
  const cfg = JSON.parse(readFileSync(join(r.lib, 'images', 'layered', 'config.json'), 'utf8'));
  t.deepEqual(cfg.config, {
    Env: ['PATH=/bin', 'GREETING=from-image'],
    Cmd: ['sh', '-c', 'echo $GREETING'],
    WorkingDir: '/opq',
    User: '65534',
  });
});

const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0; // .ci/run installs it
(hasSkopeo ? it : test.skip)(
  'OCI archives and docker save archives (made by skopeo from an OCI layout) import the same',
  async (t) => {
    const layout = ociLayout(
      tmp('tscontain-oci-'),
      [
        [
          { name: 'hello', data: 'hi\n' },
          { name: 'x', data: 'x' },
        ],
        [{ name: '.wh.x' }],
      ],
      { Cmd: ['cat', '/hello'] },
    );
    const d = tmp('tscontain-skopeo-');
    execFileSync('skopeo', ['copy', '-q', `oci:${layout}:latest`, `docker-archive:${d}/docker.tar:test:latest`]);
    execFileSync('skopeo', ['copy', '-q', `oci:${layout}:latest`, `oci-archive:${d}/oci.tar:latest`]);
    const r = store();
    for (const [f, name, format] of [
      [`${d}/docker.tar`, 'fromdocker', 'docker-archive'],
      [`${d}/oci.tar`, 'fromoci', 'oci'],
    ]) {
      const res = await importImage(r, f, name);
      t.is(res.format, format);
      t.is(readFileSync(join(rootfs(r, name), 'hello'), 'utf8'), 'hi\n');
      t.false(existsSync(join(rootfs(r, name), 'x')), `${name}: whiteout applied`);
      t.deepEqual(JSON.parse(readFileSync(join(r.lib, 'images', name, 'config.json'), 'utf8')).config.Cmd, [
        'cat',
        '/hello',
      ]);
    }
    t.deepEqual(leftovers(r), []);
  },
);

it('plain and gzip rootfs tarballs', async (t) => {
  const r = store();
  const members: Member[] = [
    { name: 'bin/', type: 'dir' },
    { name: 'bin/tool', data: '#!/bin/sh\n', mode: 0o4755 },
    { name: 'dev/', type: 'dir' },
    { name: 'dev/null', type: 'char' },
    { name: '.wh.nothing' },
  ];
  const plain = await importImage(r, file(tarball(members)), 'plain');
  await importImage(r, file(gzipSync(tarball(members)), 'x.tar.gz'), 'gz');
  for (const n of ['plain', 'gz']) {
    t.is(statSync(join(rootfs(r, n), 'bin/tool')).mode & 0o7777, 0o4755, `${n}: modes kept, setuid included`);
    t.false(existsSync(join(rootfs(r, n), 'dev/null')), `${n}: no device node`);
    t.false(existsSync(join(rootfs(r, n), '.wh.nothing')), `${n}: no whiteout marker`);
  }
  t.true(
    plain.warnings.some((w) => /skipped device node dev\/null/.test(w)),
    plain.warnings.join(),
  );
  // renamed into place at once; a detached sync -f puts it on disk and then removes its mark
  for (const n of ['plain', 'gz']) {
    const mark = join(r.lib, 'images', n, '.unsynced');
    await until(() => !existsSync(mark), `${mark} to go`).catch(() => undefined);
    t.false(existsSync(mark), `${n}: written back, mark gone`);
  }
});

it('corrupt, unknown and truncated archives: a clear error and no half-made image; --force to replace', async (t) => {
  const r = store();
  const e1 = await t.throwsAsync(
    importImage(r, file(Buffer.from('this is not an archive at all, just text'.repeat(30))), 'bad'),
    { instanceOf: TscError },
  );
  t.regex(e1!.message, /not a tar archive/);
  const gz = gzipSync(tarball([{ name: 'a', data: 'x'.repeat(100000) }]));
  await t.throwsAsync(importImage(r, file(gz.subarray(0, gz.length / 2), 'trunc.tar.gz'), 'trunc'), {
    instanceOf: TscError,
  });
  await t.throwsAsync(importImage(r, '/nonexistent.tar', 'missing'), { message: /not found/ });
  t.false(existsSync(join(r.lib, 'images', 'bad')));
  t.false(existsSync(join(r.lib, 'images', 'trunc')));
  t.deepEqual(leftovers(r), [], 'no temporary directory left');
  await importImage(r, file(tarball([{ name: 'v1', data: '1' }])), 'img');
  await t.throwsAsync(importImage(r, file(tarball([{ name: 'v2', data: '2' }])), 'img'), {
    message: 'image img exists',
  });
  await importImage(r, file(tarball([{ name: 'v2', data: '2' }])), 'img', true);
  t.deepEqual(readdirSync(rootfs(r, 'img')), ['v2']);
});

test('safePath refuses paths through symlinks and ..', (t) => {
  const root = tmp('tscontain-safe-');
  mkdirSync(join(root, 'd'));
  execFileSync('ln', ['-s', '/etc', join(root, 'l')]);
  t.is(safePath(root, 'd/x'), join(root, 'd/x'));
  t.is(safePath(root, 'l/passwd'), undefined);
  t.is(safePath(root, 'l'), join(root, 'l'), 'the symlink itself may be removed');
  t.is(safePath(root, '../etc'), join(root, 'etc'), 'normalized inside');
});

it("device nodes in an upper layer are skipped too, even under a name tar's exclude list cannot hold; FIFOs are kept", async (t) => {
  const r = store();
  const layout = ociLayout(
    tmp('tscontain-oci-'),
    [
      [
        { name: 'dev/', type: 'dir' },
        { name: 'keep', data: 'k' },
      ],
      [
        { name: 'dev/plain', type: 'char' },
        { name: 'dev/new\nline', type: 'char' },
        { name: 'dev/pipe', type: 'fifo' },
      ],
    ],
    {},
  );
  const res = await importImage(r, layout, 'devs');
  t.is(devicesIn(rootfs(r, 'devs')), '', 'no device node in the image');
  t.true(
    lstatSync(join(rootfs(r, 'devs'), 'dev/pipe')).isFIFO(),
    'a FIFO is a file like any other (docker keeps them too)',
  );
  t.true(existsSync(join(rootfs(r, 'devs'), 'keep')));
  t.is(res.warnings.filter((w) => /skipped device node/.test(w)).length, 2, res.warnings.join('|'));
});

/** block and character devices anywhere in a tree */
function devicesIn(dir: string): string {
  return execFileSync('find', [dir, '(', '-type', 'c', '-o', '-type', 'b', ')', '-print']).toString();
}

it('a docker save archive: layers read where they lie in it (a symlinked duplicate layer too), whiteouts applied; gzip-compressed too', async (t) => {
  const archive = dockerArchive(
    [
      [
        { name: 'etc/', type: 'dir' },
        { name: 'etc/a', data: 'a' },
        { name: 'etc/b', data: 'b' },
      ],
      [{ name: 'etc/.wh.a' }, { name: 'etc/c', data: 'c' }],
      { same: 0 }, // layer 1 again: etc/a comes back
    ],
    { Cmd: ['cat', '/etc/b'] },
  );
  const r = store();
  for (const [f, n] of [
    [file(archive), 'docker'],
    [file(gzipSync(archive), 'x.tar.gz'), 'dockergz'],
  ] as const) {
    const res = await importImage(r, f, n);
    t.is(res.format, 'docker-archive');
    t.is(res.layers, 3);
    t.deepEqual(
      readdirSync(join(rootfs(r, n), 'etc')).sort(),
      ['a', 'b', 'c'],
      `${n}: layers in order, the third a link to the first`,
    );
    t.deepEqual(JSON.parse(readFileSync(join(r.lib, 'images', n, 'config.json'), 'utf8')).config.Cmd, [
      'cat',
      '/etc/b',
    ]);
    t.false(existsSync(join(rootfs(r, n), 'manifest.json')), 'the archive itself is not extracted into the image');
  }
  // a layer whose manifest entry leads outside the archive is refused
  const bad = tarball([
    { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', Layers: ['../../etc/passwd'] }]) },
  ]);
  await t.throwsAsync(importImage(r, file(bad), 'bad'), { message: /outside the image/ });
  t.deepEqual(leftovers(r), []);
});

it('device nodes in a rootfs tarball are skipped however they are named: ./, leading /, a newline, a hard link to one', async (t) => {
  const r = store();
  const res = await importImage(
    r,
    file(
      tarball([
        { name: './dev/', type: 'dir' },
        { name: './dev/null', type: 'char' },
        { name: '/dev/abs', type: 'char' },
        { name: 'dev/new\nline', type: 'char' },
        { name: 'dev/link-to-null', type: 'hardlink', link: './dev/null' },
        { name: 'dev/fifo', type: 'fifo' },
        { name: 'keep', data: 'k' },
      ]),
    ),
    'devnames',
  );
  t.is(devicesIn(rootfs(r, 'devnames')), '', 'no device node in the image');
  t.false(existsSync(join(rootfs(r, 'devnames'), 'dev/link-to-null')), 'nor a hard link to one');
  t.true(existsSync(join(rootfs(r, 'devnames'), 'keep')));
  t.is(res.warnings.filter((w) => /skipped device node/.test(w)).length, 3, res.warnings.join('|'));
});

it('a device node under a name only tar knows (pax keys tar obeys, GNU.sparse.name) is refused all the same: tar cannot make one', async (t) => {
  const r = store();
  const res = await importImage(
    r,
    file(
      tarball([
        // GNU tar takes the name from GNU.sparse.name; a scan that read only `path` would exclude the decoy
        {
          name: 'PaxHeaders/x',
          type: 'pax',
          data: paxRecord('path', 'dev/decoy') + paxRecord('GNU.sparse.name', 'dev/hidden'),
        },
        { name: 'dev/decoy', type: 'char' },
        { name: 'keep', data: 'k' },
      ]),
    ),
    'unusual',
  );
  t.is(devicesIn(rootfs(r, 'unusual')), '');
  t.true(
    res.warnings.some((w) => /skipped device node/.test(w)),
    res.warnings.join('|'),
  );
});

it('a layer without its end-of-archive blocks is read only to its end: nothing after it in the archive gets into the image', async (t) => {
  const layer = tarball([{ name: 'inside', data: 'i' }]);
  const unended = layer.subarray(0, layer.length - 1024);
  const archive = tarball([
    { name: 'l/layer.tar', data: unended },
    { name: 'outside', data: 'this is the archive, not the layer' },
    { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', Layers: ['l/layer.tar'] }]) },
    { name: 'c.json', data: '{}' },
  ]);
  const r = store();
  await importImage(r, file(archive), 'unended');
  t.deepEqual(readdirSync(rootfs(r, 'unended')), ['inside']);
});

it('an image archive that does not look like one at first is still taken for one; a device under a name that is no UTF-8 is refused', async (t) => {
  const r = store();
  const archive = tarball([
    { name: 'layers/one.tar', data: tarball([{ name: 'hello', data: 'hi' }]) },
    { name: 'cfg.json', data: JSON.stringify({ config: { Cmd: ['cat', '/hello'] } }) },
    { name: 'manifest.json', data: JSON.stringify([{ Config: 'cfg.json', Layers: ['layers/one.tar'] }]) },
  ]);
  const res = await importImage(r, file(archive), 'late');
  t.is(res.format, 'docker-archive');
  t.deepEqual(readdirSync(rootfs(r, 'late')), ['hello'], "the layer, not the archive's own files");
  const latin1 = Buffer.concat([
    tarball([{ name: 'dev/x', type: 'char' }]).subarray(0, 512),
    tarball([{ name: 'keep', data: 'k' }]),
  ]);
  latin1.write('dev/\xe9', 0, 'latin1'); // a name in latin-1: byte 0xe9 alone is no UTF-8
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : latin1[i];
  latin1.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const res2 = await importImage(r, file(latin1), 'latin1');
  t.is(devicesIn(rootfs(r, 'latin1')), '');
  t.true(existsSync(join(rootfs(r, 'latin1'), 'keep')));
  t.true(
    res2.warnings.some((w) => /skipped device node/.test(w)),
    res2.warnings.join('|'),
  );
});
