// Published ports: -p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp] (ports may be ranges) and -P
// (every ExposedPorts entry of the image, on a free host port). Each becomes elements of the nft
// maps of bridge.ts, added in one transaction that first *creates* a claim per host port, so a
// port another container holds fails the whole start and leaves nothing behind.
import { TscError } from '../../errors.js';
import { type Sh, lit, sh } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';
import type { Bridge, Proto } from './bridge.js';
import { parseIPv4 } from './ipv4.js';

/** One published container port. host.from === host.to: that port; else one free port of the range, picked at start. */
export interface PortMapping {
  proto: Proto;
  /** undefined: every address of the host */
  hostIp?: string;
  host: { from: number; to: number };
  container: number;
}

/** docker's default range for ports it picks itself (-P, -p CONTAINER_PORT) */
export const EPHEMERAL = { from: 32768, to: 60999 };

const USAGE =
  'use -p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp], ports 1-65535, e.g. -p 8080:80 or -p 127.0.0.1:5353:53/udp';

function portRange(s: string, whole: string): { from: number; to: number } {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
  if (!m) throw new TscError(`invalid -p "${whole}": "${s}" is not a port or a port range`, USAGE);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  for (const p of [from, to])
    if (p < 1 || p > 65535) throw new TscError(`invalid -p "${whole}": port ${p} is out of range`, USAGE);
  if (to < from) throw new TscError(`invalid -p "${whole}": the range ${s} ends before it starts`, USAGE);
  return { from, to };
}

/** One -p value: a mapping per container port. */
export function parsePublish(v: string): PortMapping[] {
  let spec = v;
  let proto: Proto = 'tcp';
  const slash = v.lastIndexOf('/');
  if (slash >= 0) {
    const p = v.slice(slash + 1);
    if (p !== 'tcp' && p !== 'udp') throw new TscError(`invalid -p "${v}": protocol "${p}" is not tcp or udp`, USAGE);
    proto = p;
    spec = v.slice(0, slash);
  }
  if (spec.startsWith('[')) throw new TscError(`invalid -p "${v}": IPv6 addresses are not supported`, USAGE);
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((x, i) => x === '' && !(parts.length === 3 && i === 1)))
    throw new TscError(`invalid -p "${v}"`, USAGE);
  const [ipPart, hostPart, ctrPart] =
    parts.length === 3 ? parts : parts.length === 2 ? [undefined, ...parts] : [undefined, undefined, parts[0]];
  let hostIp: string | undefined;
  if (ipPart !== undefined) {
    if (parseIPv4(ipPart) === undefined)
      throw new TscError(`invalid -p "${v}": "${ipPart}" is not an IPv4 address`, USAGE);
    hostIp = ipPart === '0.0.0.0' ? undefined : ipPart;
  }
  const ctr = portRange(ctrPart, v);
  const host = hostPart === undefined || hostPart === '' ? undefined : portRange(hostPart, v);
  const n = ctr.to - ctr.from + 1;
  const out: PortMapping[] = [];
  if (host === undefined) {
    for (let i = 0; i < n; i++) out.push({ proto, hostIp, host: { ...EPHEMERAL }, container: ctr.from + i });
  } else if (host.to - host.from + 1 === n) {
    for (let i = 0; i < n; i++)
      out.push({ proto, hostIp, host: { from: host.from + i, to: host.from + i }, container: ctr.from + i });
  } else if (n === 1) {
    out.push({ proto, hostIp, host, container: ctr.from }); // docker: one free port of the host range
  } else {
    throw new TscError(`invalid -p "${v}": the host range and the container range differ in length`, USAGE);
  }
  return out;
}

/** -P: the image config's ExposedPorts ({"80/tcp": {}, "53/udp": {}}), each on a free ephemeral port. */
export function publishAll(exposed: Record<string, unknown> | undefined): PortMapping[] {
  const out: PortMapping[] = [];
  for (const key of Object.keys(exposed ?? {})) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/.exec(key);
    if (!m)
      throw new TscError(
        `the image exposes "${key}", which is not PORT[/tcp|/udp]`,
        'publish its ports one by one with -p',
      );
    if (m[3] === 'sctp') continue; // not published by tscontain (nor by most docker setups)
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < 1 || to > 65535 || to < from)
      throw new TscError(`the image exposes "${key}", which is out of range`, 'publish its ports one by one with -p');
    for (let p = from; p <= to; p++)
      out.push({ proto: (m[3] ?? 'tcp') as Proto, host: { ...EPHEMERAL }, container: p });
  }
  return out.sort((a, b) => a.container - b.container || a.proto.localeCompare(b.proto));
}

const fixed = (m: PortMapping) => m.host.from === m.host.to;
const showMapping = (m: PortMapping) =>
  `${m.hostIp ? m.hostIp + ':' : ''}${fixed(m) ? m.host.from : `${m.host.from}-${m.host.to}`}` +
  `:${m.container}/${m.proto}`;

