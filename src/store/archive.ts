// The image store: import (rootfs tarballs, `docker save` archives, OCI image layouts and
// archives), rmi and export. Layers are applied in order into one directory, with OCI whiteouts.
// Extraction never writes outside the image's directory: GNU tar refuses `..` members, strips
// leading `/`, keeps hard links in the tree and never writes through a symlink it extracted;
// whiteouts are applied only on paths with no symlink in them. No device node is ever made: tar
// runs without CAP_MKNOD (setpriv), so the kernel refuses every one, however the archive names it.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { TscError, requireRoot } from '../errors.js';
import { bootId, UNSYNCED, type ImageConfig } from './image.js';
import { optionTable, parseArgs, type OptDef } from '../spec/options.js';
import { imageDir, containerDir, ensureRoots, roots, type Roots } from './paths.js';

export interface ImportResult {
  name: string;
  format: string;
  layers: number;
  warnings: string[];
}

const NAME = /^[a-z0-9][a-z0-9_.-]*$/;

/** What a file (or a range of it) starts with. */
function magic(file: string, at = 0): 'gzip' | 'zstd' | 'tar' | 'unknown' {
  const b = Buffer.alloc(512);
  const fd = openSync(file, 'r');
  let n: number;
  try {
    n = readSync(fd, b, 0, 512, at);
  } finally {
    closeSync(fd);
  }
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
  const parts = posix
    .normalize('/' + rel)
    .split('/')
    .filter(Boolean);
  if (parts.includes('..')) return undefined;
  let cur = root;
  for (let i = 0; i < parts.length; i++) {
    cur = join(cur, parts[i]);
    let st;
    try {
      st = lstatSync(cur);
    } catch {
      return i === parts.length - 1 ? cur : undefined;
    }
    if (st.isSymbolicLink() && i < parts.length - 1) return undefined;
  }
  return cur;
}

/** A member of a tar archive: where its data is, and what GNU tar will make of it. */
export interface TarMember {
  name: string;
  type: string;
  linkname: string;
  offset: number;
  size: number;
}

/** Bytes [start, start + size) of a file. */
export interface Range {
  file: string;
  start: number;
  size: number;
}

/** A scan: the members; `ended`: the end-of-archive block lies inside the range. */
export interface Scan {
  members: TarMember[];
  ended: boolean;
}

const ZERO_BLOCK = Buffer.alloc(512);

/**
 * The members of an uncompressed tar (or of a range of a file that is one; the first `max`), read header by header
 * (data is skipped, not read), with GNU long names and pax records resolved: where each member's
 * data lies, and the names whiteouts are matched against. Throws on a bad checksum.
 */
export function scanTar(r: Range, max = Infinity): Scan {
  const fd = openSync(r.file, 'r');
  const h = Buffer.alloc(512);
  const members: TarMember[] = [];
  let ended = false;
  let off = 0,
    longName: string | undefined,
    longLink: string | undefined,
    pax: Record<string, string> = {};
  const str = (b: Buffer, o: number, n: number) => {
    const s = b.toString('latin1', o, o + n);
    const z = s.indexOf('\0');
    return z < 0 ? s : s.slice(0, z);
  };
  // a name as Node.js names the file tar makes of it: UTF-8 (a name that is no UTF-8 cannot be named)
  const text = (b: Buffer) => {
    const z = b.indexOf(0);
    const raw = z < 0 ? b : b.subarray(0, z);
    const ascii = raw.toString('latin1');
    if (!/[^\x00-\x7f]/.test(ascii)) return ascii;
    return raw.toString('utf8');
  };
  const readData = (n: number) => {
    const d = Buffer.alloc(n);
    readSync(fd, d, 0, n, r.start + off + 512);
    return d;
  };
  try {
    while (off + 512 <= r.size && members.length < max) {
      if (readSync(fd, h, 0, 512, r.start + off) < 512) break;
      if (h.equals(ZERO_BLOCK)) {
        ended = true;
        break;
      } // end of archive
      let sum = 8 * 32; // the checksum field counts as blanks
      for (let i = 0; i < 148; i++) sum += h[i];
      for (let i = 156; i < 512; i++) sum += h[i];
      if (parseInt(str(h, 148, 8).trim() || 'x', 8) !== sum)
        throw new TscError(
          `${basename(r.file)} is corrupt or not a tar archive (bad header checksum at byte ${off})`,
          'check the file',
        );
      let size = h[124] & 0x80 ? Number(h.readBigUInt64BE(128)) : parseInt(str(h, 124, 12).trim() || '0', 8);
      const type = String.fromCharCode(h[156] || 48);
      if (type === 'L') longName = text(readData(size));
      else if (type === 'K') longLink = text(readData(size));
      else if (type === 'x') {
        pax = {};
        for (const m of readData(size)
          .toString('utf8')
          .matchAll(/(\d+) ([^=\n]+)=([^\n]*)\n/g)) {
          pax[m[2]] = m[3];
        }
      } else if (type !== 'g') {
        if (pax.size !== undefined) size = Number(pax.size);
        const prefix = h.toString('latin1', 257, 263) === 'ustar\0' ? text(h.subarray(345, 500)) : '';
        const name =
          pax.path ?? longName ?? (prefix ? `${prefix}/${text(h.subarray(0, 100))}` : text(h.subarray(0, 100)));
        const linkname = pax.linkpath ?? longLink ?? text(h.subarray(157, 257));
        const regular = type === '0' || type === '7';
        members.push({ name, type, linkname, offset: r.start + off + 512, size: regular ? size : 0 });
        longName = longLink = undefined;
        pax = {};
      }
      if (!Number.isSafeInteger(size) || size < 0)
        throw new TscError(`${basename(r.file)} is corrupt (bad size at byte ${off})`, 'check the file');
      off += 512 + Math.ceil(size / 512) * 512;
    }
  } finally {
    closeSync(fd);
  }
  return { members, ended };
}

