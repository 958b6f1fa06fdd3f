// Three CommonJS bundles (node starts a single CJS file faster than a graph of ES modules):
//   dist/bin/tscontain.cjs  the loader (src/cli/boot.ts): main.cjs through V8's code cache
//   dist/bin/main.cjs       the CLI's entry and the run path (src/cli/main.ts): all `run` ever parses
//   dist/bin/more.cjs       every other command (src/cli/more.ts); yargs and chalk stay external
// then main.cjs.cache, V8's code cache, from one `tscontain plan` on a scratch root filesystem.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  // import.meta.url, worked out only where it is used
  define: { 'import.meta.url': '__tsc_meta.url' },
  banner: { js: "var __tsc_meta = { get url() { return require('node:url').pathToFileURL(__filename).href; } };" },
};
await Promise.all([
  build({
    entryPoints: ['src/cli/boot.ts'],
    outfile: 'dist/bin/tscontain.cjs',
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
  }),
  build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/bin/main.cjs', external: ['./more.cjs'] }),
  build({ ...common, entryPoints: ['src/cli/more.ts'], outfile: 'dist/bin/more.cjs', external: ['yargs', 'chalk'] }),
]);

const scratch = mkdtempSync(join(tmpdir(), 'tscontain-build-'));
try {
  mkdirSync(join(scratch, 'rootfs/bin'), { recursive: true });
  writeFileSync(join(scratch, 'rootfs/bin/true'), '');
  chmodSync(join(scratch, 'rootfs/bin/true'), 0o755);
  const r = spawnSync(
    process.execPath,
    ['dist/bin/tscontain.cjs', 'plan', '--rm', join(scratch, 'rootfs'), '/bin/true'],
    {
      env: { ...process.env, TSCONTAIN_ROOT: join(scratch, 'root'), TSCONTAIN_WRITE_CODE_CACHE: '1' },
      encoding: 'utf8',
    },
  );
  if (r.status !== 0)
    process.stderr.write(
      `build: no code cache (tscontain plan failed: ${(r.stderr || r.error?.message || '').trim()}); tscontain works, only starts a little slower\n`,
    );
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
