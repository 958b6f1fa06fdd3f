// The bridge tsc0, made on first use: the bridge with the gateway address, IP forwarding, and one
// nft table of our own ("ip tscontain") for outbound NAT, the forward filter and published ports.
// Other tables (docker's, firewalld's, the admin's) are never touched: cleanup is deleting ours.
// TODO: hosts without nft(8): the same with iptables chains of our own (TSCONTAIN-*, -t nat and
// -t filter) and a DNAT rule per published port. On bookworm iptables is iptables-nft, so both land
// in nf_tables and `apt-get install nftables` is the simpler fix (doctor says so).
import { type Sh, lit, sh } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';
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
}

export function bridge(subnet: Cidr, paths: NetPaths, bin: (n: string) => string = (n) => n): Bridge {
  return { name: BRIDGE, table: TABLE, subnet, gateway: nth(subnet, 1), paths, bin };
}

export const PROTOS = ['tcp', 'udp'] as const;
export type Proto = (typeof PROTOS)[number];

/**
 * The table, as `nft -f` input (nft 1.0.6 wants a newline before each closing brace). Per protocol:
 * P_pub maps a host port to container address . port (published on every host address), P_pub_ip
 * maps host address . port (published on one address, -p IP:...), P_claim maps each published host
 * port to its container's address: `nft create element` fails when the key exists, so of two
 * containers asking for one port exactly one wins, and gc finds the owner of every element.
 */
export function ruleset(b: Bridge): string {
  const br = JSON.stringify(b.name);
  const net = formatCidr(b.subnet);
  const dnat = PROTOS.flatMap((p) => [
    `    fib daddr type local dnat to ip daddr . ${p} dport map @${p}_pub_ip`,
    `    fib daddr type local dnat to ${p} dport map @${p}_pub`,
  ]);
  const maps = PROTOS.flatMap((p) => [
    `  map ${p}_pub { type inet_service : ipv4_addr . inet_service\n  }`,
    `  map ${p}_pub_ip { type ipv4_addr . inet_service : ipv4_addr . inet_service\n  }`,
    `  map ${p}_claim { type inet_service : ipv4_addr\n  }`,
  ]);
  return [
    `table ip ${b.table} {`,
    ...maps,
    // route_localnet (for 127.0.0.1 publishing) would also let a container send to the host's
    // 127.0.0.0/8 services (CVE-2020-8558): such packets are dropped before routing
    `  chain guard { type filter hook prerouting priority raw; policy accept`,
    `    iifname ${br} ip daddr 127.0.0.0/8 drop`,
    `  }`,
    `  chain prerouting { type nat hook prerouting priority dstnat; policy accept`,
    ...dnat,
    `  }`,
    // locally made connections (to 127.0.0.1, the host's own addresses); "dstnat" is refused in output
    `  chain output { type nat hook output priority -100; policy accept`,
    ...dnat,
    `  }`,
    `  chain postrouting { type nat hook postrouting priority srcnat; policy accept`,
    `    ip saddr ${net} oifname != ${br} masquerade`,
    `    oifname ${br} ip saddr 127.0.0.0/8 masquerade`,
    // a container reaching a published port through a host address (maybe its own: hairpin)
    `    oifname ${br} ip saddr ${net} ct status dnat masquerade`,
    `  }`,
    // policy accept: this chain judges only traffic into the bridge; the host's other forwarding
    // is left to its own rules (see forwardingGuard for hosts that had forwarding off)
    `  chain forward { type filter hook forward priority filter; policy accept`,
    `    oifname ${br} ct state established,related accept`,
    `    oifname ${br} ct status dnat accept`,
    `    oifname ${br} iifname ${br} accept`,
    `    oifname ${br} drop`,
    `  }`,
    `}`,
    '',
  ].join('\n');
}

/**
 * Turning ip_forward on makes the host route between all its interfaces. When it was off,
 * tscontain keeps it that way for everything but the bridge (docker does the same with a DROP policy).
 */
export const forwardingGuard = (b: Bridge): string =>
  `add rule ip ${b.table} forward iifname != ${JSON.stringify(b.name)} oifname != ${JSON.stringify(b.name)} drop\n`;

