// Networking of one container, as data for the plan: which steps run where.
//   host        on the host, before the start command (after the container's dirs exist)
//   gate        on the host, once PID 1 exists ($tsc_pid1, see findPid1Lines) and waits at the start
//               gate: best run as soon as the pid is known, so it overlaps PID 1's mounts
//   afterStart  on the host, once PID 1's pid is known; PID 1 need not wait
//   exit        after the container ended, and also when a start failed half-way (every line is
//               idempotent and removes only what this container made)
// plus how the start command changes: unshare --net or not, and words before it.
import { TscError } from '../../errors.js';
import { type Sh, lit } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';
import { which } from '../../host/tools.js';
import type { Roots } from '../../store/paths.js';
import { type Bridge, bridge, bridgeSetupStep } from './bridge.js';
import { firewall } from './firewall.js';
import { allocateStep, freeLines } from './ipam.js';
import { etcFilesStep, hostsHead, hostnameFile, ownNames, parseAddHost, type EtcFiles } from './hosts.js';
import { formatCidr, formatIPv4, parseIPv4 } from './ipv4.js';
import { type JoinTarget, joinPrefix, joinStep, recordPid1Lines } from './join.js';
import type { NetOptions } from './options.js';
import type { NetFacts } from './probe.js';
import { type PortMapping, checkMappings, publishAll } from './publish.js';
import { parseResolvConf, resolvConf } from './resolv.js';
import { BRIDGE, netPaths, vethName } from './store.js';
import { bridgeSubnet } from './subnet.js';
import { vethExitLines, vethGateStep } from './veth.js';

export interface NetRequest {
  id: string;
  name?: string;
  hostname: string;
  net: NetOptions;
  /** the image config's ExposedPorts, for -P */
  exposed?: Record<string, unknown>;
  /** for --network container:NAME, resolved by the caller (that container's run dir) */
  join?: JoinTarget;
  facts: NetFacts;
  roots: Roots;
  /**
   * host programs by name -> absolute path (default: which(), system directories first: under npm,
   * node_modules/.bin/nft is @vercel/nft)
   */
  bin?: (name: string) => string;
  /** sh reference to PID 1's host pid at the gate */
  pid1?: Sh;
}

export interface NetworkPlan {
  host: Step[];
  /** needs PID 1 waiting at the gate (the bridge only: none, host and container: need no gate) */
  gate: Step[];
  /**
   * on the host once PID 1's pid is known, PID 1 need not wait: record it, so other containers can
   * join this one's network namespace (bridge, none). In the gate when there is one.
   */
  afterStart: Step[];
  exit: Step[];
  /** give unshare --net (bridge, none) */
  unshareNet: boolean;
  /** PID 1 brings lo up itself (none); the bridge's gate step does it with eth0 */
  loopbackByPid1: boolean;
  /** words before the start command (container:NAME: nsenter into the held namespace; the command also gets 8<&-) */
  startPrefix: Sh[];
  /** for config.json / inspect */
  record: { mode: string; bridge?: string; subnet?: string; gateway?: string; veth?: string; publish: PortMapping[] };
}

function containerResolvers(r: Pick<NetRequest, 'facts' | 'net'>): number[] {
  const text = r.facts.resolvUpstream ?? r.facts.resolv;
  return [...r.net.dns, ...parseResolvConf(text).nameservers]
    .map(parseIPv4)
    .filter((a): a is number => a !== undefined);
}

/** Absolute paths of host programs, found in the system's directories first. */
export const systemBin = (name: string): string => which(name) ?? name;

/**
 * The bridge for this host: remembered or newly chosen subnet, checked against the host's routes,
 * and the firewall the host facts chose (nft when the facts do not say: they were made by hand).
 */
export function hostBridge(r: Pick<NetRequest, 'facts' | 'roots' | 'bin' | 'net'>): Bridge {
  const paths = netPaths(r.roots);
  const made = r.facts.routes.find((x) => x.dev === BRIDGE && x.dst.len > 0);
  // a bridge made before this directory remembered its subnet (or whose record was removed): adopt it
  const subnet =
    made && !r.facts.remembered
      ? made.dst
      : bridgeSubnet(r.facts.remembered, r.facts.routes, BRIDGE, containerResolvers(r));
  if (made && (made.dst.base !== subnet.base || made.dst.len !== subnet.len))
    throw new TscError(
      `the bridge ${BRIDGE} has ${formatCidr(made.dst)}, but this store uses ${formatCidr(subnet)}`,
      'another tscontain store made it: use one store per host, ' +
        'or remove the bridge (tscontain network prune) when no container runs',
    );
  const fw = r.facts.firewall;
  return bridge(subnet, paths, r.bin ?? systemBin, fw?.use ?? 'nft', fw ? fw.installed : undefined);
}