/** A member's path as tar extracts it: no leading /, no ./, no trailing / */
const memberPath = (name: string) => posix.normalize(name.replace(/^\/+/, '')).replace(/\/$/, '').replace(/^\.\//, '');

/** A gzip layer (or range), decompressed to a file (so it is read once more by tar, not twice gunzipped). */
async function gunzipTo(src: Range, dest: string): Promise<void> {
  const { createGunzip } = process.getBuiltinModule('node:zlib');
  const { pipeline } = process.getBuiltinModule('node:stream/promises');
  try {
    await pipeline(
      createReadStream(src.file, { start: src.start, end: src.start + src.size - 1 }),
      createGunzip(),
      createWriteStream(dest),
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw e;
    throw new TscError(`${basename(src.file)} is corrupt: ${(e as Error).message}`, 'check the file');
  }
}

/**
 * Apply one layer (a tar, maybe gzip-compressed, maybe a member of a larger archive) onto root,
 * with OCI whiteouts: deletions first (a whiteout only ever hides what lower layers made), then
 * GNU tar extracts the rest. GNU tar refuses `..` members, strips leading `/`, keeps hard links
 * inside the tree and defers symlinks (a symlink is a placeholder until the end, so nothing is
 * written through it). Whiteout markers are excluded by their exact names. A first layer (onto an
 * empty root: no whiteout can hide anything) is extracted at once, without a scan.
 */
export async function applyLayer(
  root: string,
  src: Range,
  warnings: string[],
  scratch: string,
  what = basename(src.file),
): Promise<void> {
  const kind = magic(src.file, src.start);
  if (kind === 'zstd')
    throw new TscError(
      `layer ${what} is zstd-compressed, which tscontain cannot read yet`,
      'export the image with gzip or uncompressed layers',
    );
  if (kind === 'unknown')
    throw new TscError(
      `${what} is not a tar archive (plain or gzip)`,
      'check the file: tscontain import takes rootfs tarballs, docker save archives and OCI images',
    );
  let layer = src;
  const unzipped = join(scratch, 'layer.tar');
  if (kind === 'gzip') {
    await gunzipTo(src, unzipped);
    layer = { file: unzipped, start: 0, size: statSync(unzipped).size };
    if (magic(unzipped) === 'unknown')
      throw new TscError(`${what} is not a tar archive (plain or gzip)`, 'check the file');
  }
  try {
    if (readdirSync(root).length === 0)
      await (whole(layer)
        ? extractWhole(root, layer.file, warnings, scratch, what)
        : extractFirst(root, layer, warnings, scratch, what));
    else await applyScanned(root, layer, scanTar(layer), warnings, scratch, what);
  } finally {
    rmSync(unzipped, { force: true });
  }
}

async function applyScanned(
  root: string,
  layer: Range,
  scan: Scan,
  warnings: string[],
  scratch: string,
  what: string,
): Promise<void> {
  const exclude: string[] = [];
  for (const m of scan.members) {
    if (!m.name.includes('.wh.')) continue;
    const p = memberPath(m.name);
    const base = posix.basename(p),
      dir = posix.dirname(p);
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
  const ex = join(scratch, 'exclude');
  writeFileSync(
    ex,
    exclude
      .filter((e) => !e.includes('\n'))
      .map((e) => e + '\n')
      .join(''),
  ); // (a newline would split a name in two)
  await tar(
    [...TAR_X, '--file', whole(layer) ? layer.file : '-', '--directory', root, '--no-wildcards', '--exclude-from', ex],
    what,
    warnings,
    whole(layer) ? undefined : { ...layer, ended: scan.ended },
  );
}

const TAR_X = [
  '--extract',
  '--numeric-owner',
  '--same-owner',
  '--same-permissions',
  '--delay-directory-restore',
  '--no-overwrite-dir',
  '--anchored',
];

/** A first layer's tar arguments: over an empty root a whiteout hides nothing, so markers are excluded by pattern. */
function firstArgs(root: string, file: string, scratch: string): string[] {
  const ex = join(scratch, 'exclude');
  writeFileSync(ex, '.wh.*\n*/.wh.*\n');
  return [...TAR_X, '--file', file, '--directory', root, '--wildcards', '--exclude-from', ex];
}

/**
 * A whole file onto an empty root (a rootfs tarball, a gunzipped layer, a layer blob of an OCI
 * layout): tar alone, nothing of ours reads it. `stop` may then take it for a docker save or OCI
 * archive after all (it made a manifest.json): the tree goes and stop's result is returned.
 */
async function extractWhole<T>(
  root: string,
  file: string,
  warnings: string[],
  scratch: string,
  what: string,
  stop?: () => T | undefined,
): Promise<T | undefined> {
  const own: string[] = [];
  await tar(firstArgs(root, file, scratch), what, own);
  const result = stop?.();
  if (result !== undefined) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root);
    return result;
  }
  warnings.push(...own);
  return undefined;
}

/**
 * A first layer inside an archive (a docker save or OCI archive): tar reads it from the archive
 * itself (see tar()) while its member list is read, which tells whether the layer ends inside its
 * range. If it does not, tar may have read on into the archive: its work is thrown away and it
 * reads the layer again through a pipe that ends there.
 */
async function extractFirst(
  root: string,
  layer: Range,
  warnings: string[],
  scratch: string,
  what: string,
): Promise<void> {
  const args = firstArgs(root, '-', scratch);
  let child: ChildProcess | undefined;
  let own: string[] = [];
  let extracting = tar(args, what, own, { ...layer, ended: true }, (c) => {
    child = c;
  });
  extracting.catch(() => {
    /* awaited below, or abandoned */
  });
  let scan: Scan;
  try {
    scan = scanTar(layer);
  } catch (e) {
    child?.kill('SIGKILL');
    await extracting.catch(() => {});
    throw e;
  }
  if (!scan.ended) {
    child?.kill('SIGKILL');
    await extracting.catch(() => {});
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root);
    own = [];
    extracting = tar(args, what, own, { ...layer, ended: false });
  }
  await extracting;
  warnings.push(...own);
}

