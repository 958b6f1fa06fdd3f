// Entry point. `run` and `plan` take a fast path with no third-party imports (node's own start-up
// is our largest cost); every other command is described with yargs, loaded only when needed.
import { report } from './errors.js';

async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  if (cmd === '--version' || cmd === 'version') {
    const { readFileSync } = process.getBuiltinModule('node:fs'); // import() would go through the ES module loader: ~8 ms
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`tscontain version ${pkg.version}\n`);
    return 0;
  }
  if (cmd === 'run' || cmd === 'plan') {
    const { runCommand } = await import('./run.js');
    return runCommand(argv.slice(1), cmd);
  }
  if (cmd === 'import' && !argv.includes('--help')) {
    const { importCommand } = await import('./store.js'); // big imports: not worth yargs' ~100 ms
    return importCommand(argv.slice(1));
  }
  if (cmd === 'exec' && !argv.includes('--help')) {
    const [{ execCommand }, { roots }] = await Promise.all([import('./lifecycle.js'), import('./paths.js')]);
    return execCommand(roots(), argv.slice(1));
  }
  const { cli } = await import('./commands.js');
  return cli(argv);
}

const argv = process.argv.slice(2);
const debug = argv.includes('--debug');
main(argv).then(
  (code) => process.exit(code), // at once: nothing is left to do, and a natural exit costs ~5 ms more
  (err) => process.exit(report(err, debug)),
);
