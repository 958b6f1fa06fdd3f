// The bridge tsc0, made on first use: the bridge with the gateway address, IP forwarding, and the
// firewall's rules (firewall.ts: nft's table ip tscontain, or iptables' chains TSCONTAIN-*) for
// outbound NAT, the forward filter and published ports. Other tables, chains and rules (docker's,
// firewalld's, the admin's) are never touched: cleanup is deleting ours.
import { type Sh, lit, sh } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';
import { type FirewallName, firewall } from './firewall.js';
import { type Cidr, formatCidr, formatIPv4, nth } from './ipv4.js';
import { BRIDGE, TABLE, type NetPaths } from './store.js';

export interface Bridge {
  name: string;
  table: string;
  subnet: Cidr;
  /** the bridge's own address: the containers' default route */
  gateway: number;
  paths: NetPaths;
  /** host programs by name -> path */
  bin: (name: string) => string;
  /** the firewall that makes the rules */
  firewall: FirewallName;
  /** the firewalls installed: prune and gc remove what any of them holds of ours */
  firewalls: FirewallName[];
}

export function bridge(
  subnet: Cidr,
  paths: NetPaths,
  bin: (n: string) => string = (n) => n,
  fw: FirewallName = 'nft',
  installed: FirewallName[] = [fw],
): Bridge {
  return {
    name: BRIDGE,
    table: TABLE,
    subnet,
    gateway: nth(subnet, 1),
    paths,
    bin,
    firewall: fw,
    firewalls: installed,
  };
}

/**
 * sh: sets tsc_net_ready to 1 when the bridge is complete for this firewall: its mark in the
 * network directory says the firewall's rules were made, and route_localnet is the last thing set up.
 */
export const readyCheck = (b: Bridge, indent: '' | '    ' = ''): Sh[] => [
  sh`${lit(indent)}tsc_net_ready=; [ ! -e ${made(b)} ] ||`,
  sh`${lit(indent)}  read -r tsc_net_ready 2>/dev/null < ${localnet(b)} || :`,
];

const localnet = (b: Bridge) => `/proc/sys/net/ipv4/conf/${b.name}/route_localnet`;
const made = (b: Bridge, fw: FirewallName = b.firewall) => `${b.paths.made}-${fw}`;
const indent = (pad: '  ' | '    ' | '      ', lines: Sh[]) => lines.map((l) => sh`${lit(pad)}${l}`);

/**
 * Host setup, before the container starts: make the bridge and the firewall's rules unless they are there.
 * The check costs no program; making them happens once, under flock(1) on the store's lock file,
 * so two first containers do not both make them.
 */
export function bridgeSetupStep(b: Bridge): Step {
  const { paths: p, bin } = b;
  const net = formatCidr(b.subnet);
  const gw = `${formatIPv4(b.gateway)}/${b.subnet.len}`;
  const sys = localnet(b);
  const bringUp = [`addr replace ${gw} dev ${b.name}`, `link set ${b.name} up`];
  const changed = "tscontain: the store's subnet changed while this container was planned, run it again; it is now";
  const fw = firewall(b.firewall);
  return {
    title: `Make the bridge ${b.name} (${net}, gateway ${formatIPv4(b.gateway)}) and ${fw.what}, once`,
    man: `ip-link(8) bridge, ${fw.man}, flock(1), proc(5) /proc/sys/net/ipv4/ip_forward and route_localnet`,
    lines: [
      ...readyCheck(b),
      sh`if [ "$tsc_net_ready" != 1 ]; then`,
      sh`  [ -d ${p.addresses} ] || mkdir -p ${p.addresses}`,
      lit('  {'),
      sh`    ${bin('flock')} 9`,
      sh`    [ -s ${p.subnet} ] || echo ${net} > ${p.subnet}`,
      sh`    read -r tsc_net_sub < ${p.subnet}`,
      sh`    [ "$tsc_net_sub" = ${net} ] || {`,
      sh`      echo ${changed} "$tsc_net_sub" >&2; exit 1`,
      lit('    }'),
      ...readyCheck(b, '    '),
      sh`    if [ "$tsc_net_ready" != 1 ]; then`,
      // dash's read gets the value from /proc/sys but returns 1: the kernel ends the file at its second byte-sized read
      sh`      tsc_net_fwd=; read -r tsc_net_fwd < /proc/sys/net/ipv4/ip_forward || :`,
      sh`      [ "$tsc_net_fwd" = 1 ] || : > ${p.forwardingWasOff}`,
      ...indent('      ', fw.setupLines(b)),
      // a bridge left half made (a crash in between) is completed, never deleted: containers may be on it
      sh`      [ -d ${`/sys/class/net/${b.name}`} ] || ${bin('ip')} link add ${b.name} type bridge`,
      sh`      printf ${'%s\\n'} ${bringUp} | ${bin('ip')} -batch -`,
      lit('      echo 1 > /proc/sys/net/ipv4/ip_forward'),
      sh`      echo 1 > ${sys}`,
      sh`      : > ${made(b)}`,
      lit('    fi'),
      sh`  } 9> ${p.lock}`,
      lit('fi'),
    ],
  };
}

/**
 * `tscontain network prune` (or gc with no container on the bridge): remove the bridge and the
 * rules of every firewall installed (a host that had no nft before may have iptables chains of
 * ours), under the same lock, only if no veth is on the bridge and no address is allocated.
 * ip_forward stays as it is (docker does the same); the store remembers the subnet.
 */
export function bridgePruneStep(b: Bridge): Step {
  const { paths: p, bin } = b;
  const fws = b.firewalls.map(firewall);
  const what = fws.length ? ` and ${fws.map((f) => f.what).join(' and ')}` : '';
  return {
    title: `Remove the bridge ${b.name}${what} if no container uses them`,
    man: ['ip-link(8)', ...fws.map((f) => f.man), 'flock(1)'].join(', '),
    lines: [
      sh`[ -d ${p.addresses} ] || mkdir -p ${p.addresses}`,
      lit('{'),
      sh`  ${bin('flock')} 9`,
      sh`  tsc_net_used=; for tsc_net_f in ${`/sys/class/net/${b.name}/brif`}/* ${p.addresses}/*; do`,
      lit('    [ ! -e "$tsc_net_f" ] || tsc_net_used=1'),
      lit('  done'),
      lit('  if [ -z "$tsc_net_used" ]; then'),
      sh`    [ ! -d ${`/sys/class/net/${b.name}`} ] || ${bin('ip')} link del ${b.name}`,
      ...fws.flatMap((f) => indent('    ', f.pruneLines(b))),
      sh`    rm -f ${made(b, 'nft')} ${made(b, 'iptables')}`,
      lit('  else echo "tscontain: the bridge is in use: kept" >&2'),
      lit('  fi'),
      sh`} 9> ${p.lock}`,
    ],
  };
}
