// The bridge's firewall with nft(8): one table of our own, "ip tscontain", for outbound NAT, the
// forward filter, the 127.0.0.0/8 guard and published ports (maps per protocol). Other tables
// (docker's, firewalld's, the admin's) are never touched: cleanup is deleting elements, or ours.
import { type Sh, lit, sh } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';
import type { Bridge } from './bridge.js';
import type { Firewall, GcAlive, GcRunner } from './firewall.js';
import { formatCidr } from './ipv4.js';
import { type PortMapping, PROTOS, type Proto, candidates, fixed, recordFormat, showMapping } from './publish.js';
import { type NetPaths, TABLE } from './store.js';

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

/** Under the lock, when the bridge is made: the table unless it is there (a crash may have left it). */
function setupLines(b: Bridge): Sh[] {
  const nft = b.bin('nft');
  return [
    sh`if ! ${nft} list table ip ${b.table} >/dev/null 2>&1; then`,
    sh`  printf '%s' ${ruleset(b)} | ${nft} -f -`,
    sh`  [ ! -e ${b.paths.forwardingWasOff} ] ||`,
    sh`    printf '%s' ${forwardingGuard(b)} | ${nft} -f -`,
    lit('fi'),
  ];
}

/** Under the lock, with no container on the bridge: the table goes. */
const pruneLines = (b: Bridge): Sh[] => [
  sh`! ${b.bin('nft')} list table ip ${b.table} >/dev/null 2>&1 || ${b.bin('nft')} delete table ip ${b.table}`,
];

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

/**
 * Host setup, after allocateStep (needs tsc_net_ip, $tsc_run). Fixed ports: one nft transaction.
 * A port picked from a range: one attempt per candidate until a claim succeeds.
 */
function publishStep(
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
function unpublishLines(b: Bridge): Sh[] {
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

type NftValue = number | string | { concat: (number | string)[] };
interface NftMap {
  name: string;
  table: string;
  elem?: [NftValue, NftValue][];
}

const nftText = (v: NftValue): string => (typeof v === 'object' ? v.concat.join(' . ') : String(v));
const addressOf = (v: NftValue): string => String(typeof v === 'object' ? v.concat[0] : v);

/** `nft -j list table ip T` -> delete lines for the elements whose container address is not allocated. */
export function staleElements(json: string, table: string, allocated: ReadonlySet<string>): string[] {
  const out: string[] = [];
  let items: { map?: NftMap }[] = [];
  try {
    items = (JSON.parse(json) as { nftables?: { map?: NftMap }[] }).nftables ?? [];
  } catch {
    return []; // not nft's JSON: nothing here is known to be ours
  }
  for (const it of items) {
    const m = it.map;
    if (!m || m.table !== table || !/^(tcp|udp)_(pub|pub_ip|claim)$/.test(m.name)) continue;
    for (const [key, value] of m.elem ?? [])
      if (!allocated.has(addressOf(value))) out.push(`delete element ip ${table} ${m.name} { ${nftText(key)} }`);
  }
  return out;
}

/** gc: every element whose container address is no longer allocated goes (all at once, else one by one). */
function gc(b: Bridge, alive: () => GcAlive, runner: GcRunner): string[] {
  const nft = b.bin('nft');
  const listed = runner.run(nft, ['-j', 'list', 'table', 'ip', b.table]);
  const elements = listed.code === 0 ? staleElements(listed.out, b.table, alive().addresses) : [];
  if (elements.length && runner.run(nft, ['-f', '-'], elements.join('\n') + '\n').code !== 0)
    for (const e of elements) runner.run(nft, ['-f', '-'], e + '\n'); // all or nothing: one by one instead
  return elements;
}

/** The leak check: map elements left (the empty table may stay with the bridge). */
function leftovers(_paths: NetPaths, runner: GcRunner, bin: (name: string) => string): string[] {
  const listed = runner.run(bin('nft'), ['-j', 'list', 'table', 'ip', TABLE]);
  const elements = listed.code === 0 ? staleElements(listed.out, TABLE, new Set()) : [];
  return elements.length
    ? [`nft elements in ip ${TABLE}: ${elements.map((e) => e.replace(/^delete element ip \S+ /, '')).join(', ')}`]
    : [];
}

export const NFT: Firewall = {
  name: 'nft',
  what: `the nft table ip ${TABLE}`,
  man: 'nft(8)',
  setupLines,
  pruneLines,
  publishStep,
  unpublishLines,
  unpublishMan: 'nft(8) delete element',
  gc,
  leftovers,
  probe: (b) => `nft -f - <<'EOF'\n${ruleset(b)}EOF`,
};
