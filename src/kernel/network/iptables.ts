// The bridge's firewall with iptables(8), for hosts without nft(8): the rules of nft.ts as chains
// of our own, TSCONTAIN-* in the raw, nat and filter tables, each hooked in by one jump rule from a
// built-in chain (inserted once: -C before -I). The host's other rules and chains are never
// touched; prune deletes our jumps and chains. The same commands work whichever backend iptables
// has (nf_tables or the legacy x_tables).
// Published ports: a DNAT rule per port whose comment is tscontain:<container id>, so exit and gc
// delete exactly that container's rules (iptables-save, then iptables-restore --noflush with -D
// lines: the rules go back to iptables as data, never to sh). Without nft's `create element`, a
// host port is claimed with a file per protocol and port in the network directory, created with
// O_EXCL (as ipam.ts takes addresses): of two containers asking for one port exactly one gets it.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Sh, joinSh, lit, sh } from '../../plan/sh.js';
import type { Step } from '../../plan/step.js';
import type { Bridge } from './bridge.js';
import type { Firewall, GcAlive, GcRunner } from './firewall.js';
import { freeDeadAddresses, readAllocations } from './ipam.js';
import { formatCidr, formatIPv4 } from './ipv4.js';
import { type PortMapping, type Proto, candidates, fixed, recordFormat, showMapping } from './publish.js';
import type { NetPaths } from './store.js';

export type Table = 'raw' | 'nat' | 'filter';

/** A chain of ours, the built-in chains that jump to it, and its rules (iptables arguments after -A CHAIN). */
export interface OwnChain {
  table: Table;
  name: string;
  from: { chain: string; match: string[] }[];
  rules: string[][];
  /** holds the containers' rules: made once, never flushed when the bridge is made again */
  perContainer?: true;
}

export const DNAT_CHAIN = 'TSCONTAIN-DNAT';
const CHAIN_PREFIX = 'TSCONTAIN-';

/** The comment that marks a container's rules: tscontain:<its id>, here the plan's $tsc_id. */
const OWNER = lit('tscontain:"$tsc_id"');

