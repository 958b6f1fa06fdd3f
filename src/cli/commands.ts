// Every command but run, plan, exec and import: one table entry each (usage, options, what it
// does), parsed by the same option parser as run (src/spec/options.ts), docker's option names.
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TscError } from '../errors.js';
import { buildImage, recipePath, recipesDir, unwritten } from '../store/image.js';
import * as life from '../runtime/lifecycle.js';
import { helpText, optionTable, parseArgs, type OptDef, type ParsedArgs } from '../spec/options.js';
import { imageDir, roots, type Roots } from '../store/paths.js';
import { gc } from '../store/state.js';
import { requireRoot, RUN_USAGE } from '../runtime/run.js';

function duSync(dir: string): number {
  let n = 0;
  const walk = (d: string) => {
    let ents;
    try {
      ents = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else
        try {
          n += lstatSync(p).size;
        } catch {
          /* vanished */
        }
    }
  };
  walk(dir);
  return n;
}

interface Command {
  /** the words that name it: ['ps'], ['rootfs', 'build'] */
  name: string[];
  /** what follows the name in the usage line */
  args: string;
  desc: string;
  options?: OptDef[];
  /** how many positionals it takes */
  min: number;
  max: number;
  run: (a: ParsedArgs['opts'], pos: string[]) => Promise<number | void> | number | void;
}

const bool = (name: string, desc: string, short?: string): OptDef => ({ name, short, type: 'bool', desc });
const str = (name: string, arg: string, desc: string, short?: string): OptDef => ({
  name,
  short,
  type: 'string',
  arg,
  desc,
});
const FORCE = (desc: string) => bool('force', desc, 'f');

function count(v: unknown, what: string, dflt?: number): number | undefined {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v))
    throw new TscError(`invalid ${what} "${String(v)}"`, 'use a whole number, 0 or more');
  return n;
}

