// Entry point (dist/bin/main.cjs, loaded by dist/bin/tscontain.cjs). `run` and `plan` take a fast
// path with no third-party imports (node's own start-up is our largest cost); every other command
// is in a second bundle, dist/bin/more.cjs, loaded only when needed, so the run path never parses it.
import { report } from '../errors.js';

async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  if (cmd === '--version' || cmd === 'version') {
    const { readFileSync } = process.getBuiltinModule('node:fs'); // import() would go through the ES module loader
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`tscontain version ${pkg.version}\n`);
    return 0;
  }
  if (cmd === 'run' || cmd === 'plan') {
    const { runCommand } = await import('../runtime/run.js');
    return runCommand(argv.slice(1), cmd);
  }
  // a plain require of the second bundle (build.mjs keeps it external): no ES module loader
  const more = require('./more.cjs') as typeof import('./more.js');
  return more.main(argv);
}

const argv = process.argv.slice(2);
const debug = argv.includes('--debug');
main(argv).then(
  (code) => process.exit(code), // at once: nothing is left to do, and a natural exit costs more
  (err) => process.exit(report(err, debug)),
);
