// The image store: import (rootfs tarballs, `docker save` archives, OCI image layouts and
// archives), rmi and export. Layers are applied in order into one directory, with OCI whiteouts.
// Extraction never writes outside the image's directory: GNU tar refuses `..` members, strips
// leading `/`, keeps hard links in the tree and never writes through a symlink it extracted;
// whiteouts are applied only on paths with no symlink in them; device nodes are skipped.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { TscError } from './errors.js';
import { type ImageConfig } from './image.js';
import { optionTable, parseArgs, type OptDef } from './options.js';
import { imageDir, containerDir, roots, type Roots } from './paths.js';

export interface ImportResult { name: string; format: string; layers: number; warnings: string[] }

const NAME = /^[a-z0-9][a-z0-9_.-]*$/;

function magic(file: string): 'gzip' | 'zstd' | 'tar' | 'unknown' {
  const b = Buffer.alloc(512);
  const fd = openSync(file, 'r');
  const n = readSync(fd, b, 0, 512, 0);
  closeSync(fd);
  if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (n >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (n >= 262 && b.toString('latin1', 257, 262) === 'ustar') return 'tar';
  if (n === 512 && b.every((x) => x === 0)) return 'tar'; // an empty archive
  return 'unknown';
}

/**
 * The path of rel under root, if no component of it is a symlink (so deleting it can never reach
 * outside root, whatever an earlier layer made a symlink to).
 */
export function safePath(root: string, rel: string): string | undefined {
  const parts = posix.normalize('/' + rel).split('/').filter(Boolean);
  if (parts.includes('..')) return undefined;
  let cur = root;
  for (let i = 0; i < parts.length; i++) {
    cur = join(cur, parts[i]);
    let st;
    try { st = lstatSync(cur); } catch { return i === parts.length - 1 ? cur : undefined; }
    if (st.isSymbolicLink() && i < parts.length - 1) return undefined;
  }
  return cur;
}

interface TarMember { name: string; type: string }

/**
 * The members of an uncompressed tar, read header by header (data is skipped, not read), with
 * GNU long names and pax paths resolved. Throws on a bad checksum: a corrupt archive.
 */
export function scanTar(file: string): TarMember[] {
  const fd = openSync(file, 'r');
  const size = fstatSync(fd).size;
  const h = Buffer.alloc(512);
  const out: TarMember[] = [];
  let off = 0, longName: string | undefined, paxPath: string | undefined;
  const str = (b: Buffer, o: number, n: number) => { const s = b.toString('latin1', o, o + n); const z = s.indexOf('\0'); return z < 0 ? s : s.slice(0, z); };
  const readData = (n: number) => { const d = Buffer.alloc(n); readSync(fd, d, 0, n, off + 512); return d; };
  try {
    while (off + 512 <= size) {
      readSync(fd, h, 0, 512, off);
      if (h.every((x) => x === 0)) break; // end of archive
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
      if (parseInt(str(h, 148, 8).trim() || 'x', 8) !== sum) throw new TscError(`${basename(file)} is corrupt or not a tar archive (bad header checksum at byte ${off})`, 'check the file');
      const sizeField = h[124] & 0x80 ? Number(h.readBigUInt64BE(128)) : parseInt(str(h, 124, 12).trim() || '0', 8);
      const type = String.fromCharCode(h[156] || 48);
      const data = Math.ceil(sizeField / 512) * 512;
      if (type === 'L') longName = readData(sizeField).toString('utf8').replace(/\0.*$/s, '');
      else if (type === 'x') {
        const rec = readData(sizeField).toString('utf8');
        const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(rec);
        if (m) paxPath = m[1];
      } else if (type !== 'g' && type !== 'K') {
        const prefix = h.toString('latin1', 257, 263) === 'ustar\0' || h.toString('latin1', 257, 262) === 'ustar' ? str(h, 345, 155) : '';
        const name = paxPath ?? longName ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100));
        out.push({ name, type });
        longName = paxPath = undefined;
      }
      off += 512 + data;
    }
  } finally { closeSync(fd); }
  return out;
}

/** A gzip layer, decompressed to a file next to it (so it is read once more by tar, not twice gunzipped). */
async function gunzipTo(src: string, dest: string): Promise<void> {
  const { createReadStream, createWriteStream } = process.getBuiltinModule('node:fs');
  const { createGunzip } = process.getBuiltinModule('node:zlib');
  const { pipeline } = process.getBuiltinModule('node:stream/promises');
  try {
    await pipeline(createReadStream(src), createGunzip(), createWriteStream(dest));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw e;
    throw new TscError(`${basename(src)} is corrupt: ${(e as Error).message}`, 'check the file');
  }
}