/** Does an archive look like a docker save or OCI archive from its first members? (A guess: it only decides whether to read the whole member list before extracting.) */
function looksLikeImage(archive: Range): boolean {
  return scanTar(archive, 16).members.some((m) =>
    /^(manifest\.json|oci-layout|index\.json|repositories|blobs(\/.*)?|[0-9a-f]{64}(\/.*|\.json)?)$/.test(
      memberPath(m.name),
    ),
  );
}

/**
 * A whole archive: a docker save or OCI archive (its layers are returned, read where they lie in
 * it), or else a rootfs tarball, extracted as the image's only layer. What its first members look
 * like decides only the order: read the member list first, or extract first.
 */
async function applyArchive(
  root: string,
  archive: Range,
  warnings: string[],
  scratch: string,
  what: string,
): Promise<Found | undefined> {
  const image = () => findImage(archiveFiles(archive.file, scanTar(archive).members));
  if (looksLikeImage(archive)) {
    const found = image();
    if (found) return found;
  }
  // not (obviously) an image: extracted as a rootfs; if that made a manifest, it was one after all
  return extractWhole(root, archive.file, warnings, scratch, what, () =>
    existsSync(join(root, 'manifest.json')) || existsSync(join(root, 'oci-layout')) ? image() : undefined,
  );
}

