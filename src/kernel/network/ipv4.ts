// IPv4 addresses as unsigned 32-bit numbers, and prefixes (a.b.c.d/len): parsing, printing and
// overlap. Pure, no I/O; every other network file builds on these.

export interface Cidr {
  base: number;
  len: number;
}

/** a.b.c.d in dotted decimal, each part 0..255 without leading zeros (which some tools read as octal). */
export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map((p) => (p.length > 1 && p.startsWith('0') ? NaN : Number(p)));
  if (parts.some((p) => !(p >= 0 && p <= 255))) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export const formatIPv4 = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/** The netmask of a prefix length, as a number (len 0 -> 0). */
export const maskOf = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);

export function parseCidr(s: string): Cidr | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  const base = m ? parseIPv4(m[1]) : undefined;
  const len = m ? Number(m[2]) : NaN;
  if (base === undefined || !(len >= 0 && len <= 32) || (base & maskOf(len)) >>> 0 !== base) return undefined;
  return { base, len };
}

export const formatCidr = (c: Cidr): string => `${formatIPv4(c.base)}/${c.len}`;

/** Two prefixes overlap when they agree on the bits of the shorter one. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const m = maskOf(Math.min(a.len, b.len));
  return (a.base & m) >>> 0 === (b.base & m) >>> 0;
}

export const contains = (c: Cidr, addr: number): boolean => (addr & maskOf(c.len)) >>> 0 === c.base;

/** The n-th address of a prefix (n = 1 is the first host address). */
export const nth = (c: Cidr, n: number): number => (c.base + n) >>> 0;

/** IPv6 text, loosely: hex groups and colons, at most one "::", an optional IPv4 tail. */
export function isIPv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || !s.includes(':') || s.split('::').length > 2) return false;
  const tail4 = /\d+\.\d+\.\d+\.\d+$/.exec(s);
  if (tail4 && parseIPv4(tail4[0]) === undefined) return false;
  const groups = (tail4 ? s.slice(0, -tail4[0].length) : s).split(':').filter((g) => g !== '');
  if (groups.some((g) => !/^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  const n = groups.length + (tail4 ? 2 : 0);
  return s.includes('::') ? n < 8 : n === 8;
}

/** ::1, and IPv4 127.0.0.0/8 (also IPv4-mapped): resolvers there cannot be reached from a container. */
export function isLoopback(s: string): boolean {
  const v4 = parseIPv4(s.replace(/^::ffff:/i, ''));
  if (v4 !== undefined) return v4 >>> 24 === 127;
  return /^(0{0,4}:){2,7}0{0,3}1$/.test(s) || s === '::1';
}