function commands(r: Roots): Command[] {
  // cheap reconciliation before every command that looks at or changes containers
  const reconcile = () => {
    if (process.getuid?.() === 0) gc(r);
  };
  const out = (s: string) => process.stdout.write(s);
  return [
    {
      name: ['run'],
      args: '[OPTIONS] IMAGE|ROOTFS [CMD [ARG...]]',
      desc: 'run a command in a new container (tscontain run --help)',
      min: 0,
      max: Infinity,
      run: () => out(helpText(RUN_USAGE)),
    },
    {
      name: ['plan'],
      args: '[OPTIONS] IMAGE|ROOTFS [CMD [ARG...]]',
      desc: 'print the sh script that `run` would execute (same options as run)',
      min: 0,
      max: Infinity,
      run: () => out(helpText(RUN_USAGE.replace('run', 'plan'))),
    },
    {
      name: ['exec'],
      args: '[OPTIONS] CONTAINER CMD [ARG...]',
      desc: 'run a command in a running container (tscontain exec --help)',
      min: 0,
      max: Infinity,
      run: () => out(helpText('tscontain exec [OPTIONS] CONTAINER CMD [ARG...]', life.EXEC_OPTIONS)),
    },
    {
      name: ['import'],
      args: '[--force] FILE NAME',
      desc: 'import a rootfs tarball (plain or gzip), a docker save archive or an OCI image (layout or archive) as an image',
      min: 0,
      max: Infinity,
      run: () => {},
    },
    {
      name: ['ps'],
      args: '[OPTIONS]',
      desc: 'list containers',
      min: 0,
      max: 0,
      options: [
        bool('all', 'include stopped containers', 'a'),
        str('format', 'table|json', 'output format (default table)'),
      ],
      run: (o) => {
        const format = (o.format as string | undefined) ?? 'table';
        if (format !== 'table' && format !== 'json')
          throw new TscError(`invalid --format "${format}"`, 'use table or json');
        reconcile();
        life.ps(r, !!o.all, format);
      },
    },
    {
      name: ['logs'],
      args: '[OPTIONS] CONTAINER',
      desc: 'show the output of a detached container',
      min: 1,
      max: 1,
      options: [
        bool('follow', 'keep printing until the container ends', 'f'),
        str('tail', 'N', 'only the last N lines', 'n'),
        bool('timestamps', 'show when each line was written', 't'),
      ],
      run: (o, [c]) =>
        life.logs(r, c, { follow: !!o.follow, tail: count(o.tail, '--tail'), timestamps: !!o.timestamps }),
    },
    {
      name: ['stop'],
      args: '[OPTIONS] CONTAINER...',
      desc: 'stop containers: SIGTERM, then SIGKILL after the grace period',
      min: 1,
      max: Infinity,
      options: [str('time', 'SECONDS', 'seconds to wait before SIGKILL (default 10)', 't')],
      run: async (o, cs) => {
        requireRoot('tscontain stop');
        reconcile();
        await life.stop(r, cs, count(o.time, 'stop timeout', 10)!);
      },
    },
    {
      name: ['kill'],
      args: '[OPTIONS] CONTAINER...',
      desc: "send a signal to the containers' PID 1 (default KILL)",
      min: 1,
      max: Infinity,
      options: [str('signal', 'SIGNAL', 'the signal, a name or a number (default KILL)', 's')],
      run: (o, cs) => {
        requireRoot('tscontain kill');
        reconcile();
        life.kill(r, cs, (o.signal as string | undefined) ?? 'KILL');
      },
    },
    {
      name: ['rm'],
      args: '[OPTIONS] CONTAINER...',
      desc: 'remove containers',
      min: 1,
      max: Infinity,
      options: [FORCE('kill it first if it runs')],
      run: async (o, cs) => {
        requireRoot('tscontain rm');
        reconcile();
        await life.rm(r, cs, !!o.force);
      },
    },
    {
      name: ['wait'],
      args: 'CONTAINER...',
      desc: 'wait for containers to end and print their exit codes',
      min: 1,
      max: Infinity,
      run: async (_o, cs) => {
        await life.wait(r, cs);
      },
    },
    {
      name: ['inspect'],
      args: 'CONTAINER...',
      desc: 'show config and state as JSON',
      min: 1,
      max: Infinity,
      run: (_o, cs) => {
        reconcile();
        life.inspect(r, cs);
      },
    },
    {
      name: ['stats'],
      args: '[OPTIONS] [CONTAINER...]',
      desc: 'CPU, memory and PIDs of running containers, from their cgroups',
      min: 0,
      max: Infinity,
      options: [bool('no-stream', 'print once')],
      run: (o, cs) => life.stats(r, cs, !!o['no-stream']),
    },
    {
      name: ['rootfs', 'build'],
      args: '[--force] NAME',
      desc: 'build an image from rootfs-recipes/NAME',
      min: 1,
      max: 1,
      options: [bool('force', 'rebuild if it exists')],
      run: (o, [name]) => {
        requireRoot('tscontain rootfs build');
        if (!recipePath(name))
          throw new TscError(`no recipe named "${name}"`, `recipes: ${readdirSync(recipesDir()).join(', ')}`);
        if (existsSync(imageDir(r, name))) {
          if (!o.force) return out(`image ${name} exists (use --force to rebuild)\n`);
          rmSync(imageDir(r, name), { recursive: true, force: true });
        }
        buildImage(r, name);
        out(`built image ${name} in ${imageDir(r, name)}\n`);
      },
    },
    {
      name: ['images'],
      args: '',
      desc: 'list images',
      min: 0,
      max: 0,
      run: () => {
        let names: string[] = [];
        try {
          names = readdirSync(join(r.lib, 'images')).filter((n) => !n.startsWith('.'));
        } catch {
          /* none */
        }
        const rows = [['NAME', 'SIZE', 'CREATED', 'SOURCE']];
        for (const n of names) {
          let meta: { created?: string; source?: string } = {};
          try {
            meta = JSON.parse(readFileSync(join(imageDir(r, n), 'config.json'), 'utf8'));
          } catch {
            /* none */
          }
          const bad = unwritten(imageDir(r, n));
          rows.push([
            n,
            `${(duSync(join(imageDir(r, n), 'rootfs')) / 1e6).toFixed(1)}MB`,
            meta.created ?? '?',
            (meta.source ?? '?') + (bad ? ` [incomplete: ${bad}]` : ''),
          ]);
        }
        out(life.table(rows));
      },
    },
    {
      name: ['rmi'],
      args: '[OPTIONS] IMAGE...',
      desc: 'remove images',
      min: 1,
      max: Infinity,
      options: [FORCE('even if containers use it')],
      run: async (o, images) => {
        requireRoot('tscontain rmi');
        const { removeImage } = await import('../store/archive.js');
        const { listContainers } = await import('../store/state.js');
        const cs = listContainers(r);
        for (const n of images) {
          removeImage(
            r,
            n,
            cs.filter((c) => c.config.image === n).map((c) => c.id),
            !!o.force,
          );
          out(`deleted ${n}\n`);
        }
      },
    },
    {
      name: ['export'],
      args: '[OPTIONS] CONTAINER [FILE]',
      desc: "write a container's filesystem as a tarball (to stdout without FILE)",
      min: 1,
      max: 2,
      options: [str('output', 'FILE', 'write to this file', 'o')],
      run: async (o, [ref, file]) => {
        requireRoot('tscontain export');
        const { exportContainer } = await import('../store/archive.js');
        const { findContainer, pid1 } = await import('../store/state.js');
        const c = findContainer(r, ref);
        if (!c.config.rootfs)
          throw new TscError(`container ${ref} has no recorded root filesystem`, 'it may still be starting');
        await exportContainer(
          r,
          c.id,
          c.config.rootfs,
          !!c.config.readOnly,
          c.running ? pid1(c) : undefined,
          (o.output as string | undefined) ?? file ?? '-',
        );
      },
    },
    {
      name: ['port'],
      args: 'CONTAINER [PORT[/PROTO]]',
      desc: 'list the ports a container publishes, or where one port is published',
      min: 1,
      max: 2,
      run: (_o, [c, port]) => life.port(r, c, port),
    },
    {
      name: ['network', 'prune'],
      args: '',
      desc: 'remove the bridge tsc0 and the nft table tscontain when no container uses them',
      min: 0,
      max: 0,
      run: () => {
        requireRoot('tscontain network prune');
        reconcile();
        life.networkPrune(r);
      },
    },
    {
      name: ['gc'],
      args: '',
      desc: 'remove what dead containers left behind (cgroups, state, addresses)',
      min: 0,
      max: 0,
      run: () => {
        requireRoot('tscontain gc');
        const n = gc(r, (s) => out(s + '\n'));
        out(`gc: ${n} leftover(s) cleaned up\n`);
      },
    },
    {
      name: ['doctor'],
      args: '',
      desc: 'check that this machine can run containers',
      min: 0,
      max: 0,
      run: async () => (await import('../host/doctor.js')).doctor(),
    },
    { name: ['version'], args: '', desc: "print tscontain's version (also --version)", min: 0, max: 0, run: () => {} },
  ];
}

