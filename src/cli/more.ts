// Every command but run and plan: the second bundle (dist/bin/more.cjs, see build.mjs), which the
// run path never loads or parses. Errors are reported here, by this bundle's own TscError class.
import { report } from '../errors.js';

export async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  try {
    if (cmd === 'import' && !argv.includes('--help')) {
      const { importCommand } = await import('../store/archive.js');
      return await importCommand(argv.slice(1));
    }
    if (cmd === 'exec' && !argv.includes('--help')) {
      const [{ execCommand }, { roots }] = await Promise.all([
        import('../runtime/lifecycle.js'),
        import('../store/paths.js'),
      ]);
      return await execCommand(roots(), argv.slice(1));
    }
    const { cli } = await import('./commands.js');
    return await cli(argv);
  } catch (err) {
    return report(err, argv.includes('--debug'));
  }
}