/**
 * One container cannot publish a host port twice, nor one container port of -P twice (an -p for
 * it wins). A host port is the unit of conflict whatever the address (docker too refuses
 * 0.0.0.0:80 next to 127.0.0.1:80); ports a host program listens on are refused, because DNAT would
 * hide that program from other machines.
 */
export function checkMappings(
  ms: PortMapping[],
  listening: { tcp: ReadonlySet<number>; udp: ReadonlySet<number> } = { tcp: new Set(), udp: new Set() },
): PortMapping[] {
  const seen = new Map<string, PortMapping>();
  for (const m of ms.filter(fixed)) {
    const k = `${m.host.from}/${m.proto}`;
    const other = seen.get(k);
    if (other)
      throw new TscError(
        `host port ${k} is published twice (${showMapping(other)} and ${showMapping(m)})`,
        'give each host port once',
      );
    seen.set(k, m);
    if (listening[m.proto].has(m.host.from))
      throw new TscError(
        `host port ${k} is in use by a program on this host`,
        'choose another host port, e.g. -p 8080:' + m.container,
      );
  }
  return ms;
}

/** Free candidates of a range for a port picked at start: the whole range when small, else some, starting at random. */
export function candidates(m: PortMapping, taken: (p: number) => boolean, count = 32, rand = Math.random): number[] {
  const size = m.host.to - m.host.from + 1;
  const start = size <= count ? 0 : Math.floor(rand() * size);
  const out: number[] = [];
  for (let i = 0; i < size && out.length < count; i++) {
    const p = m.host.from + ((start + i) % size);
    if (!taken(p)) out.push(p);
  }
  return out;
}

/** The nft lines that publish one port, as a printf format and its arguments (the address comes at run time). */
function elementFormat(b: Bridge, m: PortMapping, port: Sh | string): { fmt: string; args: (Sh | string)[] } {
  const t = `ip ${b.table}`;
  const ip = lit('"$tsc_net_ip"');
  const claim = `create element ${t} ${m.proto}_claim { %s : %s }\\n`;
  if (m.hostIp)
    return {
      fmt: claim + `add element ${t} ${m.proto}_pub_ip { %s . %s : %s . %s }\\n`,
      args: [port, ip, m.hostIp, port, ip, String(m.container)],
    };
  return {
    fmt: claim + `add element ${t} ${m.proto}_pub { %s : %s . %s }\\n`,
    args: [port, ip, port, ip, String(m.container)],
  };
}

/** "$tsc_run/ports": PROTO CONTAINER_PORT HOST_IP HOST_PORT per line, written once the ports are ours. */
function recordFormat(m: PortMapping, port: Sh | string): { fmt: string; args: (Sh | string)[] } {
  return { fmt: '%s %s %s %s\\n', args: [m.proto, String(m.container), m.hostIp ?? '0.0.0.0', port] };
}

/**
 * Host setup, after allocateStep (needs tsc_net_ip, $tsc_run). Fixed ports: one nft transaction.
 * A port picked from a range: one attempt per candidate until a claim succeeds.
 */
export function publishStep(
  b: Bridge,
  ms: PortMapping[],
  taken: (proto: Proto, p: number) => boolean = () => false,
): Step | undefined {
  if (!ms.length) return undefined;
  const nft = b.bin('nft');
  const lines: Sh[] = [];
  const statics = ms.filter(fixed);
  if (statics.length) {
    const printfs = statics.map((m) => {
      const e = elementFormat(b, m, String(m.host.from));
      return sh`printf ${e.fmt} ${e.args}`;
    });
    const records = statics.map((m) => {
      const r = recordFormat(m, String(m.host.from));
      return sh`printf ${r.fmt} ${r.args}`;
    });
    lines.push(
      lit('{'),
      ...printfs.map((p) => sh`  ${p}`),
      sh`} | ${nft} -f - 2>"$tsc_run/nft.err" || {`,
      ...conflictReport(b, statics),
      lit('}'),
      lit('{'),
      ...records.map((p) => sh`  ${p}`),
      lit('} >> "$tsc_run/ports"'),
    );
  }
  for (const m of ms.filter((x) => !fixed(x))) {
    const cands = candidates(m, (p) => taken(m.proto, p));
    const e = elementFormat(b, m, lit('"$tsc_net_p"'));
    const r = recordFormat(m, lit('"$tsc_net_p"'));
    const none = `tscontain: no free host port in ${m.host.from}-${m.host.to} for ${m.container}/${m.proto}`;
    lines.push(
      sh`tsc_net_ok=; for tsc_net_p in ${cands.map(String)}; do`,
      sh`  printf ${e.fmt} ${e.args} | ${nft} -f - 2>/dev/null && { tsc_net_ok=1; break; }`,
      lit('done'),
      sh`[ -n "$tsc_net_ok" ] || { echo ${none} >&2; exit 1; }`,
      sh`printf ${r.fmt} ${r.args} >> "$tsc_run/ports"`,
    );
  }
  const shown = ms.map(showMapping);
  const list = shown.length > 4 ? `${shown.slice(0, 4).join(', ')} and ${shown.length - 4} more` : shown.join(', ');
  return {
    title: `Publish ${list}: DNAT from the host's addresses to the container`,
    man: 'nft(8) maps, create element (fails if the key exists), nat',
    lines,
  };
}