/** sh: sets tsc_net_ready to 1 when the bridge is complete (route_localnet is the last thing set up). */
export const readyCheck = (b: Bridge, indent: '' | '    ' = ''): Sh =>
  sh`${lit(indent)}tsc_net_ready=; read -r tsc_net_ready 2>/dev/null < ${localnet(b)} || :`;

const localnet = (b: Bridge) => `/proc/sys/net/ipv4/conf/${b.name}/route_localnet`;

/**
 * Host setup, before the container starts: make the bridge and the table unless they are there.
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
  return {
    title: `Make the bridge ${b.name} (${net}, gateway ${formatIPv4(b.gateway)}) and the nft table ip ${b.table}, once`,
    man: 'ip-link(8) bridge, nft(8), flock(1), proc(5) /proc/sys/net/ipv4/ip_forward and route_localnet',
    lines: [
      readyCheck(b),
      sh`if [ "$tsc_net_ready" != 1 ]; then`,
      sh`  [ -d ${p.addresses} ] || mkdir -p ${p.addresses}`,
      lit('  {'),
      sh`    ${bin('flock')} 9`,
      sh`    [ -s ${p.subnet} ] || echo ${net} > ${p.subnet}`,
      sh`    read -r tsc_net_sub < ${p.subnet}`,
      sh`    [ "$tsc_net_sub" = ${net} ] || {`,
      sh`      echo ${changed} "$tsc_net_sub" >&2; exit 1`,
      lit('    }'),
      readyCheck(b, '    '),
      sh`    if [ "$tsc_net_ready" != 1 ]; then`,
      // dash's read gets the value from /proc/sys but returns 1: the kernel ends the file at its second byte-sized read
      sh`      tsc_net_fwd=; read -r tsc_net_fwd < /proc/sys/net/ipv4/ip_forward || :`,
      sh`      [ "$tsc_net_fwd" = 1 ] || : > ${p.forwardingWasOff}`,
      sh`      if ! ${bin('nft')} list table ip ${b.table} >/dev/null 2>&1; then`,
      sh`        printf '%s' ${ruleset(b)} | ${bin('nft')} -f -`,
      sh`        [ ! -e ${p.forwardingWasOff} ] ||`,
      sh`          printf '%s' ${forwardingGuard(b)} | ${bin('nft')} -f -`,
      lit('      fi'),
      // a bridge left half made (a crash in between) is completed, never deleted: containers may be on it
      sh`      [ -d ${`/sys/class/net/${b.name}`} ] || ${bin('ip')} link add ${b.name} type bridge`,
      sh`      printf ${'%s\\n'} ${bringUp} | ${bin('ip')} -batch -`,
      lit('      echo 1 > /proc/sys/net/ipv4/ip_forward'),
      sh`      echo 1 > ${sys}`,
      lit('    fi'),
      sh`  } 9> ${p.lock}`,
      lit('fi'),
    ],
  };
}

/**
 * `tscontain network prune` (or gc with no container on the bridge): remove the bridge and the
 * table, under the same lock, only if no veth is on the bridge and no address is allocated.
 * ip_forward stays as it is (docker does the same); the store remembers the subnet.
 */
export function bridgePruneStep(b: Bridge): Step {
  const { paths: p, bin } = b;
  return {
    title: `Remove the bridge ${b.name} and the nft table ip ${b.table} if no container uses them`,
    man: 'ip-link(8), nft(8), flock(1)',
    lines: [
      sh`[ -d ${p.addresses} ] || mkdir -p ${p.addresses}`,
      lit('{'),
      sh`  ${bin('flock')} 9`,
      sh`  tsc_net_used=; for tsc_net_f in ${`/sys/class/net/${b.name}/brif`}/* ${p.addresses}/*; do`,
      lit('    [ ! -e "$tsc_net_f" ] || tsc_net_used=1'),
      lit('  done'),
      lit('  if [ -z "$tsc_net_used" ]; then'),
      sh`    [ ! -d ${`/sys/class/net/${b.name}`} ] || ${bin('ip')} link del ${b.name}`,
      sh`    ! ${bin('nft')} list table ip ${b.table} >/dev/null 2>&1 || ${bin('nft')} delete table ip ${b.table}`,
      lit('  else echo "tscontain: the bridge is in use: kept" >&2'),
      lit('  fi'),
      sh`} 9> ${p.lock}`,
    ],
  };
}
