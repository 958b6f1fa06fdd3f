// dist/bin/tscontain.cjs: loads the CLI (main.cjs) through V8's code cache, main.cjs.cache, which
// `npm run build` makes by running `tscontain plan` once. Compiling our own JavaScript is a good
// part of what the run path spends in JavaScript; with the cache V8 only checks and loads it. The
// cache's first line holds main.cjs's size and mtime: V8 itself checks only the source's length.
// Without a usable cache (another Node.js version: V8 rejects it) main.cjs is compiled as usual.
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { Script } from 'node:vm';

const file = `${__dirname}/main.cjs`;
const cacheFile = `${file}.cache`;
const source = readFileSync(file, 'utf8');
const st = statSync(file);
const stamp = `${st.size} ${st.mtimeMs}\n`;
let cachedData: Buffer | undefined;
try {
  const c = readFileSync(cacheFile);
  const nl = c.indexOf(10);
  if (c.toString('latin1', 0, nl + 1) === stamp) cachedData = c.subarray(nl + 1);
} catch {
  /* no cache yet */
}
// the wrapper node's own CommonJS loader puts around a module, on the first line (line numbers stay)
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: file,
  cachedData,
});
if (process.env.TSCONTAIN_WRITE_CODE_CACHE === '1') {
  // at exit, when everything the command ran has been compiled (build.mjs sets this)
  process.on('exit', () => {
    const tmp = `${cacheFile}.${process.pid}`;
    writeFileSync(tmp, Buffer.concat([Buffer.from(stamp, 'latin1'), script.createCachedData()]));
    renameSync(tmp, cacheFile);
  });
}
const mod = { exports: {} };
script.runInThisContext()(mod.exports, require, mod, file, __dirname);
