import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writePidFile } from '../../src/plan/plan.js';
import { lit, type Sh } from '../../src/plan/sh.js';
import { TscError } from '../../src/errors.js';
import { tempDir } from '../fixtures/temp.js';

/** A fake root filesystem: /bin/sh (executable), /bin/ls -> sh, /etc/passwd, a non-executable file. */
export function fakeRootfs(): string {
  const r = tempDir('tscontain-fakerootfs-');
  mkdirSync(join(r, 'bin'));
  mkdirSync(join(r, 'etc'));
  mkdirSync(join(r, 'usr/bin'), { recursive: true });
  writeFileSync(join(r, 'bin/sh'), '#!fake\n', { mode: 0o755 });
  symlinkSync('sh', join(r, 'bin/ls'));
  symlinkSync('/bin/sh', join(r, 'usr/bin/env')); // absolute: must resolve inside the rootfs
  writeFileSync(join(r, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n');
  writeFileSync(join(r, 'etc/group'), 'root:x:0:\nstaff:x:50:\n');
  writeFileSync(join(r, 'etc/motd'), 'hi\n', { mode: 0o644 });
  return r;
}

/** A fake cgroup v1 (or hybrid) tree: one hierarchy per controller, each with its root's cgroup.procs. */
export function fakeCgroupV1(controllers = ['memory', 'pids', 'cpu', 'cpuacct', 'devices']): string {
  const root = tempDir('tscontain-fakecg1-');
  for (const c of controllers) {
    mkdirSync(join(root, c));
    writeFileSync(join(root, c, 'cgroup.procs'), '');
  }
  if (controllers.includes('devices')) writeFileSync(join(root, 'devices', 'devices.allow'), '');
  return root;
}

/** A fake cgroup2 root: the controllers it has, and those enabled for its children (default: all). */
export function fakeCgroupV2(controllers = 'cpu memory pids', enabled = controllers): string {
  const root = tempDir('tscontain-fakecg2-');
  writeFileSync(join(root, 'cgroup.controllers'), controllers + '\n');
  writeFileSync(join(root, 'cgroup.subtree_control'), enabled + '\n');
  return root;
}

/** The plan's sh lines as one script, with "$1" the file they act on (sh -c SCRIPT sh FILE). */
export const shScript = (lines: readonly Sh[]): string => lines.map((l) => l.text).join('\n');

/** The plan's pid-file line, run by a sh that has ended by the time this returns: a dead owner's mark in `file`. */
export function writeDeadMark(file: string): void {
  spawnSync('/bin/sh', ['-c', shScript(writePidFile(lit('"$1"'))), 'sh', file]);
}

/** The message of the TscError f throws, which must be one line; anything else is rethrown. */
export function oneLine(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof TscError && !e.message.includes('\n')) return e.message;
    throw e;
  }
  throw new Error('did not throw');
}