/**
 * Apply one layer (a tar, maybe gzip-compressed) onto root, with OCI whiteouts: deletions first
 * (a whiteout only ever hides what lower layers made), then GNU tar extracts the rest. GNU tar
 * refuses `..` members, strips leading `/`, keeps hard links inside the tree and defers symlinks
 * (a symlink is a placeholder until the end, so nothing is written through it); whiteout markers
 * and device nodes are excluded by their exact names.
 */
export async function applyLayer(root: string, file: string, warnings: string[], scratch: string): Promise<void> {
  const kind = magic(file);
  if (kind === 'zstd') throw new TscError(`layer ${basename(file)} is zstd-compressed, which tscontain cannot read yet`, 'export the image with gzip or uncompressed layers');
  if (kind === 'unknown') throw new TscError(`${basename(file)} is not a tar archive (plain or gzip)`, 'check the file: tscontain import takes rootfs tarballs, docker save archives and OCI images');
  let tarFile = file;
  if (kind === 'gzip') { tarFile = join(scratch, 'layer.tar'); await gunzipTo(file, tarFile); }
  try {
    if (magic(tarFile) === 'unknown') throw new TscError(`${basename(file)} is not a tar archive (plain or gzip)`, 'check the file');
    const ex = join(scratch, 'exclude');
    const empty = readdirSync(root).length === 0;
    let sweep = empty; // device nodes are removed after extraction: all of a first layer's, and those whose names tar's exclude file cannot hold
    if (empty) {
      // onto an empty root (the first layer, a plain tarball) a whiteout hides nothing: no need to
      // read the member list first; markers are excluded by pattern, device nodes removed after
      writeFileSync(ex, '.wh.*\n*/.wh.*\n');
    } else {
      const exclude: string[] = [];
      for (const m of scanTar(tarFile)) {
        const p = posix.normalize(m.name.replace(/^\/+/, '')).replace(/\/$/, '');
        const base = posix.basename(p), dir = posix.dirname(p);
        if (m.type === '3' || m.type === '4' || m.type === '6') {
          warnings.push(`skipped device node ${p}`);
          if (m.name.includes('\n')) sweep = true; else exclude.push(m.name); // a newline would split it into two patterns
          continue;
        }
        if (base === '.wh..wh..opq') {
          const d = safePath(root, dir);
          if (d && existsSync(d)) for (const k of readdirSync(d)) rmSync(join(d, k), { recursive: true, force: true });
          else if (!d) warnings.push(`ignored opaque whiteout through a symlink: ${p}`);
          exclude.push(m.name);
        } else if (base.startsWith('.wh.')) {
          const target = safePath(root, posix.join(dir, base.slice(4)));
          if (target) rmSync(target, { recursive: true, force: true });
          else warnings.push(`ignored whiteout through a symlink: ${p}`);
          exclude.push(m.name);
        }
      }
      writeFileSync(ex, exclude.filter((e) => !e.includes('\n')).map((e) => e + '\n').join(''));
    }
    await run('tar', ['--extract', '--file', tarFile, '--directory', root, '--numeric-owner', '--same-owner', '--same-permissions',
      '--delay-directory-restore', '--no-overwrite-dir', '--anchored', empty ? '--wildcards' : '--no-wildcards', '--exclude-from', ex], file, warnings);
    if (sweep) {
      // device nodes and FIFOs are never kept in an image
      const found = await run('find', [root, '(', '-type', 'b', '-o', '-type', 'c', '-o', '-type', 'p', ')', '-print', '-delete'], file, warnings);
      if (empty) for (const d of found.split('\n').filter(Boolean)) warnings.push(`skipped device node ${d.slice(root.length + 1)}`);
    }
  } finally {
    if (tarFile !== file) rmSync(tarFile, { force: true });
  }
}

/** Run tar or find; tar's refusals of unsafe members are warnings, anything else fails the import. */
function run(cmd: string, args: string[], file: string, warnings: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (err += d));
    c.on('error', (e) => rej(new TscError(`cannot run ${cmd}: ${e.message}`, `install ${cmd === 'tar' ? 'GNU tar' : 'findutils'}`)));
    c.on('close', (code) => { // 'close': after stdout and stderr are drained
      const lines = err.split('\n').filter(Boolean);
      // GNU tar reports refused members (`..`, links out, writes through symlinks) and carries on
      const refused = lines.filter((l) => /Member name contains|Removing leading|Cannot (hard )?link|Cannot create symlink|Cannot open: (File exists|Not a directory)|Exiting with failure status due to previous errors/.test(l));
      warnings.push(...refused.filter((l) => !/Exiting with failure/.test(l)).map((l) => l.replace(/^tar: /, '')));
      if (/No space left|Wrote only \d+ of \d+ bytes/.test(err)) return rej(Object.assign(new Error(err), { code: 'ENOSPC' }));
      if (code === 0 || (code === 2 && refused.length === lines.length)) return res(out);
      rej(new TscError(`${basename(file)} is corrupt or not a tar archive: ${lines.filter((l) => !refused.includes(l)).pop() ?? `${cmd} exited ${code}`}`, 'check the file'));
    });
  });
}

