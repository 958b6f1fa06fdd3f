// Where networking keeps its state in the store. Host-wide kernel objects (the bridge, the nft
// table) carry fixed names; the store remembers the subnet and which container has which address.
import { join } from 'node:path';
import type { Roots } from '../../store/paths.js';

export interface NetPaths {
  /** lib/network */
  dir: string;
  /** flock(1) file that serialises making and removing the bridge and the nft table */
  lock: string;
  /** the bridge's subnet, chosen once ("172.17.0.0/16") */
  subnet: string;
  /** one file per address in use, named by the address, holding the container id */
  addresses: string;
  /** present when ip_forward was 0 before tscontain turned it on: the forward chain then keeps other forwarding off */
  forwardingWasOff: string;
  /** made-nft, made-iptables: present once that firewall's rules were made with the bridge */
  made: string;
  /** iptables: one file per host port published (tcp-8080), created exclusively, holding the container id */
  claims: string;
}

/**
 * The bridge is the host's, so its subnet and addresses are too: roots() gives every store the same
 * directory (TSCONTAIN_ROOT moves containers and images, not this; TSCONTAIN_NET_DIR does).
 */
export function netPaths(r: Roots): NetPaths {
  const dir = r.net ?? join(r.lib, 'network');
  return {
    dir,
    lock: join(dir, 'lock'),
    subnet: join(dir, 'subnet'),
    addresses: join(dir, 'addresses'),
    forwardingWasOff: join(dir, 'forwarding-was-off'),
    made: join(dir, 'made'),
    claims: join(dir, 'ports'),
  };
}

/**
 * The bridge, the nft table (iptables: chains TSCONTAIN-*) and the host side of each veth: every
 * name starts with tsc or holds tscontain.
 */
export const BRIDGE = 'tsc0';
export const TABLE = 'tscontain';

/** The host side of a container's veth pair: "tsc" + 12 hex digits of its id (IFNAMSIZ allows 15 characters). */
export function vethName(id: string): string {
  if (!/^[0-9a-f]{12,}$/.test(id)) throw new Error(`not a container id: ${id}`);
  return `tsc${id.slice(0, 12)}`;
}

/** A host-side veth name back to the id prefix it was made from. */
export const vethIdPrefix = (link: string): string | undefined => /^tsc([0-9a-f]{12})$/.exec(link)?.[1];
