import test from 'ava';
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  bootId,
  checkCommand,
  resolveInRoot,
  resolveUser,
  recipeConfig,
  resolveImage,
  recipePath,
  UNSYNCED,
} from '../../src/store/image.js';
import { TscError } from '../../src/errors.js';
import { fakeRootfs } from './helpers.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';

const PATH = '/usr/local/bin:/usr/bin:/bin';

test('paths resolve inside the rootfs, absolute symlinks included', (t) => {
  const r = fakeRootfs();
  t.is(resolveInRoot(r, '/bin/ls'), '/bin/sh');
  t.is(resolveInRoot(r, '/usr/bin/env'), '/bin/sh');
  t.is(resolveInRoot(r, '/../../bin/sh'), '/bin/sh');
  t.is(resolveInRoot(r, '/nope'), undefined);
});

test('command check: found, not found (127), not executable (126)', (t) => {
  const r = fakeRootfs();
  t.notThrows(() => checkCommand(r, 'sh', PATH, '/'));
  t.notThrows(() => checkCommand(r, '/usr/bin/env', PATH, '/'));
  t.notThrows(() => checkCommand(r, 'sh', PATH, '/'));
  const nf = t.throws(() => checkCommand(r, 'nosuch', PATH, '/'), { instanceOf: TscError });
  t.is(nf!.exitCode, 127);
  t.regex(nf!.message, /executable file not found in \$PATH/);
  t.is(t.throws<TscError>(() => checkCommand(r, '/bin/nosuch', PATH, '/'))!.exitCode, 127);
  const ne = t.throws(() => checkCommand(r, '/etc/motd', PATH, '/'), { instanceOf: TscError });
  t.is(ne!.exitCode, 126);
  t.is(t.throws<TscError>(() => checkCommand(r, '/etc', PATH, '/'))!.exitCode, 126);
  t.notThrows(() => checkCommand(r, './sh', PATH, '/bin'), 'relative to the workdir');
});

test('users: numbers, names, groups, from the image', (t) => {
  const r = fakeRootfs();
  t.deepEqual(resolveUser(r, '1000'), { uid: 1000, gid: 1001, home: '/home/app' });
  t.deepEqual(resolveUser(r, 'app:staff'), { uid: 1000, gid: 50, home: '/home/app' });
  t.deepEqual(resolveUser(r, '4242:7'), { uid: 4242, gid: 7, home: undefined });
  t.throws(() => resolveUser(r, 'ghost'), { message: /unable to find user ghost/ });
  t.throws(() => resolveUser(r, 'app:ghosts'), { message: /unable to find group ghosts/ });
});

test('recipe headers give the image defaults; busybox recipe exists', (t) => {
  t.deepEqual(recipeConfig('#!/bin/sh\n# cmd: sh -l\n# env: A=1\n'), { Cmd: ['sh', '-l'], Env: ['A=1'] });
  t.truthy(recipePath('busybox'));
  t.is(recipePath('../etc'), undefined);
});

test('image references: paths must be directories, names must exist or have a recipe', (t) => {
  const r = fakeRootfs();
  const roots = { lib: join(r, 'lib'), run: join(r, 'run') };
  t.is(resolveImage(roots, r).rootfs, r);
  t.throws(() => resolveImage(roots, '/nonexistent/rootfs'), { message: 'rootfs /nonexistent/rootfs not found' });
  t.throws(() => resolveImage(roots, join(r, 'etc/motd')), { message: /is not a directory/ });
  t.throws(() => resolveImage(roots, 'nosuchimage'), { message: 'image nosuchimage not found' });
  t.throws(() => resolveImage(roots, 'Bad:Name'), { message: /invalid image name/ });
  const planned = resolveImage(roots, 'busybox', false);
  t.truthy(planned.recipe, 'a dry run plans the build instead of building');
  t.deepEqual(planned.config.Cmd, ['sh']);
});

test.after.always(removeTempDirs);

test('an imported image not yet known to be on disk: runs in this boot; refused after a crash or a failed write-back', (t) => {
  const base = tempDir('tscontain-unsynced-');
  const r = { lib: join(base, 'lib'), run: join(base, 'run') };
  const dir = join(r.lib, 'images', 'img');
  mkdirSync(join(dir, 'rootfs'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), '{"config":{}}');
  t.is(resolveImage(r, 'img').name, 'img', 'no mark: on disk');
  writeFileSync(join(dir, UNSYNCED), bootId() + '\n');
  t.is(resolveImage(r, 'img').name, 'img', 'marked in this boot: still being written back, the page cache has it');
  writeFileSync(join(dir, UNSYNCED), '00000000-0000-0000-0000-000000000000\n');
  const crash = t.throws(() => resolveImage(r, 'img'), { instanceOf: TscError });
  t.regex(crash!.message, /image img may be incomplete: the machine went down before it was safely on disk/);
  t.regex(crash!.hint!, /import it again/);
  writeFileSync(join(dir, UNSYNCED), bootId() + '\nfailed\n');
  t.regex(t.throws(() => resolveImage(r, 'img'))!.message, /writing it to disk failed/);
});