/**
 * syncfs(2) of the store's filesystem (sync -f): the image is on disk before it is renamed into
 * place, so neither a crash nor a full disk that shows only at writeback (delayed allocation)
 * leaves a complete-looking image with files missing their data.
 */
function syncStore(dir: string): Promise<void> {
  return new Promise((res, rej) => {
    const c = spawn('sync', ['-f', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d) => (err += d));
    c.on('error', (e) => rej(new TscError(`cannot run sync: ${e.message}`, 'install coreutils')));
    c.on('close', (code) => {
      if (code === 0) return res();
      if (/No space/.test(err)) return rej(Object.assign(new Error(err), { code: 'ENOSPC' }));
      rej(new TscError(`writing the image to disk failed: ${err.trim() || `sync exited ${code}`}`, 'check the disk; nothing was kept'));
    });
  });
}

interface Found { layers: string[]; config: ImageConfig; format: string }

const readJson = (f: string) => { try { return JSON.parse(readFileSync(f, 'utf8')); } catch { return undefined; } };

function pickConfig(c: { config?: ImageConfig; Config?: ImageConfig } | undefined): ImageConfig {
  const k = c?.config ?? c?.Config ?? {};
  const out: ImageConfig = {};
  for (const key of ['Cmd', 'Entrypoint', 'Env', 'WorkingDir', 'User'] as const) if (k[key] !== undefined && k[key] !== null && k[key] !== '') (out as Record<string, unknown>)[key] = k[key];
  return out;
}

/** A docker save archive or an OCI layout, extracted into dir. */
function findImage(dir: string): Found | undefined {
  const blob = (d: string) => { const [alg, hex] = d.split(':'); if (!/^[a-z0-9]+$/.test(alg) || !/^[a-f0-9]+$/.test(hex)) throw new TscError(`bad digest ${d}`); return join(dir, 'blobs', alg, hex); };
  const manifest = readJson(join(dir, 'manifest.json'));
  if (Array.isArray(manifest) && manifest[0]?.Layers) {
    const m = manifest[0];
    const inside = (p: string) => { const f = resolve(dir, p); if (!f.startsWith(dir + '/')) throw new TscError(`manifest.json points outside the archive: ${p}`); return f; };
    return { layers: m.Layers.map(inside), config: pickConfig(readJson(inside(m.Config))), format: 'docker-archive' };
  }
  if (existsSync(join(dir, 'oci-layout')) && existsSync(join(dir, 'index.json'))) {
    let desc = readJson(join(dir, 'index.json'))?.manifests?.[0];
    if (!desc) throw new TscError('the OCI index lists no image');
    let m = readJson(blob(desc.digest));
    if (m?.manifests) { // an index of platforms: take linux/amd64 or the first
      desc = m.manifests.find((x: { platform?: { os?: string; architecture?: string } }) => x.platform?.os === 'linux' && x.platform?.architecture === 'amd64') ?? m.manifests[0];
      m = readJson(blob(desc.digest));
    }
    if (!m?.layers) throw new TscError('the OCI manifest has no layers');
    return { layers: m.layers.map((l: { digest: string }) => blob(l.digest)), config: pickConfig(readJson(blob(m.config.digest))), format: 'oci' };
  }
  return undefined;
}

