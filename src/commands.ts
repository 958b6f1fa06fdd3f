// Every command but run/plan, described with yargs (help text next to the code it describes).
import { readdirSync, readFileSync, rmSync, lstatSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { TscError } from './errors.js';
import { buildImage, recipePath, RECIPES_DIR } from './image.js';
import { helpText, RUN_OPTIONS } from './options.js';
import { containerDir, imageDir, roots, runDir } from './paths.js';
import { gc, listContainers, type ContainerInfo } from './state.js';
import { requireRoot, RUN_USAGE } from './run.js';

function duSync(dir: string): number {
  let n = 0;
  const walk = (d: string) => {
    let ents;
    try { ents = readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else try { n += lstatSync(p).size; } catch { /* vanished */ }
    }
  };
  walk(dir);
  return n;
}

/** Resolve a container by full id, unique id prefix or name. */
export function findContainer(all: ContainerInfo[], ref: string): ContainerInfo {
  const byName = all.filter((c) => c.config.name === ref);
  if (byName.length === 1) return byName[0];
  const byId = all.filter((c) => c.id.startsWith(ref));
  if (byId.length === 1 && ref.length >= 1) return byId[0];
  if (byId.length > 1) throw new TscError(`container id prefix "${ref}" is ambiguous`, 'give more characters of the id');
  throw new TscError(`no such container: ${ref}`, 'see tscontain ps -a');
}

function status(c: ContainerInfo): string {
  if (c.running) return 'Up';
  if (c.state) return `Exited (${c.state.exitCode})${c.state.oomKilled ? ' OOMKilled' : ''}`;
  return 'Created';
}

export async function cli(argv: string[]): Promise<number> {
  const { default: yargs } = await import('yargs'); // ESM-only: loaded here, never on the run path
  let code = 0;
  const r = roots();
  await yargs(argv)
    .scriptName('tscontain')
    .usage('Containers from scratch: namespaces, cgroups and pivot_root, driven from TypeScript by util-linux.\n\nUsage: tscontain COMMAND [OPTIONS]')
    .command('run', 'run a command in a new container (tscontain run --help)', () => {}, () => { process.stdout.write(helpText(RUN_USAGE)); })
    .command('plan', 'print the sh script that `run` would execute (same options as run)', () => {}, () => { process.stdout.write(helpText(RUN_USAGE.replace('run', 'plan'))); })
    .command('rootfs build <name>', 'build an image from rootfs-recipes/<name>', (y) => y.positional('name', { type: 'string', demandOption: true }).option('force', { type: 'boolean', desc: 'rebuild if it exists' }), (a) => {
      requireRoot('tscontain rootfs build');
      const name = a.name as string;
      if (!recipePath(name)) throw new TscError(`no recipe named "${name}"`, `recipes: ${readdirSync(RECIPES_DIR).join(', ')}`);
      if (existsSync(imageDir(r, name))) {
        if (!a.force) { process.stdout.write(`image ${name} exists (use --force to rebuild)\n`); return; }
        rmSync(imageDir(r, name), { recursive: true, force: true });
      }
      buildImage(r, name);
      process.stdout.write(`built image ${name} in ${imageDir(r, name)}\n`);
    })
    .command('images', 'list images', () => {}, () => {
      let names: string[] = [];
      try { names = readdirSync(join(r.lib, 'images')).filter((n) => !n.startsWith('.')); } catch { /* none */ }
      const rows = [['NAME', 'SIZE', 'CREATED', 'SOURCE']];
      for (const n of names) {
        let meta: { created?: string; source?: string } = {};
        try { meta = JSON.parse(readFileSync(join(imageDir(r, n), 'config.json'), 'utf8')); } catch { /* none */ }
        rows.push([n, `${(duSync(join(imageDir(r, n), 'rootfs')) / 1e6).toFixed(1)}MB`, meta.created ?? '?', meta.source ?? '?']);
      }
      process.stdout.write(table(rows));
    })
    .command('ps', 'list containers', (y) => y.option('all', { alias: 'a', type: 'boolean', desc: 'include stopped containers' }).option('format', { choices: ['table', 'json'] as const, default: 'table' as const }), (a) => {
      const all = listContainers(r).filter((c) => a.all || c.running);
      if (a.format === 'json') { process.stdout.write(JSON.stringify(all.map((c) => ({ id: c.id, name: c.config.name, image: c.config.image, command: c.config.argv, status: status(c), state: c.state })), null, 2) + '\n'); return; }
      process.stdout.write(table([['CONTAINER ID', 'IMAGE', 'COMMAND', 'STATUS', 'NAME'], ...all.map((c) => [c.id.slice(0, 12), c.config.image ?? '', (c.config.argv ?? []).join(' ').slice(0, 30), status(c), c.config.name ?? ''])]));
    })
    .command('rm <containers..>', 'remove stopped containers', (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }), (a) => {
      requireRoot('tscontain rm');
      const all = listContainers(r);
      for (const ref of a.containers as string[]) {
        const c = findContainer(all, ref);
        if (c.running) throw new TscError(`container ${ref} is running`, 'stop it first');
        rmSync(containerDir(r, c.id), { recursive: true, force: true });
        rmSync(runDir(r, c.id), { recursive: true, force: true });
        process.stdout.write(c.id.slice(0, 12) + '\n');
      }
    })
    .command('gc', 'remove what dead containers left behind (cgroups, state)', () => {}, () => {
      requireRoot('tscontain gc');
      const n = gc(r, (s) => process.stdout.write(s + '\n'));
      process.stdout.write(`gc: ${n} container(s) cleaned up\n`);
    })
    .command('doctor', 'check that this machine can run containers', () => {}, async () => {
      const { doctor } = await import('./doctor.js');
      code = doctor();
    })
    .option('debug', { type: 'boolean', desc: 'show stack traces' })
    .demandCommand(1, 'give a command; see tscontain --help')
    .strict()
    .fail((msg, err) => { throw err ?? new TscError(msg, 'see tscontain --help'); })
    .help()
    .version(false)
    .parseAsync();
  return code;
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i] + 3))).join('').trimEnd()).join('\n') + '\n';
}

export { RUN_OPTIONS };