/** Our chains, as data: what nft.ts's table does, chain for chain. */
export function chains(b: Bridge): OwnChain[] {
  const br = b.name;
  const net = formatCidr(b.subnet);
  const local = ['-m', 'addrtype', '--dst-type', 'LOCAL'];
  return [
    // route_localnet (for 127.0.0.1 publishing) would also let a container send to the host's
    // 127.0.0.0/8 services (CVE-2020-8558): such packets are dropped before routing
    {
      table: 'raw',
      name: 'TSCONTAIN-GUARD',
      from: [{ chain: 'PREROUTING', match: [] }],
      rules: [['-i', br, '-d', '127.0.0.0/8', '-j', 'DROP']],
    },
    // published ports, on the host's own addresses: from elsewhere (PREROUTING) and from the host
    // itself (OUTPUT: to 127.0.0.1 or any of its addresses)
    {
      table: 'nat',
      name: DNAT_CHAIN,
      from: [
        { chain: 'PREROUTING', match: local },
        { chain: 'OUTPUT', match: local },
      ],
      rules: [],
      perContainer: true,
    },
    {
      table: 'nat',
      name: 'TSCONTAIN-POSTROUTING',
      from: [{ chain: 'POSTROUTING', match: [] }],
      rules: [
        ['-s', net, '!', '-o', br, '-j', 'MASQUERADE'],
        ['-s', '127.0.0.0/8', '-o', br, '-j', 'MASQUERADE'],
        // a container reaching a published port through a host address (maybe its own: hairpin)
        ['-s', net, '-o', br, '-m', 'conntrack', '--ctstate', 'DNAT', '-j', 'MASQUERADE'],
      ],
    },
    // RETURN, not ACCEPT: nft's accept in a table of its own leaves the packet to the host's other
    // rules, and so does this chain; it only drops what nobody asked into the bridge
    {
      table: 'filter',
      name: 'TSCONTAIN-FORWARD',
      from: [{ chain: 'FORWARD', match: [] }],
      rules: [
        ['-o', br, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN'],
        ['-o', br, '-m', 'conntrack', '--ctstate', 'DNAT', '-j', 'RETURN'],
        ['-i', br, '-o', br, '-j', 'RETURN'],
        ['-o', br, '-j', 'DROP'],
      ],
    },
  ];
}

/** When ip_forward was off before the bridge: other forwarding stays off (as nft.ts's forwardingGuard). */
export const forwardingGuardRule = (b: Bridge): string[] => ['!', '-i', b.name, '!', '-o', b.name, '-j', 'DROP'];

const ipt = (b: Bridge, table: Table) => sh`${b.bin('iptables')} -w -t ${table}`;
/** iptables arguments as sh words: `!` needs no quotes where it is an argument */
const words = (args: readonly (Sh | string)[]): (Sh | string)[] => args.map((a) => (a === '!' ? lit('!') : a));

/** Where a line of the plan is full: the step and the bridge's block indent it by up to 8 more. */
const WIDE = 108;

/**
 * `iptables ... ARGS` on as few lines as fit: a line breaks only before an option (a word that
 * starts with -, or a !), so each option stays with its values.
 */
function command(prefix: Sh, args: readonly (Sh | string)[]): Sh {
  const groups: (Sh | string)[][] = [];
  for (const a of args) {
    const last = groups[groups.length - 1];
    const opens = typeof a === 'string' && /^[-!]/.test(a) && !(last?.length === 1 && last[0] === '!');
    if (opens || !last) groups.push([a]);
    else last.push(a);
  }
  const lines: Sh[] = [prefix];
  for (const g of groups) {
    const cur = lines[lines.length - 1];
    const next = sh`${cur} ${words(g)}`;
    if (next.text.length <= WIDE || cur === prefix) lines[lines.length - 1] = next;
    else lines.push(sh`${words(g)}`);
  }
  return joinSh(lines, ' \\\n    ');
}

/**
 * Under the lock, when the bridge is made: each chain made unless there, its fixed rules made
 * again (a crash may have left it half filled; the chain of published ports is left as it is),
 * then the jumps, each inserted once. Every line is one iptables change, as the plan prints it.
 */
function setupLines(b: Bridge): Sh[] {
  const cs = chains(b);
  const made = cs.flatMap((c) => {
    const t = ipt(b, c.table);
    return [
      sh`${t} -S ${c.name} >/dev/null 2>&1 ||`,
      sh`  ${t} -N ${c.name}`,
      ...(c.perContainer ? [] : [sh`${t} -F ${c.name}`, ...c.rules.map((r) => command(sh`${t} -A ${c.name}`, r))]),
    ];
  });
  const guard = [
    sh`[ ! -e ${b.paths.forwardingWasOff} ] ||`,
    sh`  ${ipt(b, 'filter')} -A TSCONTAIN-FORWARD ${words(forwardingGuardRule(b))}`,
  ];
  const jumps = cs.flatMap((c) =>
    c.from.flatMap((f) => {
      const t = ipt(b, c.table);
      const rule = [...f.match, '-j', c.name];
      return [sh`${t} -C ${f.chain} ${rule} 2>/dev/null ||`, sh`  ${t} -I ${f.chain} ${rule}`];
    }),
  );
  return [...made, ...guard, ...jumps];
}

/** Under the lock, with no container on the bridge: our jumps, then our chains (if any is there). */
function pruneLines(b: Bridge): Sh[] {
  const cs = chains(b);
  const jumps = cs.flatMap((c) =>
    c.from.flatMap((f) => {
      const t = ipt(b, c.table);
      const rule = [...f.match, '-j', c.name];
      return [
        sh`  while ${t} -C ${f.chain} ${rule} 2>/dev/null; do`,
        sh`    ${t} -D ${f.chain} ${rule}`,
        lit('  done'),
      ];
    }),
  );
  const gone = cs.flatMap((c) => {
    const t = ipt(b, c.table);
    return [
      sh`  if ${t} -S ${c.name} >/dev/null 2>&1; then`,
      sh`    ${t} -F ${c.name}`,
      sh`    ${t} -X ${c.name}`,
      lit('  fi'),
    ];
  });
  return [
    sh`if ${b.bin('iptables-save')} 2>/dev/null | grep -q ${`^:${CHAIN_PREFIX}`}; then`,
    ...jumps,
    ...gone,
    lit('fi'),
  ];
}

/** The DNAT rule of one published port (iptables arguments after -A TSCONTAIN-DNAT). */
export function dnatRule(m: PortMapping, port: Sh | string, owner: Sh | string, dest: Sh | string): (Sh | string)[] {
  return [
    '-p',
    m.proto,
    ...(m.hostIp ? ['-d', m.hostIp] : []),
    '--dport',
    port,
    '-m',
    'comment',
    '--comment',
    owner,
    '-j',
    'DNAT',
    '--to-destination',
    dest,
  ];
}

const claimName = (proto: Proto, port: number | string) => `${proto}-${port}`;
const isClaim = (name: string) => /^(tcp|udp)-\d{1,5}$/.test(name);
const ip = lit('"$tsc_net_ip"');

/** One rule: iptables -A TSCONTAIN-DNAT ... -j DNAT. */
const addRule = (b: Bridge, m: PortMapping, port: Sh | string): Sh =>
  command(sh`${ipt(b, 'nat')} -A ${DNAT_CHAIN}`, dnatRule(m, port, OWNER, sh`${ip}:${String(m.container)}`));

/**
 * Host setup, after allocateStep (needs tsc_net_ip, $tsc_run, $tsc_id). Fixed ports: every claim
 * first (one taken: ours so far are given back, nothing else was made), then the record, then a
 * rule per port. A port picked from a range: the first candidate whose claim succeeds.
 */
function publishStep(
  b: Bridge,
  ms: PortMapping[],
  taken: (proto: Proto, p: number) => boolean = () => false,
): Step | undefined {
  if (!ms.length) return undefined;
  const dir = b.paths.claims;
  const claim = sh`{ echo "$tsc_id $tsc_run" > ${dir}/`;
  const lines: Sh[] = [sh`[ -d ${dir} ] || mkdir -p ${dir}`];
  const statics = ms.filter(fixed);
  if (statics.length) {
    const records = statics.map((m) => {
      const r = recordFormat(m, String(m.host.from));
      return sh`  printf ${r.fmt} ${r.args}`;
    });
    lines.push(
      sh`tsc_net_got=; set -C; for tsc_net_c in ${statics.map((m) => claimName(m.proto, m.host.from))}; do`,
      sh`  if ${claim}"$tsc_net_c"; } 2>/dev/null; then`,
      lit('    tsc_net_got="$tsc_net_got $tsc_net_c"; continue'),
      lit('  fi'),
      sh`  set +C; for tsc_net_g in $tsc_net_got; do rm -f ${dir}/"$tsc_net_g"; done`,
      lit('  tsc_net_c="${tsc_net_c#*-}/${tsc_net_c%-*}"'),
      lit('  echo "tscontain: host port $tsc_net_c is already published by another container" >&2; exit 1'),
      lit('done; set +C'),
      lit('{'),
      ...records,
      lit('} >> "$tsc_run/ports"'),
      ...statics.map((m) => addRule(b, m, String(m.host.from))),
    );
  }
  for (const m of ms.filter((x) => !fixed(x))) {
    const cands = candidates(m, (p) => taken(m.proto, p));
    const r = recordFormat(m, lit('"$tsc_net_p"'));
    const none = `tscontain: no free host port in ${m.host.from}-${m.host.to} for ${m.container}/${m.proto}`;
    lines.push(
      sh`tsc_net_ok=; set -C; for tsc_net_p in ${cands.map(String)}; do`,
      sh`  if ${claim}${`${m.proto}-`}"$tsc_net_p"; } 2>/dev/null; then`,
      lit('    tsc_net_ok=1; break'),
      lit('  fi'),
      lit('done; set +C'),
      sh`[ -n "$tsc_net_ok" ] || { echo ${none} >&2; exit 1; }`,
      sh`printf ${r.fmt} ${r.args} >> "$tsc_run/ports"`,
      addRule(b, m, lit('"$tsc_net_p"')),
    );
  }
  const shown = ms.map(showMapping);
  const list = shown.length > 4 ? `${shown.slice(0, 4).join(', ')} and ${shown.length - 4} more` : shown.join(', ');
  return {
    title: `Publish ${list}: claim each host port (a file created exclusively), DNAT to the container`,
    man: 'sh(1) set -C (open with O_EXCL), iptables(8) -A, iptables-extensions(8) DNAT, comment',
    lines,
  };
}

/**
 * Exit: delete the rules whose comment names this container (iptables-save finds them, -D lines
 * go to iptables-restore, all at once, else one by one if one went already), then give back the
 * claims "$tsc_run/ports" lists that are still ours.
 */
function unpublishLines(b: Bridge): Sh[] {
  const dir = b.paths.claims;
  const restore = sh`${b.bin('iptables-restore')} -w -n`;
  return [
    lit('if [ -s "$tsc_run/ports" ]; then'),
    sh`  tsc_net_del=$(${b.bin('iptables-save')} -t nat 2>/dev/null | grep -F -e ${OWNER} |`,
    sh`    sed -n ${`s/^-A ${DNAT_CHAIN} /-D ${DNAT_CHAIN} /p`}) || :`,
    lit('  if [ -n "$tsc_net_del" ]; then'),
    sh`    printf ${'*nat\\n%s\\nCOMMIT\\n'} "$tsc_net_del" | ${restore} 2>/dev/null ||`,
    lit('      printf \'%s\\n\' "$tsc_net_del" | while read -r tsc_net_l; do'),
    sh`        printf ${'*nat\\n%s\\nCOMMIT\\n'} "$tsc_net_l" | ${restore} 2>/dev/null || :`,
    lit('      done'),
    lit('  fi'),
    lit('  while read -r tsc_net_pr tsc_net_cp tsc_net_hi tsc_net_hp; do'),
    lit('    case $tsc_net_pr in tcp|udp) ;; *) continue ;; esac'),
    lit("    case $tsc_net_hp in ''|*[!0-9]*) continue ;; esac"),
    sh`    tsc_net_f=${dir}/"$tsc_net_pr-$tsc_net_hp"`,
    lit('    tsc_net_o=; read -r tsc_net_o tsc_net_r 2>/dev/null < "$tsc_net_f" || :'),
    lit('    [ "$tsc_net_o" != "$tsc_id" ] || rm -f "$tsc_net_f"'),
    lit('  done < "$tsc_run/ports"'),
    lit('  rm -f "$tsc_run/ports"'),
    lit('fi'),
  ];
}

/** iptables-save text -> the -D lines (per table) for our rules whose container is not alive. */
export function staleRules(save: string, alive: ReadonlySet<string>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const m = /^-A (TSCONTAIN-\S+) .*tscontain:([0-9a-f]{12,64})\b/.exec(line);
    if (!m || [...alive].some((id) => id.startsWith(m[2]))) continue;
    out.set(table, [...(out.get(table) ?? []), `-D ${line.slice(3)}`]);
  }
  return out;
}

