// A container on the bridge: a veth pair made with one end already in PID 1's network namespace
// (by pid, named eth0 there), the other end tsc<12 hex of the id> on the bridge. Then, inside the
// namespace (nsenter --net), lo, the address and the default route. Two programs in all: one `ip`
// on the host and one `nsenter ip` for the container, each running its commands from -batch.
import { joinSh, type Sh, lit, sh } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';
import type { Bridge } from './bridge.js';
import { formatIPv4 } from './ipv4.js';
import { vethName } from './store.js';

/**
 * At the start gate (PID 1 exists, waits): `pid` is an sh reference to its host pid, e.g.
 * lit('"$tsc_pid1"'). Needs tsc_net_ip and tsc_net_x from allocateStep. The MAC address is made
 * from the address (02:74:73 + ...) like docker's, so a reused address never meets a stale
 * neighbour entry on the host.
 */
export function vethGateStep(b: Bridge, id: string, pid: Sh): Step {
  const link = vethName(id);
  const mac = '02:74:%02x:%02x:%02x:%02x';
  const hostSide =
    `link add ${link} up master ${b.name} type veth peer name eth0 address ${mac} netns %s\\n` +
    `link set ${link} type bridge_slave hairpin on\\n`;
  const octets = lit(
    '$(( tsc_net_x >> 24 )) $(( tsc_net_x >> 16 & 255 )) $(( tsc_net_x >> 8 & 255 )) $(( tsc_net_x & 255 ))',
  );
  const gw = formatIPv4(b.gateway);
  const inside =
    `link set lo up\\naddr add %s/${b.subnet.len} dev eth0\\n` + `link set eth0 up\\nroute add default via ${gw}\\n`;
  return {
    title:
      `Connect the container to ${b.name}: veth pair ${link} (host) / eth0 (container), ` +
      `its address, the default route via ${formatIPv4(b.gateway)}`,
    man: 'veth(4), ip-link(8) netns PID, ip-address(8), ip-route(8), nsenter(1) --net, network_namespaces(7)',
    lines: [
      joinSh([sh`printf ${hostSide}`, octets, sh`${pid} |`, sh`${b.bin('ip')} -batch -`], ' \\\n    '),
      joinSh(
        [sh`printf ${inside} "$tsc_net_ip" |`, sh`${b.bin('nsenter')} --target ${pid} --net ${b.bin('ip')} -batch -`],
        ' \\\n    ',
      ),
    ],
  };
}

/**
 * Exit: nothing to do. The pair goes with the container's network namespace: the kernel deletes
 * both ends once the namespace's last process ended, in the background, where `ip link del` would
 * wait for it (an RCU grace period, ~10 ms). A namespace still held (a container that joined it
 * with --network container:NAME) keeps its veth; gc deletes one whose container is gone.
 */
export const vethExitLines = (): Sh[] => [
  lit('# the veth pair goes with the network namespace: the kernel deletes it once its last process ended'),
];

/** For --network none: the namespace's lo, from the host (PID 1 can also do it itself, as today). */
export const loUpLines = (b: Bridge, pid: Sh): Sh[] => [
  sh`${b.bin('nsenter')} --target ${pid} --net ${b.bin('ip')} link set lo up`,
];
