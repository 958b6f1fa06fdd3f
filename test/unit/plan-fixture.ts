// Plans made without root and without looking at the host: fake tools, a fake rootfs and fake
// cgroupfs trees, a fixed clock.
import { type Plan, type PlanContext, type HostTools, planRun } from '../../src/plan/plan.js';
import { cgroupDriver } from '../../src/kernel/cgroup.js';
import { buildRunRequest } from '../../src/spec/spec.js';
import type { Roots } from '../../src/store/paths.js';
import type { MaskFacts } from '../../src/kernel/masks.js';
import type { NetFacts } from '../../src/kernel/network/probe.js';
import { fakeRootfs, fakeCgroupV1 } from './helpers.js';

export const ID = 'b'.repeat(64);
export const ROOTS = { lib: '/var/lib/tscontain', run: '/run/tscontain' };

export const TOOLS: HostTools = {
  unshare: '/usr/bin/unshare',
  setpriv: '/usr/bin/setpriv',
  ip: '/usr/sbin/ip',
  perl: '/usr/bin/perl',
  awk: { path: '/usr/bin/awk', opts: '' },
  ldso: '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
  libPath: ['/usr/lib/x86_64-linux-gnu'],
  bin: (n) => `/usr/bin/${n}`,
};

/** A host with one default route and one resolver. */
export const NET: NetFacts = {
  routes: [],
  resolv: 'nameserver 192.0.2.53\n',
  hosts: '127.0.0.1 localhost\n',
};

/** tscontain plan OPTIONS ROOTFS CMD...: options before the image, the command after it. */
export interface PlanOptions {
  cg?: string;
  tools?: Partial<HostTools>;
  rootfs?: string;
  roots?: Roots;
  env?: NodeJS.ProcessEnv;
  masks?: MaskFacts;
}

/** A kernel with some of the paths to mask. */
export const MASKS: MaskFacts = {
  '/proc/keys': 'file',
  '/proc/acpi': 'dir',
  '/proc/sys': 'dir',
  '/sys/firmware': 'dir',
};

export function makePlan(opts: string[], cmd: string[], o: PlanOptions = {}): Plan {
  const roots = o.roots ?? ROOTS;
  const req = buildRunRequest(['--dry-run', ...opts, o.rootfs ?? fakeRootfs(), ...cmd], roots, o.env ?? {}, ID);
  if (req.help) throw new Error('help');
  const ctx: PlanContext = {
    roots,
    cgroup: cgroupDriver(ID, req.spec.limits, o.cg ?? fakeCgroupV1()),
    tools: { ...TOOLS, ...o.tools },
    now: '2026-01-01T00:00:00.000Z',
    masks: o.masks ?? MASKS,
    net: NET,
  };
  return planRun(req.spec, ctx);
}

export const lineTexts = (p: Plan, phase: keyof Plan['phases']) =>
  p.phases[phase].flatMap((s) => s.lines.map((l) => l.text));
