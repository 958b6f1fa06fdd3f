// `tscontain run` options: one table drives the parser, the validation and the help text.
// The parser is hand-written on purpose: it is on the hot path of every `run`, and yargs costs
// a noticeable share of a start to import (bench/trace.sh shows where the time goes). Semantics are docker's: options end at the first
// non-option (the image); everything after it is the container's command.
import { readFileSync } from 'node:fs';
import { TscError } from '../errors.js';
import { SECURITY_OPTIONS } from '../kernel/capabilities.js';
import { NETWORK_OPTIONS } from '../kernel/network/options.js';

export type OptType = 'bool' | 'string' | 'list';
export interface OptDef {
  name: string;
  short?: string;
  type: OptType;
  arg?: string;
  desc: string;
}

export const RUN_OPTIONS: OptDef[] = [
  { name: 'interactive', short: 'i', type: 'bool', desc: 'keep STDIN open (otherwise the container reads /dev/null)' },
  {
    name: 'tty',
    short: 't',
    type: 'bool',
    desc: 'give the container a terminal of its own (a pty) and set TERM=xterm',
  },
  { name: 'init', type: 'bool', desc: 'run a small init as PID 1 that forwards signals and reaps zombies' },
  { name: 'detach', short: 'd', type: 'bool', desc: 'run in the background and print the container id' },
  { name: 'rm', type: 'bool', desc: 'remove the container when it exits' },
  { name: 'name', type: 'string', arg: 'NAME', desc: 'name the container' },
  { name: 'hostname', short: 'h', type: 'string', arg: 'NAME', desc: 'container hostname (default: the short id)' },
  {
    name: 'memory',
    short: 'm',
    type: 'string',
    arg: 'BYTES',
    desc: 'memory limit, e.g. 64m (cgroup memory controller)',
  },
  { name: 'pids-limit', type: 'string', arg: 'N', desc: 'maximum number of processes (cgroup pids controller)' },
  { name: 'cpus', type: 'string', arg: 'N', desc: 'CPU quota in CPUs, e.g. 0.5 (CFS bandwidth)' },
  { name: 'cpu-shares', short: 'c', type: 'string', arg: 'N', desc: 'relative CPU weight, 2..262144 (default 1024)' },
  {
    name: 'env',
    short: 'e',
    type: 'list',
    arg: 'KEY=VAL',
    desc: 'set an environment variable (KEY alone copies it from here)',
  },
  { name: 'env-file', type: 'list', arg: 'FILE', desc: 'read KEY=VAL lines from a file' },
  { name: 'workdir', short: 'w', type: 'string', arg: 'DIR', desc: 'working directory inside the container' },
  {
    name: 'user',
    short: 'u',
    type: 'string',
    arg: 'UID[:GID]',
    desc: 'run as this user (number or name from the image /etc/passwd)',
  },
  ...NETWORK_OPTIONS,
  { name: 'net', type: 'string', arg: 'MODE', desc: 'alias of --network' },
  {
    name: 'log-max-size',
    type: 'string',
    arg: 'BYTES',
    desc: 'with -d: keep at most this much output per stream (default 20m)',
  },
  {
    name: 'volume',
    short: 'v',
    type: 'list',
    arg: 'HOST:CTR[:ro]',
    desc: 'bind-mount a host file or directory into the container',
  },
  { name: 'tmpfs', type: 'list', arg: 'PATH[:OPTS]', desc: 'mount a tmpfs at PATH (OPTS like size=64m,mode=1777)' },
  { name: 'read-only', type: 'bool', desc: 'mount the container root filesystem read-only' },
  {
    name: 'device',
    type: 'list',
    arg: 'HOST[:CTR[:rwm]]',
    desc: 'add a host device to the container (it may open it)',
  },
  {
    name: 'cgroupns',
    type: 'string',
    arg: 'MODE',
    desc: '"private" (default: the container sees only its own cgroup) or "host"',
  },
  {
    name: 'no-pivot',
    type: 'bool',
    desc: 'switch root with chroot instead of pivot_root (teaching only: chroot can be escaped)',
  },
  ...SECURITY_OPTIONS,
  { name: 'dry-run', type: 'bool', desc: 'print the plan (a sh script) instead of running it' },
  { name: 'explain', type: 'bool', desc: 'narrate each step as it happens' },
  { name: 'debug', type: 'bool', desc: 'show stack traces (tscontain plan prints the script a run executes)' },
  { name: 'help', type: 'bool', desc: 'show this help' },
];

export interface ParsedArgs {
  opts: Record<string, boolean | string | string[]>;
  positionals: string[];
}

export interface OptionTable {
  byName: Map<string, OptDef>;
  byShort: Map<string, OptDef>;
}

/** Index an option table by long and short name, for parseArgs. */
export function optionTable(defs: OptDef[]): OptionTable {
  return {
    byName: new Map(defs.map((o) => [o.name, o])),
    byShort: new Map(defs.filter((o) => o.short).map((o) => [o.short!, o])),
  };
}

const RUN_TABLE = optionTable(RUN_OPTIONS);

/**
 * Parse docker-style options. Pure: no I/O. run and exec stop at the first non-option (the rest is
 * the container's command); other commands take options anywhere (`interspersed`), as docker's do.
 */