const COMMON: OptDef[] = [bool('help', 'show this help'), bool('debug', 'show stack traces')];

function usage(c: Command): string {
  return `tscontain ${c.name.join(' ')}${c.args ? ' ' + c.args : ''}`;
}

function topHelp(cs: Command[]): string {
  const rows = cs.map((c) => `  ${c.name.join(' ').padEnd(14)} ${c.desc}`);
  return `Containers from scratch: namespaces, cgroups and pivot_root, driven from TypeScript by util-linux.\n\nUsage: tscontain COMMAND [OPTIONS]\n\nCommands:\n${rows.join('\n')}\n\nOptions:\n  --help    show help (tscontain COMMAND --help: a command's own)\n  --version show tscontain's version\n`;
}

export async function cli(argv: string[]): Promise<number> {
  const cs = commands(roots());
  if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(topHelp(cs));
    return 0;
  }
  const words = argv.filter((a) => !a.startsWith('-'));
  if (words.length === 0) throw new TscError('no command given', 'see tscontain --help');
  const c = cs.find((x) => x.name.every((n, i) => words[i] === n)) ?? cs.find((x) => x.name[0] === words[0]);
  if (!c?.name.every((n, i) => words[i] === n)) {
    const want = c ? `${c.name[0]} ${words[1] ?? ''}`.trim() : words[0];
    throw new TscError(
      `unknown command: ${want}`,
      `see tscontain ${c ? c.name[0] + ' ' : ''}--help`.replace('  ', ' '),
    );
  }
  // the command's own words go; what is left are its options and arguments
  const rest = [...argv];
  for (const n of c.name) rest.splice(rest.indexOf(n), 1);
  const defs = [...(c.options ?? []), ...COMMON];
  const p = parseArgs(rest, optionTable(defs), true, `tscontain ${c.name.join(' ')}`);
  if (p.opts.help) {
    process.stdout.write(helpText(usage(c), defs));
    return 0;
  }
  if (p.positionals.length < c.min || p.positionals.length > c.max)
    throw new TscError(
      `${usage(c)}: ${p.positionals.length < c.min ? 'too few' : 'too many'} arguments`,
      `see tscontain ${c.name.join(' ')} --help`,
    );
  const code = await c.run(p.opts, p.positionals);
  return typeof code === 'number' ? code : 0;
}