function etcFiles(r: NetRequest, gateway?: string): EtcFiles {
  if (r.net.mode.kind === 'host')
    return { resolv: r.facts.resolv, hostsHead: r.facts.hosts ?? hostsHead([]), hostname: hostnameFile(r.hostname) };
  const resolv = resolvConf({
    host: r.facts.resolv,
    upstream: r.facts.resolvUpstream,
    dns: r.net.dns,
    dnsSearch: r.net.dnsSearch,
    dnsOptions: r.net.dnsOptions,
  });
  const extra = r.net.addHosts.map((h) => parseAddHost(h, gateway));
  return {
    resolv: resolv.text,
    note: resolv.note,
    hostsHead: hostsHead(extra),
    hostname: hostnameFile(r.hostname),
    ownNames: r.net.mode.kind === 'bridge' ? ownNames(r.hostname, r.name) : undefined,
  };
}

export function planNetwork(r: NetRequest): NetworkPlan {
  const pid1 = r.pid1 ?? lit('"$tsc_pid1"');
  const mode = r.net.mode;
  const record = (extra: Partial<NetworkPlan['record']> = {}) => ({
    mode: mode.kind === 'container' ? `container:${mode.name}` : mode.kind,
    publish: [],
    ...extra,
  });
  const pidStep: Step = {
    title: "Record PID 1's host pid and start time",
    man: 'proc(5) /proc/PID/stat',
    lines: recordPid1Lines(pid1),
  };
  if (mode.kind === 'container') {
    if (!r.join) throw new Error('planNetwork: --network container: needs the target resolved (join)');
    return {
      host: [joinStep(r.join), etcFilesStep(etcFiles(r))],
      gate: [],
      afterStart: [pidStep],
      exit: [],
      unshareNet: false,
      loopbackByPid1: false,
      startPrefix: [joinPrefix((r.bin ?? systemBin)('nsenter'))],
      record: record(),
    };
  }
  if (mode.kind !== 'bridge')
    return {
      host: [etcFilesStep(etcFiles(r))],
      gate: [],
      afterStart: mode.kind === 'none' ? [pidStep] : [],
      exit: [],
      unshareNet: mode.kind === 'none',
      loopbackByPid1: mode.kind === 'none',
      startPrefix: [],
      record: record(),
    };

  if (r.facts.firewall && !r.facts.firewall.use)
    throw new TscError(
      `--network bridge needs a firewall program: ${r.facts.firewall.why}`,
      'apt-get install nftables (or iptables), or use --network none or host',
    );
  const b = hostBridge(r);
  const fw = firewall(b.firewall);
  const ports = checkMappings(
    [
      ...r.net.publish,
      ...(r.net.publishAll
        ? publishAll(r.exposed).filter(
            (m) => !r.net.publish.some((p) => p.container === m.container && p.proto === m.proto),
          )
        : []),
    ],
    r.facts.listening,
  );
  const taken = (proto: 'tcp' | 'udp', p: number) =>
    !!r.facts.listening?.[proto].has(p) || ports.some((m) => m.proto === proto && m.host.from === p && m.host.to === p);
  const publish = fw.publishStep(b, ports, taken);
  return {
    host: [
      bridgeSetupStep(b),
      allocateStep(b),
      ...(publish ? [publish] : []),
      etcFilesStep(etcFiles(r, formatIPv4(b.gateway))),
    ],
    gate: [vethGateStep(b, r.id, pid1)],
    afterStart: [pidStep],
    exit: [
      {
        title: `Disconnect from ${b.name}: unpublish its ports, give its address back`,
        man: fw.unpublishMan,
        lines: [...fw.unpublishLines(b), ...vethExitLines(), ...freeLines(b)],
      },
    ],
    unshareNet: true,
    loopbackByPid1: false,
    startPrefix: [],
    record: record({
      bridge: b.name,
      subnet: formatCidr(b.subnet),
      gateway: formatIPv4(b.gateway),
      veth: vethName(r.id),
      publish: ports,
    }),
  };
}
