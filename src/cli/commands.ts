// Every command but run/plan/exec, described with yargs (help text next to the code it describes).
// Loaded only for these commands: yargs costs ~100 ms to import here.
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TscError } from '../errors.js';
import { buildImage, recipePath, recipesDir, unwritten } from '../store/image.js';
import * as life from '../runtime/lifecycle.js';
import { helpText } from '../spec/options.js';
import { imageDir, roots } from '../store/paths.js';
import { gc } from '../store/state.js';
import { requireRoot, RUN_USAGE } from '../runtime/run.js';

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

const refs = { type: 'string' as const, array: true as const, demandOption: true as const };

export async function cli(argv: string[]): Promise<number> {
  const { default: yargs } = await import('yargs'); // ESM-only: loaded here, never on the run path
  let code = 0;
  const r = roots();
  // cheap reconciliation before every command that looks at or changes containers
  const reconcile = () => { if (process.getuid?.() === 0) gc(r); };
  await yargs(argv)
    .scriptName('tscontain')
    .usage('Containers from scratch: namespaces, cgroups and pivot_root, driven from TypeScript by util-linux.\n\nUsage: tscontain COMMAND [OPTIONS]')
    .command('run', 'run a command in a new container (tscontain run --help)', () => {}, () => { process.stdout.write(helpText(RUN_USAGE)); })
    .command('plan', 'print the sh script that `run` would execute (same options as run)', () => {}, () => { process.stdout.write(helpText(RUN_USAGE.replace('run', 'plan'))); })
    .command('exec', 'run a command in a running container (tscontain exec --help)', () => {}, () => { process.stdout.write(helpText('tscontain exec [OPTIONS] CONTAINER CMD [ARG...]', life.EXEC_OPTIONS)); })
    .command('ps', 'list containers', (y) => y.option('all', { alias: 'a', type: 'boolean', desc: 'include stopped containers' }).option('format', { choices: ['table', 'json'] as const, default: 'table' as const }), (a) => {
      reconcile();
      life.ps(r, !!a.all, a.format);
    })
    .command('logs <container>', 'show the output of a detached container', (y) => y.positional('container', { type: 'string', demandOption: true })
      .option('follow', { alias: 'f', type: 'boolean', desc: 'keep printing until the container ends' })
      .option('tail', { alias: 'n', type: 'number', desc: 'only the last N lines' })
      .option('timestamps', { alias: 't', type: 'boolean', desc: 'show when each line was written' }), async (a) => {
      if (a.tail !== undefined && !(Number.isInteger(a.tail) && a.tail >= 0)) throw new TscError(`invalid --tail "${a.tail}"`, 'use a whole number of lines, 0 or more');
      await life.logs(r, a.container, { follow: a.follow, tail: a.tail, timestamps: a.timestamps });
    })
    .command('stop <containers..>', 'stop containers: SIGTERM, then SIGKILL after the grace period', (y) => y.positional('containers', refs).option('time', { alias: 't', type: 'number', default: 10, desc: 'seconds to wait before SIGKILL' }), async (a) => {
      requireRoot('tscontain stop'); reconcile();
      await life.stop(r, a.containers, a.time);
    })
    .command('kill <containers..>', 'send a signal to the containers\' PID 1 (default KILL)', (y) => y.positional('containers', refs).option('signal', { alias: 's', type: 'string', default: 'KILL' }), (a) => {
      requireRoot('tscontain kill'); reconcile();
      life.kill(r, a.containers, a.signal);
    })
    .command('rm <containers..>', 'remove containers', (y) => y.positional('containers', refs).option('force', { alias: 'f', type: 'boolean', desc: 'kill it first if it runs' }), async (a) => {
      requireRoot('tscontain rm'); reconcile();
      await life.rm(r, a.containers, !!a.force);
    })
    .command('wait <containers..>', 'wait for containers to end and print their exit codes', (y) => y.positional('containers', refs), async (a) => {
      await life.wait(r, a.containers);
    })
    .command('inspect <containers..>', 'show config and state as JSON', (y) => y.positional('containers', refs), (a) => {
      reconcile();
      life.inspect(r, a.containers);
    })
    .command('stats [containers..]', 'CPU, memory and PIDs of running containers, from their cgroups', (y) => y.positional('containers', { type: 'string', array: true }).option('stream', { type: 'boolean', default: true, desc: 'keep printing (--no-stream: print once)' }), async (a) => {
      await life.stats(r, a.containers ?? [], !a.stream);
    })
    .command('rootfs build <name>', 'build an image from rootfs-recipes/<name>', (y) => y.positional('name', { type: 'string', demandOption: true }).option('force', { type: 'boolean', desc: 'rebuild if it exists' }), (a) => {
      requireRoot('tscontain rootfs build');
      const name = a.name as string;
      if (!recipePath(name)) throw new TscError(`no recipe named "${name}"`, `recipes: ${readdirSync(recipesDir()).join(', ')}`);
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
        const bad = unwritten(imageDir(r, n));
        rows.push([n, `${(duSync(join(imageDir(r, n), 'rootfs')) / 1e6).toFixed(1)}MB`, meta.created ?? '?', (meta.source ?? '?') + (bad ? ` [incomplete: ${bad}]` : '')]);
      }
      process.stdout.write(life.table(rows));
    })
    .command('import <file> <name>', 'import a rootfs tarball (plain or gzip), a docker save archive or an OCI image (layout or archive) as an image; --force replaces one', () => {}, () => {})
    .command('rmi <images..>', 'remove images', (y) => y.positional('images', refs).option('force', { alias: 'f', type: 'boolean', desc: 'even if containers use it' }), async (a) => {
      requireRoot('tscontain rmi');
      const { removeImage } = await import('../store/archive.js');
      const { listContainers } = await import('../store/state.js');
      const cs = listContainers(r);
      for (const n of a.images) { removeImage(r, n, cs.filter((c) => c.config.image === n).map((c) => c.id), !!a.force); process.stdout.write(`deleted ${n}\n`); }
    })
    .command('export <container> [file]', 'write a container\'s filesystem as a tarball (to stdout without FILE)', (y) => y.positional('container', { type: 'string', demandOption: true }).positional('file', { type: 'string' }).option('output', { alias: 'o', type: 'string', desc: 'write to this file' }), async (a) => {
      requireRoot('tscontain export');
      const { exportContainer } = await import('../store/archive.js');
      const { findContainer, pid1 } = await import('../store/state.js');
      const c = findContainer(r, a.container);
      if (!c.config.rootfs) throw new TscError(`container ${a.container} has no recorded root filesystem`, 'it may still be starting');
      await exportContainer(r, c.id, c.config.rootfs, !!c.config.readOnly, c.running ? pid1(c) : undefined, a.output ?? a.file ?? '-');
    })
    .command('port <container> [port]', 'list the ports a container publishes, or where one port is published', (y) => y.positional('container', { type: 'string', demandOption: true }).positional('port', { type: 'string' }), (a) => {
      code = life.port(r, a.container, a.port);
    })
    .command('network <action>', 'network prune: remove the bridge tsc0 and the nft table tscontain when no container uses them', (y) => y.positional('action', { choices: ['prune'] as const, demandOption: true }), () => {
      requireRoot('tscontain network prune'); reconcile();
      life.networkPrune(r);
    })
    .command('gc', 'remove what dead containers left behind (cgroups, state)', () => {}, () => {
      requireRoot('tscontain gc');
      const n = gc(r, (s) => process.stdout.write(s + '\n'));
      process.stdout.write(`gc: ${n} leftover(s) cleaned up\n`);
    })
    .command('doctor', 'check that this machine can run containers', () => {}, async () => {
      const { doctor } = await import('../host/doctor.js');
      code = doctor();
    })
    .command('version', 'print tscontain\'s version (also --version)', () => {}, () => {}) // answered in cli.ts
    .option('debug', { type: 'boolean', desc: 'show stack traces' })
    .demandCommand(1, 'no command given')
    .strict()
    .fail((msg, err) => { throw err ?? new TscError(msg, 'see tscontain --help'); })
    .help()
    .version(false)
    .parseAsync();
  return code;
}