const whole = (r: Range) => r.start === 0 && r.size === statSync(r.file).size;

/**
 * GNU tar without CAP_MKNOD (setpriv drops it from the bounding set, so tar never holds it): the
 * kernel refuses every device node, however the archive names it, and tar reports each and carries
 * on (FIFOs need no privilege and are kept, as docker keeps them). Messages in C: matched below.
 */
const TAR = ['setpriv', '--bounding-set=-mknod', 'tar'];
const C_LOCALE = { ...process.env, LC_ALL: 'C' };

/**
 * Run tar; its refusals of unsafe members and of device nodes are warnings, anything else fails the
 * import. With `input`, tar reads a range of a file (a layer inside a docker save or OCI archive)
 * on its stdin: the file itself, moved to the range's start by dd (a seek, no copy), when the layer
 * ends with its end-of-archive block inside the range (tar stops there); else through a pipe that
 * ends with the range (~1.5 x slower here), so tar never reads past the layer into the archive.
 */
function tar(
  args: string[],
  what: string,
  warnings: string[],
  input?: Range & { ended: boolean },
  started?: (c: ChildProcess) => void,
): Promise<void> {
  return new Promise((res, rej) => {
    let c: ChildProcess;
    if (input?.ended) {
      const fd = openSync(input.file, 'r');
      try {
        c = spawn(
          '/bin/sh',
          [
            '-c',
            'dd iflag=skip_bytes skip="$0" count=0 status=none && exec "$@"',
            String(input.start),
            ...TAR,
            ...args,
          ],
          { stdio: [fd, 'ignore', 'pipe'], env: C_LOCALE },
        );
      } finally {
        closeSync(fd);
      }
    } else {
      c = spawn(TAR[0], [...TAR.slice(1), ...args], {
        stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'],
        env: C_LOCALE,
      });
      if (input) {
        const stdin = c.stdin!;
        stdin.on('error', () => {
          /* tar stops reading at the end of its archive */
        });
        createReadStream(input.file, { start: input.start, end: input.start + input.size - 1 })
          .on('error', (e) => stdin.destroy(e))
          .pipe(stdin);
      }
    }
    started?.(c);
    let err = '';
    c.stderr!.on('data', (d) => (err += d));
    c.on('error', (e) => rej(new TscError(`cannot run tar: ${e.message}`, 'install GNU tar and util-linux (setpriv)')));
    c.on('close', (code) => {
      // 'close': after stderr is drained
      const lines = err.split('\n').filter(Boolean);
      // GNU tar reports refused members (`..`, links out, writes through symlinks, device nodes) and carries on
      const refused = lines.filter((l) =>
        /Member name contains|Removing leading|Cannot (hard )?link|Cannot create symlink|Cannot open: (File exists|Not a directory)|Cannot mknod: Operation not permitted|Exiting with failure status due to previous errors/.test(
          l,
        ),
      );
      for (const l of refused) {
        const dev = /^tar: (.*): Cannot mknod: Operation not permitted$/.exec(l);
        if (dev) warnings.push(`skipped device node ${memberPath(dev[1])}`);
        else if (!/Exiting with failure/.test(l)) warnings.push(l.replace(/^tar: /, ''));
      }
      if (/No space left|Wrote only \d+ of \d+ bytes/.test(err))
        return rej(Object.assign(new Error(err), { code: 'ENOSPC' }));
      if (code === 0 || (code === 2 && refused.length === lines.length)) return res();
      rej(
        new TscError(
          `${what} is corrupt or not a tar archive: ${lines.filter((l) => !refused.includes(l)).pop() ?? `tar exited ${code}`}`,
          'check the file',
        ),
      );
    });
  });
}