/** On a failed transaction: which port is taken (found only now, so the good path runs one nft). */
function conflictReport(b: Bridge, ms: PortMapping[]): Sh[] {
  const nft = b.bin('nft');
  return [
    ...ms.flatMap((m) => {
      const taken = `tscontain: host port ${m.host.from}/${m.proto} is already published by another container`;
      return [
        sh`  ! ${nft} get element ip ${b.table} ${`${m.proto}_claim`} ${`{ ${m.host.from} }`} >/dev/null 2>&1 ||`,
        sh`    { echo ${taken} >&2; exit 1; }`,
      ];
    }),
    lit('  sed \'s/^/tscontain: /\' "$tsc_run/nft.err" >&2; exit 1'),
  ];
}

/**
 * Exit: delete what "$tsc_run/ports" lists, nothing else (a claim that failed never made the
 * file). nft -f is all or nothing, so if one element is gone already (gc), each goes on its own.
 */
export function unpublishLines(b: Bridge): Sh[] {
  const t = `ip ${b.table}`;
  return [
    lit('if [ -s "$tsc_run/ports" ]; then'),
    lit('  tsc_net_del() {'),
    lit('    while read -r tsc_net_pr tsc_net_cp tsc_net_hi tsc_net_hp; do'),
    lit('      case $tsc_net_pr in tcp|udp) ;; *) continue ;; esac'),
    sh`      printf ${`delete element ${t} %s_claim { %s }\\n`} "$tsc_net_pr" "$tsc_net_hp"`,
    lit('      if [ "$tsc_net_hi" = 0.0.0.0 ]; then'),
    sh`        printf ${`delete element ${t} %s_pub { %s }\\n`} "$tsc_net_pr" "$tsc_net_hp"`,
    sh`      else printf ${`delete element ${t} %s_pub_ip { %s . %s }\\n`} "$tsc_net_pr" "$tsc_net_hi" "$tsc_net_hp"`,
    lit('      fi'),
    lit('    done < "$tsc_run/ports"'),
    lit('  }'),
    sh`  tsc_net_del | ${b.bin('nft')} -f - 2>/dev/null ||`,
    lit('    tsc_net_del | while read -r tsc_net_l; do'),
    sh`      echo "$tsc_net_l" | ${b.bin('nft')} -f - 2>/dev/null`,
    lit('    done || :'),
    lit('  rm -f "$tsc_run/ports"'),
    lit('fi'),
  ];
}

export interface PublishedPort {
  proto: Proto;
  container: number;
  hostIp: string;
  hostPort: number;
}

/** The "$tsc_run/ports" file back to data (for port, ps, inspect). */
export function parsePortsFile(text: string): PublishedPort[] {
  const out: PublishedPort[] = [];
  for (const l of text.split('\n')) {
    const [proto, c, ip, h] = l.trim().split(/\s+/);
    if ((proto === 'tcp' || proto === 'udp') && /^\d+$/.test(c) && parseIPv4(ip) !== undefined && /^\d+$/.test(h))
      out.push({ proto, container: Number(c), hostIp: ip, hostPort: Number(h) });
  }
  return out.sort((a, b) => a.container - b.container || a.proto.localeCompare(b.proto) || a.hostPort - b.hostPort);
}

/**
 * `tscontain port NAME [PORT[/PROTO]]`, as docker prints it: "80/tcp -> 0.0.0.0:8080" per line,
 * or with a port given only "0.0.0.0:8080". Returns undefined when the filter matches nothing.
 */
export function formatPort(ports: PublishedPort[], filter?: string): string | undefined {
  if (filter === undefined)
    return ports.map((p) => `${p.container}/${p.proto} -> ${p.hostIp}:${p.hostPort}\n`).join('');
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(filter);
  if (!m)
    throw new TscError(`invalid port "${filter}"`, 'use PORT or PORT/tcp or PORT/udp, e.g. tscontain port web 80');
  const hits = ports.filter((p) => p.container === Number(m[1]) && p.proto === (m[2] ?? 'tcp'));
  return hits.length ? hits.map((p) => `${p.hostIp}:${p.hostPort}\n`).join('') : undefined;
}

/** The PORTS column of ps: "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp". */
export const formatPsPorts = (ports: PublishedPort[]): string =>
  ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.container}/${p.proto}`).join(', ');
