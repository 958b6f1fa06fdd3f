// `tscontain doctor`: can this machine run containers? Every check reads files under a root that
// tests replace with a fake /proc and cgroupfs, and runs programs through one injectable probe.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectVersion } from '../kernel/cgroup.js';
import { which } from './tools.js';
import { becomeChecks } from '../kernel/capabilities.js';
import { devicesCheck } from '../kernel/devices.js';
import { hostMaskFacts, masksCheck } from '../kernel/masks.js';
import { networkChecks } from '../kernel/network/doctor.js';
import { seccompCheck } from '../kernel/seccomp.js';

export type Status = 'ok' | 'warn' | 'fail';
export interface Check {
  what: string;
  status: Status;
  detail: string;
  fix?: string;
}

export interface DoctorEnv {
  proc: string; // /proc
  cgroup: string; // /sys/fs/cgroup
  uid: number;
  which: (cmd: string) => string | undefined;
  /** run a program; returns its exit code and output */
  probe: (cmd: string, args: string[]) => { code: number; out: string };
}

export function realEnv(): DoctorEnv {
  return {
    proc: '/proc',
    cgroup: process.env.TSCONTAIN_CGROUP_ROOT || '/sys/fs/cgroup',
    uid: process.getuid?.() ?? 0,
    which: (c) => which(c),
    probe: (cmd, args) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10000 });
      return { code: r.status ?? 1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
    },
  };
}

const read = (f: string) => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
};

const NAMESPACES: [string, string, string][] = [
  ['uts', '--uts', 'hostname'],
  ['pid', '--pid --fork', 'PID 1'],
  ['mnt', '--mount', 'mounts'],
  ['ipc', '--ipc', 'IPC'],
  ['net', '--net', 'network'],
  ['user', '--user', 'rootless (not used yet)'],
  ['cgroup', '--cgroup', 'cgroup view (not used yet)'],
];

export function checks(env: DoctorEnv): Check[] {
  const out: Check[] = [];
  const add = (what: string, status: Status, detail: string, fix?: string) => out.push({ what, status, detail, fix });

  add(
    'root',
    env.uid === 0 ? 'ok' : 'fail',
    env.uid === 0 ? 'running as root' : `running as uid ${env.uid}`,
    'run tscontain as root (sudo); rootless containers are not supported yet',
  );

  const tools: [string, string][] = [
    ['unshare', 'util-linux'],
    ['mount', 'util-linux'],
    ['pivot_root', 'util-linux'],
    ['setpriv', 'util-linux'],
    ['nsenter', 'util-linux'],
    ['env', 'coreutils'],
    ['cp', 'coreutils'],
    ['find', 'findutils'],
    ['ip', 'iproute2'],
  ];
  const missing = tools.filter(([t]) => !env.which(t));
  add(
    'programs',
    missing.length ? 'fail' : 'ok',
    missing.length ? `missing: ${missing.map(([t]) => t).join(', ')}` : tools.map(([t]) => t).join(', '),
    missing.length ? `apt-get install ${[...new Set(missing.map(([, p]) => p))].join(' ')}` : undefined,
  );

  if (env.which('unshare')) {
    const v = env.probe('unshare', ['--version']).out.match(/(\d+)\.(\d+)(?:\.(\d+))?/);
    if (!v) add('util-linux', 'warn', 'version unknown');
    else {
      const [maj, min] = [Number(v[1]), Number(v[2])];
      const ok = maj > 2 || (maj === 2 && min >= 36);
      const quirks =
        maj === 2 && min <= 38
          ? '; known: unshare --fork forwards no signals and reports a SIGKILLed child as exit 1 (tscontain handles both)'
          : '';
      add(
        'util-linux',
        ok ? 'ok' : 'fail',
        `${v[0]}${quirks}`,
        ok ? undefined : 'util-linux 2.36 or newer is needed (unshare --wd, mount --target-prefix)',
      );
    }
  }

  const nsdir = join(env.proc, 'self', 'ns');
  const have = new Set(existsSync(nsdir) ? readdirSync(nsdir) : []);
  for (const [ns, flags, what] of NAMESPACES) {
    if (!have.has(ns)) {
      add(
        `namespace ${ns}`,
        ns === 'user' || ns === 'cgroup' ? 'warn' : 'fail',
        `not in ${nsdir}`,
        'the kernel lacks it (CONFIG_*_NS)',
      );
      continue;
    }
    if (env.uid !== 0 || !env.which('unshare')) {
      add(`namespace ${ns}`, 'ok', `${what}: present (not tried without root)`);
      continue;
    }
    const r = env.probe('unshare', [...flags.split(' '), 'true']);
    add(
      `namespace ${ns}`,
      r.code === 0 ? 'ok' : ns === 'user' || ns === 'cgroup' ? 'warn' : 'fail',
      r.code === 0 ? `${what}: works` : `${what}: unshare ${flags} failed: ${r.out.trim()}`,
      r.code === 0
        ? undefined
        : 'check kernel settings (e.g. user.max_*_namespaces) and seccomp/AppArmor of this machine',
    );
  }

  const fs = read(join(env.proc, 'filesystems')) ?? '';
  for (const f of ['overlay', 'proc', 'sysfs', 'tmpfs', 'devpts']) {
    const okf = new RegExp(`\\b${f}$`, 'm').test(fs);
    add(
      `filesystem ${f}`,
      okf ? 'ok' : 'fail',
      okf ? 'supported' : `not in ${join(env.proc, 'filesystems')}`,
      okf ? undefined : f === 'overlay' ? 'modprobe overlay' : undefined,
    );
  }

  if (!existsSync(env.cgroup))
    add('cgroups', 'fail', `${env.cgroup} is missing`, `mount cgroup2 there: mount -t cgroup2 none ${env.cgroup}`);
  else if (detectVersion(env.cgroup) === 2) {
    const ctl = (read(join(env.cgroup, 'cgroup.subtree_control')) ?? '').trim().split(/\s+/).filter(Boolean);
    const need = ['memory', 'pids', 'cpu'];
    const miss = need.filter((c) => !ctl.includes(c));
    add(
      'cgroups',
      miss.length ? 'warn' : 'ok',
      `v2 (unified) at ${env.cgroup}; enabled for children: ${ctl.join(' ') || 'none'}`,
      miss.length
        ? `limits need them: echo "${miss.map((c) => '+' + c).join(' ')}" > ${env.cgroup}/cgroup.subtree_control`
        : undefined,
    );
  } else {
    const hier = ['memory', 'pids', 'cpu', 'cpuacct', 'devices'];
    const present = hier.filter((h) => existsSync(join(env.cgroup, h, 'cgroup.procs')));
    const miss = hier.filter((h) => !present.includes(h));
    const hybrid = existsSync(join(env.cgroup, 'unified', 'cgroup.controllers'))
      ? ' (hybrid: also a v2 tree at unified/)'
      : '';
    add(
      'cgroups',
      miss.length ? 'warn' : 'ok',
      `v1${hybrid}; hierarchies: ${present.join(' ') || 'none'}`,
      miss.length ? `limits need ${miss.join(', ')}: mount -t cgroup -o X cgroup ${env.cgroup}/X` : undefined,
    );
  }

  const bb = ['/bin/busybox', '/usr/bin/busybox'].some((b) => existsSync(b));
  const apt = !!env.which('apt-get') && !!env.which('dpkg-deb');
  add(
    'recipe busybox',
    apt || bb ? 'ok' : 'warn',
    apt ? 'apt-get download busybox-static' : bb ? 'a busybox on this host' : 'no apt-get and no busybox',
    apt || bb ? undefined : 'set TSCONTAIN_BUSYBOX to a static busybox',
  );
  add(
    'recipe debian',
    env.which('debootstrap') ? 'ok' : 'warn',
    env.which('debootstrap') ? 'debootstrap found' : 'debootstrap missing',
    env.which('debootstrap') ? undefined : 'apt-get install debootstrap',
  );
  out.push(...containmentChecks(env), ...networkChecks(env));
  return out;
}

