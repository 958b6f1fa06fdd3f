// The bridge's subnet: a /16 from a private range that overlaps no route of the host, chosen once
// and remembered in the store (lib/network/subnet). Host routes come in as data (probe.ts reads
// /proc/net/route); nothing here does I/O.
import { TscError } from '../../errors.js';
import { type Cidr, contains, formatCidr, formatIPv4, maskOf, overlaps, parseCidr } from './ipv4.js';

export interface Route {
  dst: Cidr;
  dev: string;
}

/** 32-bit little-endian hex as /proc/net/route prints addresses (on x86 and arm64). */
const hexLE = (h: string): number => {
  const n = parseInt(h, 16);
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | ((n >>> 24) & 0xff)) >>> 0;
};

/** The main routing table from /proc/net/route (proc(5)): Iface Destination Gateway Flags ... Mask ... */
export function parseProcNetRoute(text: string): Route[] {
  const out: Route[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !/^[0-9A-Fa-f]{8}$/.test(f[1]) || !/^[0-9A-Fa-f]{8}$/.test(f[7])) continue;
    const mask = hexLE(f[7]);
    const len = 32 - countZeroBits(mask); // netmasks are contiguous: the length is where the ones end
    out.push({ dev: f[0], dst: { base: (hexLE(f[1]) & maskOf(len)) >>> 0, len } });
  }
  return out;
}

function countZeroBits(mask: number): number {
  let n = 0;
  for (let i = 0; i < 32 && ((mask >>> i) & 1) === 0; i++) n++;
  return n;
}

/** `ip -j route show table all` entries ({ dst: "default" | "a.b.c.d[/len]", dev }), for hosts with policy routing. */
export function parseIpJsonRoutes(json: string): Route[] {
  const out: Route[] = [];
  for (const r of JSON.parse(json) as { dst?: string; dev?: string; type?: string }[]) {
    if (!r.dst || r.dst === 'default' || r.dst.includes(':')) continue;
    const dst = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    if (dst) out.push({ dev: r.dev ?? '', dst: { base: (dst.base & maskOf(dst.len)) >>> 0, len: dst.len } });
  }
  return out;
}

/**
 * Candidates in order: 172.17-31/16 (docker's default pool), then 10.x/16, then 192.168/16. Docker
 * and podman check the host's routes too, so whichever starts second steps aside.
 */
export function candidates(): Cidr[] {
  const c: Cidr[] = [];
  for (let b = 17; b <= 31; b++) c.push({ base: ((172 << 24) | (b << 16)) >>> 0, len: 16 });
  for (let b = 0; b <= 255; b++) c.push({ base: ((10 << 24) | (b << 16)) >>> 0, len: 16 });
  c.push({ base: ((192 << 24) | (168 << 16)) >>> 0, len: 16 });
  return c;
}

/** The route a subnet collides with (a default route collides with nothing: it is the fallback). */
export function collision(subnet: Cidr, routes: Route[], ownBridge?: string): Route | undefined {
  return routes.find((r) => r.dst.len > 0 && r.dev !== ownBridge && overlaps(subnet, r.dst));
}

/**
 * The first candidate that overlaps no host route and contains none of `avoid` (addresses the
 * containers must reach through the host, e.g. the resolvers of /etc/resolv.conf).
 */
export function chooseSubnet(routes: Route[], avoid: number[] = []): Cidr {
  const free = candidates().find((c) => !collision(c, routes) && !avoid.some((a) => contains(c, a)));
  if (!free)
    throw new TscError(
      'no private /16 is free for the bridge: every candidate overlaps a route of this host',
      "write one into the store's network/subnet file, e.g. 172.31.0.0/16",
    );
  return free;
}

/** A remembered subnet must still be free (a VPN may have come up since): one clear line if not. */
export function checkSubnet(subnet: Cidr, routes: Route[], bridge: string, avoid: number[] = []): void {
  const r = collision(subnet, routes, bridge);
  if (r)
    throw new TscError(
      `the bridge subnet ${formatCidr(subnet)} overlaps the host route ${formatCidr(r.dst)} on ${r.dev}`,
      "remove the store's network/subnet file (with no container running) to choose another",
    );
  const a = avoid.find((x) => contains(subnet, x));
  if (a !== undefined)
    throw new TscError(
      `the bridge subnet ${formatCidr(subnet)} contains ${formatIPv4(a)}, a resolver of this host`,
      "remove the store's network/subnet file (with no container running) to choose another",
    );
}

/** The subnet to use: the remembered one (checked), else a new choice. */
export function bridgeSubnet(
  remembered: string | undefined,
  routes: Route[],
  bridge: string,
  avoid: number[] = [],
): Cidr {
  if (remembered !== undefined) {
    const c = parseCidr(remembered.trim());
    if (!c || c.len > 24 || c.len < 8)
      throw new TscError(
        `the store's network/subnet file holds "${remembered.trim()}", not a prefix from /8 to /24`,
        'fix or remove it',
      );
    checkSubnet(c, routes, bridge, avoid);
    return c;
  }
  return chooseSubnet(routes, avoid);
}