/**
 * An imported image is renamed into place as soon as it is complete, like docker and containerd
 * do, but not left to chance: its `.unsynced` mark holds this boot's id until a detached
 * `sync -f` (syncfs(2)) has put it on disk, then goes. Until then the page cache has every byte,
 * so it runs; after a crash (another boot, mark still there) or a failed write-back (`failed` in
 * the mark: a full disk or an I/O error that shows only then) `run` refuses it. So an import does
 * not wait for the disk, and no image that lost data in a crash ever looks complete.
 */
function writeBack(dir: string): { start(): Promise<void>; cancel(): void } {
  // forked on the next turn of the event loop, which comes while tar works (a fork of this process
  // is costly); it waits for a line on its stdin: the image is in place. If the import
  // fails, the pipe closes and it just exits.
  let c: ChildProcess | undefined,
    cancelled = false;
  const fork = () => {
    if (c || cancelled) return c;
    c = spawn(
      '/bin/sh',
      ['-c', `read -r go || exit 0; cd "$0" && { sync -f . && rm -f ${UNSYNCED} || echo failed >> ${UNSYNCED}; }`, dir],
      { detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
    );
    c.on('error', () => {
      /* the mark stays: run refuses the image after a restart */
    });
    c.stdin!.on('error', () => {
      /* it is gone */
    });
    c.unref();
    return c;
  };
  setImmediate(fork);
  return {
    start: () => new Promise((res) => fork()!.stdin!.end('go\n', () => res())),
    cancel: () => {
      cancelled = true;
      c?.stdin?.end();
    },
  };
}

interface Found {
  layers: Range[];
  config: ImageConfig;
  format: string;
}

const parseJson = (s: string | undefined) => {
  try {
    return s === undefined ? undefined : JSON.parse(s);
  } catch {
    return undefined;
  }
};

function pickConfig(c: { config?: ImageConfig; Config?: ImageConfig } | undefined): ImageConfig {
  const k = c?.config ?? c?.Config ?? {};
  const out: ImageConfig = {};
  for (const key of ['Cmd', 'Entrypoint', 'Env', 'WorkingDir', 'User', 'ExposedPorts'] as const)
    if (k[key] !== undefined && k[key] !== null && k[key] !== '') (out as Record<string, unknown>)[key] = k[key];
  return out;
}

/** An image's files by path: a directory (OCI layout) or the members of an archive, read where they lie. */
interface Files {
  get(path: string): Range | undefined;
}

function dirFiles(dir: string): Files {
  return {
    get(p) {
      const f = resolve(dir, p);
      if (!f.startsWith(dir + '/')) return undefined;
      try {
        const st = statSync(f);
        return st.isFile() ? { file: f, start: 0, size: st.size } : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

function archiveFiles(file: string, members: TarMember[]): Files {
  const byPath = new Map<string, TarMember>();
  for (const m of members) byPath.set(memberPath(m.name), m); // the last of a name wins, as when extracted
  const get = (p: string, depth: number): Range | undefined => {
    const m = byPath.get(memberPath(p));
    if (!m || depth > 8) return undefined;
    if (m.type === '0' || m.type === '7') return { file, start: m.offset, size: m.size };
    if (m.type === '1') return get(m.linkname, depth + 1); // a hard link names an earlier member
    if (m.type === '2') {
      const t = posix.normalize(posix.join(posix.dirname(memberPath(m.name)), m.linkname));
      return t.startsWith('../') ? undefined : get(t, depth + 1);
    }
    return undefined;
  };
  return { get: (p) => get(p, 0) };
}

function readRange(r: Range | undefined): string | undefined {
  if (!r) return undefined;
  const b = Buffer.alloc(r.size);
  const fd = openSync(r.file, 'r');
  try {
    readSync(fd, b, 0, r.size, r.start);
  } finally {
    closeSync(fd);
  }
  return b.toString('utf8');
}

/** A docker save archive or an OCI image (layout or archive), by its manifest; layers where they lie. */
function findImage(files: Files): Found | undefined {
  const json = (p: string) => parseJson(readRange(files.get(p)));
  const blob = (d: string) => {
    const [alg, hex] = String(d).split(':');
    if (!/^[a-z0-9]+$/.test(alg) || !/^[a-f0-9]+$/.test(hex ?? '')) throw new TscError(`bad digest ${d}`);
    return `blobs/${alg}/${hex}`;
  };
  const need = (p: string) => {
    if (p.split('/').includes('..') || p.startsWith('/'))
      throw new TscError(`the manifest points outside the image: ${p}`);
    const r = files.get(p);
    if (!r) throw new TscError(`the image has no ${p}, which its manifest lists`, 'check the archive');
    return r;
  };
  const manifest = json('manifest.json');
  if (Array.isArray(manifest) && manifest[0]?.Layers) {
    const m = manifest[0];
    return { layers: (m.Layers as string[]).map(need), config: pickConfig(json(m.Config)), format: 'docker-archive' };
  }
  if (files.get('oci-layout') && files.get('index.json')) {
    let desc = json('index.json')?.manifests?.[0];
    if (!desc) throw new TscError('the OCI index lists no image');
    let m = json(blob(desc.digest));
    if (m?.manifests) {
      // an index of platforms: take linux/amd64 or the first
      desc =
        m.manifests.find(
          (x: { platform?: { os?: string; architecture?: string } }) =>
            x.platform?.os === 'linux' && x.platform?.architecture === 'amd64',
        ) ?? m.manifests[0];
      m = json(blob(desc.digest));
    }
    if (!m?.layers) throw new TscError('the OCI manifest has no layers');
    return {
      layers: m.layers.map((l: { digest: string }) => need(blob(l.digest))),
      config: pickConfig(json(blob(m.config.digest))),
      format: 'oci',
    };
  }
  return undefined;
}

/**
 * tscontain import FILE|DIR NAME: builds in a temporary directory, renamed into place only when
 * complete. An archive is read where it lies: its member list first (headers only); a docker save
 * or OCI archive's layers are then extracted straight from it, never copied out first.
 */
export async function importImage(r: Roots, src: string, name: string, force = false): Promise<ImportResult> {
  if (!NAME.test(name))
    throw new TscError(`invalid image name "${name}"`, 'use lower-case letters, digits, "_", "." and "-"');
  if (!existsSync(src))
    throw new TscError(`${src} not found`, 'give a tarball, a docker save archive or an OCI layout');
  const dest = imageDir(r, name);
  if (existsSync(dest) && !force)
    throw new TscError(`image ${name} exists`, 'use --force to replace it, or choose another name');
  const base = join(r.lib, 'images');
  ensureRoots(r);
  mkdirSync(base, { recursive: true });
  const tmp = join(base, `.import-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  const root = join(tmp, 'rootfs');
  mkdirSync(root, { recursive: true });
  const scratch = join(tmp, 'scratch');
  mkdirSync(scratch);
  const warnings: string[] = [];
  const sync = writeBack(dest);
  try {
    let found: Found | undefined;
    if (statSync(src).isDirectory()) {
      found = findImage(dirFiles(resolve(src)));
      if (!found)
        throw new TscError(
          `${src} is a directory but not an OCI image layout (no oci-layout and index.json)`,
          'give an OCI layout, or a tarball',
        );
    } else {
      let archive: Range = { file: resolve(src), start: 0, size: statSync(src).size };
      const kind = magic(archive.file);
      if (kind === 'zstd')
        throw new TscError(
          `${basename(src)} is zstd-compressed, which tscontain cannot read yet`,
          'decompress it first (zstd -d)',
        );
      if (kind === 'unknown')
        throw new TscError(
          `${basename(src)} is not a tar archive (plain or gzip)`,
          'check the file: tscontain import takes rootfs tarballs, docker save archives and OCI images',
        );
      if (kind === 'gzip') {
        // a gzip-compressed rootfs tarball or docker save archive
        const outer = join(scratch, 'archive.tar');
        await gunzipTo(archive, outer);
        archive = { file: outer, start: 0, size: statSync(outer).size };
        if (magic(outer) === 'unknown')
          throw new TscError(`${basename(src)} is not a tar archive (plain or gzip)`, 'check the file');
      }
      found = await applyArchive(root, archive, warnings, scratch, basename(src));
    }
    if (found)
      for (const l of found.layers)
        await applyLayer(
          root,
          l,
          warnings,
          scratch,
          found.layers.length > 1 ? `layer ${found.layers.indexOf(l) + 1} of ${basename(src)}` : basename(src),
        );
    rmSync(scratch, { recursive: true, force: true });
    const format = found?.format ?? 'tar';
    writeFileSync(
      join(tmp, 'config.json'),
      JSON.stringify(
        {
          name,
          created: new Date().toISOString(),
          source: `import:${resolve(src)} (${format})`,
          config: found?.config ?? {},
        },
        null,
        2,
      ) + '\n',
    );
    writeFileSync(join(tmp, UNSYNCED), bootId() + '\n');
    if (existsSync(dest)) {
      const old = join(base, `.removing-${name}-${process.pid}`);
      renameSync(dest, old);
      renameSync(tmp, dest);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, dest);
    await sync.start();
    return { name, format, layers: found?.layers.length ?? 1, warnings };
  } catch (e) {
    sync.cancel();
    rmSync(tmp, { recursive: true, force: true });
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC')
      throw new TscError(`no space left while importing ${name}`, 'free some disk space; nothing was kept');
    throw e;
  }
}

const IMPORT_OPTIONS: OptDef[] = [
  { name: 'force', short: 'f', type: 'bool', desc: 'replace an image of that name' },
  { name: 'debug', type: 'bool', desc: 'show stack traces' },
];

/** tscontain import [--force] FILE|DIR NAME */
export async function importCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, optionTable(IMPORT_OPTIONS));
  const rest = [...p.positionals];
  // options may also follow the operands (tscontain import FILE NAME --force)
  for (let i = rest.length - 1; i >= 0; i--)
    if (rest[i] === '--force' || rest[i] === '-f') {
      p.opts.force = true;
      rest.splice(i, 1);
    } else if (rest[i] === '--debug') rest.splice(i, 1);
  if (rest.length !== 2)
    throw new TscError('import needs a file and a name', 'usage: tscontain import [--force] FILE|DIR NAME');
  requireRoot('tscontain import', "run it as root, e.g. with sudo: it keeps the owners of the image's files");
  const res = await importImage(roots(), rest[0], rest[1], !!p.opts.force);
  for (const w of res.warnings) process.stderr.write(`tscontain: warning: ${w}\n`);
  process.stdout.write(`imported ${res.name} (${res.format}, ${res.layers} layer${res.layers === 1 ? '' : 's'})\n`);
  return 0;
}

export function removeImage(r: Roots, name: string, usedBy: string[], force: boolean): void {
  const dir = imageDir(r, name);
  if (!NAME.test(name) || !existsSync(dir)) throw new TscError(`no such image: ${name}`, 'see tscontain images');
  if (usedBy.length && !force)
    throw new TscError(
      `image ${name} is used by container ${usedBy[0].slice(0, 12)}${usedBy.length > 1 ? ` and ${usedBy.length - 1} more` : ''}`,
      'remove them first (tscontain rm), or use rmi -f',
    );
  const gone = join(dirname(dir), `.removing-${name}-${process.pid}`);
  renameSync(dir, gone);
  rmSync(gone, { recursive: true, force: true });
}

/**
 * tscontain export: the container's filesystem (image + its own layer) as a tarball, read through
 * an overlay mounted in a private mount namespace (or through /proc/PID/root while it runs).
 */
export function exportContainer(
  r: Roots,
  id: string,
  rootfs: string,
  readOnly: boolean,
  pid: number | undefined,
  file: string,
): Promise<void> {
  const ctr = containerDir(r, id);
  const out = file === '-' ? '-' : resolve(file);
  const tar = `tar --numeric-owner --one-file-system -C "$1" -cf "$2" .`;
  const script = pid
    ? `${tar.replace('"$1"', `/proc/${pid}/root`)}`
    : readOnly
      ? tar
      : `mount -t overlay -o "lowerdir=$3,upperdir=$4/upper,workdir=$4/work" overlay "$1" && ${tar}`;
  const args =
    pid || readOnly
      ? ['/bin/sh', '-c', script, 'export', readOnly ? rootfs : '', out]
      : [
          'unshare',
          '--mount',
          '--propagation',
          'private',
          '/bin/sh',
          '-c',
          script,
          'export',
          join(ctr, 'rootfs'),
          out,
          rootfs,
          ctr,
        ];
  return new Promise((res, rej) => {
    const c = spawn(args[0], args.slice(1), { stdio: ['ignore', file === '-' ? 'inherit' : 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d) => (err += d));
    c.on('close', (code) =>
      code === 0
        ? res()
        : rej(new TscError(`export failed: ${err.trim().split('\n').pop()}`, 'check the path and the free space')),
    );
  });
}