/** Each layer of containment: capabilities (and perl, which sets them), masks, devices, seccomp. */
function containmentChecks(env: DoctorEnv): Check[] {
  const version = existsSync(env.cgroup) ? detectVersion(env.cgroup) : 1;
  const perl = env.which('perl');
  const nsdir = join(env.proc, 'self', 'ns');
  const cgroupns = existsSync(join(nsdir, 'cgroup'));
  return [
    ...becomeChecks(env),
    masksCheck(hostMaskFacts()),
    devicesCheck({ version, v1Devices: existsSync(join(env.cgroup, 'devices', 'devices.allow')), perl }),
    {
      what: 'cgroup namespace',
      status: cgroupns ? 'ok' : 'warn',
      detail: cgroupns
        ? 'each container sees only its own cgroup (--cgroupns private)'
        : `not in ${nsdir}: containers see the host's cgroups`,
    },
    seccompCheck({
      arch: process.arch,
      perl,
      actionsAvail: read(join(env.proc, 'sys/kernel/seccomp/actions_avail'))?.trim(),
      kernel: (read(join(env.proc, 'sys/kernel/osrelease')) ?? '').trim(),
    }),
  ];
}

/** run can work when nothing failed */
export const canRun = (cs: Check[]) => cs.every((c) => c.status !== 'fail');

export function render(cs: Check[], color = false): string {
  const mark = {
    ok: color ? '\x1b[32mok\x1b[0m  ' : 'ok  ',
    warn: color ? '\x1b[33mwarn\x1b[0m' : 'warn',
    fail: color ? '\x1b[31mFAIL\x1b[0m' : 'FAIL',
  };
  const w = Math.max(...cs.map((c) => c.what.length));
  const rows = cs.map(
    (c) =>
      `${mark[c.status]}  ${c.what.padEnd(w)}  ${c.detail}${c.fix && c.status !== 'ok' ? `\n${' '.repeat(w + 8)}-> ${c.fix}` : ''}`,
  );
  return (
    rows.join('\n') +
    `\n\n${canRun(cs) ? 'tscontain run can work here.' : 'tscontain run cannot work here: fix the FAIL lines.'}\n`
  );
}

export function doctor(env = realEnv()): number {
  const cs = checks(env);
  process.stdout.write(render(cs, !!process.stdout.isTTY && !process.env.NO_COLOR));
  return canRun(cs) ? 0 : 1;
}