export function parseArgs(
  argv: string[],
  defs: OptionTable = RUN_TABLE,
  interspersed = false,
  what = 'tscontain run',
): ParsedArgs {
  const rest: string[] = [];
  const opts: ParsedArgs['opts'] = {};
  const set = (d: OptDef, v: string | boolean) => {
    if (d.type === 'list') opts[d.name] = [...((opts[d.name] as string[] | undefined) ?? []), v as string];
    else opts[d.name] = v;
  };
  let i = 0;
  const value = (d: OptDef, shown: string): string => {
    if (i + 1 >= argv.length) throw new TscError(`option ${shown} needs a value`, `e.g. ${shown} ${d.arg ?? 'VALUE'}`);
    return argv[++i];
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const key = a.slice(2, eq < 0 ? undefined : eq);
      const d = defs.byName.get(key);
      if (!d) throw new TscError(`unknown option --${key}`, `see ${what} --help`);
      if (d.type === 'bool') {
        if (eq >= 0) {
          const v = a.slice(eq + 1);
          if (v !== 'true' && v !== 'false')
            throw new TscError(`option --${key} takes no value other than true or false`);
          set(d, v === 'true');
        } else set(d, true);
      } else set(d, eq >= 0 ? a.slice(eq + 1) : value(d, `--${key}`));
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // a group of short flags: -it, or a short option with its value: -m64m, -m 64m
      for (let j = 1; j < a.length; j++) {
        const d = defs.byShort.get(a[j]);
        if (!d) throw new TscError(`unknown option -${a[j]}`, `see ${what} --help`);
        if (d.type === 'bool') {
          set(d, true);
          continue;
        }
        const rest = a.slice(j + 1).replace(/^=/, '');
        set(d, rest !== '' ? rest : value(d, `-${a[j]}`));
        break;
      }
      continue;
    }
    if (!interspersed) break;
    rest.push(a);
  }
  return { opts, positionals: [...rest, ...argv.slice(i)] };
}

export function helpText(usage: string, defs: OptDef[] = RUN_OPTIONS): string {
  const rows = defs.map((d) => {
    const flag = `${d.short ? `-${d.short}, ` : '    '}--${d.name}${d.arg ? ` ${d.arg}` : ''}`;
    return `  ${flag.padEnd(30)} ${d.desc}`;
  });
  return `Usage: ${usage}\n\nOptions:\n${rows.join('\n')}\n`;
}

// ---- validation: each function returns the value or throws one clear line ----

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

export function parseBytes(s: string, what = 'memory size'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$/i.exec(s.trim());
  if (!m) throw new TscError(`invalid ${what} "${s}"`, 'use a number with an optional unit b, k, m or g (e.g. 64m)');
  return Math.floor(parseFloat(m[1]) * UNITS[m[2].toLowerCase()]);
}

export function formatBytes(n: number): string {
  for (const [u, f] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const)
    if (n >= f) return `${+(n / f).toFixed(2)}${u}`;
  return `${n}B`;
}

export function parseMemory(s: string): number {
  const n = parseBytes(s);
  if (n < 6 * 1024 * 1024) throw new TscError(`memory limit ${s} is too small`, 'the minimum is 6m');
  return n;
}

export function parseCpus(s: string, ncpu: number): number {
  const n = Number(s);
  if (!/^\d*\.?\d+$/.test(s.trim()) || !(n > 0))
    throw new TscError(`invalid --cpus "${s}"`, `use a positive number of CPUs, e.g. 0.5 (this machine has ${ncpu})`);
  if (n < 0.01 || n > ncpu)
    throw new TscError(`--cpus ${s} is out of range`, `use 0.01 to ${ncpu} (the number of CPUs here)`);
  return n;
}

export function parsePositiveInt(s: string, opt: string, hint: string): number {
  if (!/^\d+$/.test(s.trim()) || Number(s) < 1) throw new TscError(`invalid ${opt} "${s}"`, hint);
  return Number(s);
}

export function parseCpuShares(s: string): number {
  const n = parsePositiveInt(s, '--cpu-shares', 'use a whole number from 2 to 262144 (1024 is the default weight)');
  if (n < 2 || n > 262144)
    throw new TscError(`--cpu-shares ${s} is out of range`, 'use a whole number from 2 to 262144');
  return n;
}

export function parseHostname(s: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(s) || s.endsWith('-') || s.endsWith('.'))
    throw new TscError(`invalid hostname "${s}"`, 'use letters, digits, "-" and "." (at most 63 characters)');
  return s;
}

export function parseName(s: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(s))
    throw new TscError(
      `invalid container name "${s}"`,
      'use letters, digits, "_", "." and "-", starting with a letter or digit',
    );
  return s;
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** KEY=VAL stays; a bare KEY takes its value from the host environment (or is dropped), as docker does. */
export function parseEnv(items: string[], hostEnv: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const it of items) {
    const eq = it.indexOf('=');
    const key = eq < 0 ? it : it.slice(0, eq);
    if (!ENV_KEY.test(key))
      throw new TscError(`invalid environment variable "${it}"`, 'use KEY=VALUE with a KEY of letters, digits and _');
    if (eq >= 0) out.push(it);
    else if (hostEnv[key] !== undefined) out.push(`${key}=${hostEnv[key]}`);
  }
  return out;
}

export function readEnvFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new TscError(`cannot read env file ${file}`, 'check the path');
  }
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
}

/** Later KEY=VAL wins; order of first appearance is kept. */
export function mergeEnv(...lists: string[][]): string[] {
  const m = new Map<string, string>();
  for (const l of lists)
    for (const kv of l) {
      const k = kv.slice(0, kv.indexOf('='));
      m.delete(k);
      m.set(k, kv);
    }
  return [...m.values()];
}