/** iptables-restore input that deletes these rules of one table. */
export const restoreInput = (table: string, lines: string[]): string => `*${table}\n${lines.join('\n')}\nCOMMIT\n`;

/** gc: the port claims of dead containers, then every rule of ours whose container is not alive. */
function gc(b: Bridge, alive: () => GcAlive, runner: GcRunner): string[] {
  const saved = runner.run(b.bin('iptables-save'), []); // listed first: see Firewall.gc
  const ids = alive().ids;
  const claims = freeDeadAddresses(b.paths.claims, ids, Date.now(), isClaim).map((c) => `claim ${c}`);
  const holders = new Set([...ids, ...readAllocations(b.paths.claims, isClaim).map((c) => c.id)]);
  if (saved.code !== 0) return claims;
  const removed: string[] = [];
  const restore = b.bin('iptables-restore');
  for (const [table, lines] of staleRules(saved.out, holders)) {
    if (runner.run(restore, ['-w', '-n'], restoreInput(table, lines)).code !== 0)
      for (const l of lines) runner.run(restore, ['-w', '-n'], restoreInput(table, [l])); // all or nothing: one by one
    removed.push(...lines);
  }
  return [...claims, ...removed];
}

/** The leak check: our rules of containers, port claims, and our chains once the bridge is gone. */
function leftovers(paths: NetPaths, runner: GcRunner, bin: (name: string) => string, sys: string): string[] {
  const out: string[] = [];
  const saved = runner.run(bin('iptables-save'), []);
  if (saved.code === 0) {
    const rules = [...staleRules(saved.out, new Set()).values()].flat();
    if (rules.length) out.push(`iptables rules: ${rules.map((r) => r.slice(3)).join('; ')}`);
    const own = saved.out.split('\n').filter((l) => l.startsWith(`:${CHAIN_PREFIX}`));
    if (own.length && !existsSync(join(sys, 'tsc0')))
      out.push(`iptables chains without the bridge: ${own.map((l) => l.slice(1).split(' ')[0]).join(' ')}`);
  }
  let claims: string[] = [];
  try {
    claims = readdirSync(paths.claims).filter(isClaim);
  } catch {
    /* none */
  }
  const owners = readAllocations(paths.claims, isClaim);
  if (claims.length) out.push(`ports claimed: ${owners.map((c) => `${c.address} (${c.id.slice(0, 12)})`).join(' ')}`);
  return out;
}

/** doctor: every chain and jump, and one DNAT rule (the matches and targets the containers' rules use). */
function probe(b: Bridge): string {
  const m: PortMapping = { proto: 'tcp', host: { from: 1, to: 1 }, container: 1 };
  const rule = dnatRule(m, '1', 'tscontain:doctor', `${formatIPv4(b.gateway + 1)}:1`);
  const lines = [...setupLines(b), command(sh`${ipt(b, 'nat')} -A ${DNAT_CHAIN}`, rule)];
  return lines.map((l) => l.text).join('\n');
}

export const IPTABLES: Firewall = {
  name: 'iptables',
  what: 'the iptables chains TSCONTAIN-*',
  man: 'iptables(8) -N -A -C -I, iptables-extensions(8) MASQUERADE conntrack addrtype',
  setupLines,
  pruneLines,
  publishStep,
  unpublishLines,
  unpublishMan: 'iptables-save(8), iptables-restore(8) --noflush',
  gc,
  leftovers,
  probe,
};