/** tscontain import FILE|DIR NAME: builds in a temporary directory, renamed into place only when complete. */
export async function importImage(r: Roots, src: string, name: string, force = false): Promise<ImportResult> {
  if (!NAME.test(name)) throw new TscError(`invalid image name "${name}"`, 'use lower-case letters, digits, "_", "." and "-"');
  if (!existsSync(src)) throw new TscError(`${src} not found`, 'give a tarball, a docker save archive or an OCI layout');
  const dest = imageDir(r, name);
  if (existsSync(dest) && !force) throw new TscError(`image ${name} exists`, 'use --force to replace it, or choose another name');
  const base = join(r.lib, 'images');
  mkdirSync(base, { recursive: true });
  const tmp = join(base, `.import-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'rootfs'), { recursive: true });
  const scratch = join(tmp, 'scratch');
  mkdirSync(scratch);
  const warnings: string[] = [];
  try {
    let found: Found | undefined;
    let layers = 1;
    if (statSync(src).isDirectory()) {
      found = findImage(resolve(src));
      if (!found) throw new TscError(`${src} is a directory but not an OCI image layout (no oci-layout and index.json)`, 'give an OCI layout, or a tarball');
    } else {
      // extract the archive once; if it holds an image (docker save, OCI), apply its layers
      const outer = join(tmp, 'archive');
      mkdirSync(outer);
      await applyLayer(outer, src, warnings, scratch);
      found = findImage(outer);
      if (!found) { rmSync(join(tmp, 'rootfs'), { recursive: true }); renameSync(outer, join(tmp, 'rootfs')); }
    }
    if (found) {
      for (const l of found.layers) await applyLayer(join(tmp, 'rootfs'), l, warnings, scratch);
      layers = found.layers.length;
      rmSync(join(tmp, 'archive'), { recursive: true, force: true });
    }
    rmSync(scratch, { recursive: true, force: true });
    const format = found?.format ?? 'tar';
    writeFileSync(join(tmp, 'config.json'), JSON.stringify({ name, created: new Date().toISOString(), source: `import:${resolve(src)} (${format})`, config: found?.config ?? {} }, null, 2) + '\n');
    await syncStore(tmp);
    if (existsSync(dest)) {
      const old = join(base, `.removing-${name}-${process.pid}`);
      renameSync(dest, old);
      renameSync(tmp, dest);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, dest);
    return { name, format, layers, warnings };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw new TscError(`no space left while importing ${name}`, 'free some disk space; nothing was kept');
    throw e;
  }
}

const IMPORT_OPTIONS: OptDef[] = [{ name: 'force', short: 'f', type: 'bool', desc: 'replace an image of that name' }, { name: 'debug', type: 'bool', desc: 'show stack traces' }];

/** tscontain import [--force] FILE|DIR NAME */
export async function importCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, optionTable(IMPORT_OPTIONS));
  const rest = [...p.positionals];
  // options may also follow the operands (tscontain import FILE NAME --force)
  for (let i = rest.length - 1; i >= 0; i--) if (rest[i] === '--force' || rest[i] === '-f') { p.opts.force = true; rest.splice(i, 1); } else if (rest[i] === '--debug') rest.splice(i, 1);
  if (rest.length !== 2) throw new TscError('import needs a file and a name', 'usage: tscontain import [--force] FILE|DIR NAME');
  if (process.getuid?.() !== 0) throw new TscError('tscontain import needs root (it keeps the owners of the image\'s files)', 'run it as root, e.g. with sudo');
  const res = await importImage(roots(), rest[0], rest[1], !!p.opts.force);
  for (const w of res.warnings) process.stderr.write(`tscontain: warning: ${w}\n`);
  process.stdout.write(`imported ${res.name} (${res.format}, ${res.layers} layer${res.layers === 1 ? '' : 's'})\n`);
  return 0;
}

export function removeImage(r: Roots, name: string, usedBy: string[], force: boolean): void {
  const dir = imageDir(r, name);
  if (!NAME.test(name) || !existsSync(dir)) throw new TscError(`no such image: ${name}`, 'see tscontain images');
  if (usedBy.length && !force) throw new TscError(`image ${name} is used by container ${usedBy[0].slice(0, 12)}${usedBy.length > 1 ? ` and ${usedBy.length - 1} more` : ''}`, 'remove them first (tscontain rm), or use rmi -f');
  const gone = join(dirname(dir), `.removing-${name}-${process.pid}`);
  renameSync(dir, gone);
  rmSync(gone, { recursive: true, force: true });
}

/**
 * tscontain export: the container's filesystem (image + its own layer) as a tarball, read through
 * an overlay mounted in a private mount namespace (or through /proc/PID/root while it runs).
 */
export function exportContainer(r: Roots, id: string, rootfs: string, readOnly: boolean, pid: number | undefined, file: string): Promise<void> {
  const ctr = containerDir(r, id);
  const out = file === '-' ? '-' : resolve(file);
  const tar = `tar --numeric-owner --one-file-system -C "$1" -cf "$2" .`;
  const script = pid
    ? `${tar.replace('"$1"', `/proc/${pid}/root`)}`
    : readOnly
      ? tar
      : `mount -t overlay -o "lowerdir=$3,upperdir=$4/upper,workdir=$4/work" overlay "$1" && ${tar}`;
  const args = pid || readOnly
    ? ['/bin/sh', '-c', script, 'export', readOnly ? rootfs : '', out]
    : ['unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'export', join(ctr, 'rootfs'), out, rootfs, ctr];
  return new Promise((res, rej) => {
    const c = spawn(args[0], args.slice(1), { stdio: ['ignore', file === '-' ? 'inherit' : 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d) => (err += d));
    c.on('close', (code) => (code === 0 ? res() : rej(new TscError(`export failed: ${err.trim().split('\n').pop()}`, 'check the path and the free space'))));
  });
}
