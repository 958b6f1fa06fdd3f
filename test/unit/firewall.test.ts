// The firewall behind the bridge as data, for both backends: which one a host gets, the rules each
// makes (a table: behaviour -> nft line -> iptables line), the publish and exit sh run by dash
// against fake iptables programs in a temp dir, gc and the leak check on iptables-save text (no root).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { oneLine } from './helpers.js';
import { type Bridge, bridge, bridgePruneStep, bridgeSetupStep } from '../../src/kernel/network/bridge.js';
import { networkChecks } from '../../src/kernel/network/doctor.js';
import { chooseFirewall, firewall } from '../../src/kernel/network/firewall.js';
import { gcNetwork, leftovers } from '../../src/kernel/network/gc.js';
import { hostBridge, planNetwork } from '../../src/kernel/network/index.js';
import { chains, dnatRule, staleRules } from '../../src/kernel/network/iptables.js';
import { parseCidr } from '../../src/kernel/network/ipv4.js';
import { ruleset } from '../../src/kernel/network/nft.js';
import { parseNetworkOptions } from '../../src/kernel/network/options.js';
import { readNetFacts } from '../../src/kernel/network/probe.js';
import { parsePublish } from '../../src/kernel/network/publish.js';
import { netPaths } from '../../src/kernel/network/store.js';
import type { Step } from '../../src/plan/step.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';

test.after.always(removeTempDirs);

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const roots = { lib: '/var/lib/tscontain-x', run: '/run/tscontain-x' };
const text = (steps: Step[]) => steps.flatMap((s) => s.lines.map((l) => l.text)).join('\n');

test('the backend: nft where installed, else iptables; TSCONTAIN_FIREWALL forces one; neither says so', (t) => {
  const rows: [string | undefined, string[], string | undefined, string][] = [
    [undefined, ['nft', 'iptables'], 'nft', 'nft'],
    [undefined, ['nft'], 'nft', 'nft'],
    [undefined, ['iptables'], 'iptables', 'iptables (nft(8) is not installed)'],
    [undefined, [], undefined, 'neither nft(8) nor iptables(8) is installed'],
    ['', ['nft', 'iptables'], 'nft', 'nft'],
    ['iptables', ['nft', 'iptables'], 'iptables', 'iptables (TSCONTAIN_FIREWALL=iptables)'],
    ['nft', ['nft', 'iptables'], 'nft', 'nft (TSCONTAIN_FIREWALL=nft)'],
    ['nft', ['iptables'], undefined, 'TSCONTAIN_FIREWALL=nft, but nft is not installed'],
  ];
  for (const [forced, programs, use, why] of rows) {
    const f = chooseFirewall(forced, (p) => programs.includes(p));
    t.deepEqual([f.use, f.why, f.installed], [use, why, programs], `${forced} ${programs}`);
  }
  t.is(
    oneLine(() => chooseFirewall('ipfw', () => true)),
    'TSCONTAIN_FIREWALL=ipfw is not a firewall tscontain knows',
  );
});

test('host facts carry the choice; the plan follows it, and refuses the bridge without any firewall', (t) => {
  const dir = tempDir('tscontain-facts-');
  const facts = (forced: string | undefined, programs: string[]) =>
    readNetFacts({
      proc: dir,
      etc: dir,
      subnetFile: join(dir, 'subnet'),
      forceFirewall: forced,
      has: (p) => programs.includes(p),
    });
  t.is(facts(undefined, ['nft', 'iptables']).firewall?.use, 'nft');
  t.is(facts('iptables', ['nft', 'iptables']).firewall?.use, 'iptables');
  const request = (f: ReturnType<typeof facts>, publish: string[] = []) => ({
    id: A,
    hostname: 'h',
    net: parseNetworkOptions({ publish }),
    facts: f,
    roots,
  });
  const ipt = facts('iptables', ['nft', 'iptables']);
  const b = hostBridge(request(ipt));
  t.deepEqual([b.firewall, b.firewalls], ['iptables', ['nft', 'iptables']]);
  const p = planNetwork(request(ipt, ['8080:80']));
  t.regex(p.host[0].title, /and the iptables chains TSCONTAIN-\*, once$/);
  t.regex(p.host[0].man, /iptables\(8\)/);
  t.regex(p.host[2].man, /iptables-extensions\(8\) DNAT/);
  t.regex(p.exit[0].man, /iptables-restore\(8\)/);
  t.notRegex(text([...p.host, ...p.exit]), /\bnft\b/);
  const n = planNetwork(request(facts(undefined, ['nft']), ['8080:80']));
  t.regex(n.host[0].title, /and the nft table ip tscontain, once$/);
  t.notRegex(text([...n.host, ...n.exit]), /iptables/);
  t.is(
    oneLine(() => planNetwork(request(facts(undefined, [])))),
    '--network bridge needs a firewall program: neither nft(8) nor iptables(8) is installed',
  );
  // --network none needs no firewall
  t.notThrows(() => planNetwork({ ...request(facts(undefined, [])), net: parseNetworkOptions({ network: 'none' }) }));
});

/** One behaviour of the bridge's rules, in each backend: the nft line (in ruleset) and the iptables rule. */
const SAME: [string, string, string][] = [
  [
    'masquerade what leaves the subnet',
    'ip saddr 10.9.0.0/16 oifname != "tsc0" masquerade',
    'nat TSCONTAIN-POSTROUTING -s 10.9.0.0/16 ! -o tsc0 -j MASQUERADE',
  ],
  [
    'masquerade 127.0.0.1 into the bridge',
    'oifname "tsc0" ip saddr 127.0.0.0/8 masquerade',
    'nat TSCONTAIN-POSTROUTING -s 127.0.0.0/8 -o tsc0 -j MASQUERADE',
  ],
  [
    'hairpin',
    'oifname "tsc0" ip saddr 10.9.0.0/16 ct status dnat masquerade',
    'nat TSCONTAIN-POSTROUTING -s 10.9.0.0/16 -o tsc0 -m conntrack --ctstate DNAT -j MASQUERADE',
  ],
  [
    'the 127.0.0.0/8 guard (CVE-2020-8558)',
    'iifname "tsc0" ip daddr 127.0.0.0/8 drop',
    'raw TSCONTAIN-GUARD -i tsc0 -d 127.0.0.0/8 -j DROP',
  ],
  [
    'replies into the bridge',
    'oifname "tsc0" ct state established,related accept',
    'filter TSCONTAIN-FORWARD -o tsc0 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
  ],
  [
    'published ports into the bridge',
    'oifname "tsc0" ct status dnat accept',
    'filter TSCONTAIN-FORWARD -o tsc0 -m conntrack --ctstate DNAT -j RETURN',
  ],
  [
    'container to container',
    'oifname "tsc0" iifname "tsc0" accept',
    'filter TSCONTAIN-FORWARD -i tsc0 -o tsc0 -j RETURN',
  ],
  ['nothing else into the bridge', 'oifname "tsc0" drop', 'filter TSCONTAIN-FORWARD -o tsc0 -j DROP'],
];

test('the same rules in both backends: nft table lines and iptables chain rules', (t) => {
  const b = bridge(parseCidr('10.9.0.0/16')!, netPaths(roots));
  const nft = ruleset(b)
    .split('\n')
    .map((l) => l.trim());
  const ipt = chains(b).flatMap((c) => c.rules.map((r) => `${c.table} ${c.name} ${r.join(' ')}`));
  for (const [what, n, i] of SAME) {
    t.true(nft.includes(n), `nft: ${what}`);
    t.true(ipt.includes(i), `iptables: ${what}`);
  }
  t.is(ipt.length, SAME.length, 'no iptables rule without its nft twin');
  t.deepEqual(
    chains(b).map((c) => [c.table, c.name, c.from.map((f) => [f.chain, ...f.match].join(' '))]),
    [
      ['raw', 'TSCONTAIN-GUARD', ['PREROUTING']],
      ['nat', 'TSCONTAIN-DNAT', ['PREROUTING -m addrtype --dst-type LOCAL', 'OUTPUT -m addrtype --dst-type LOCAL']],
      ['nat', 'TSCONTAIN-POSTROUTING', ['POSTROUTING']],
      ['filter', 'TSCONTAIN-FORWARD', ['FORWARD']],
    ],
    'one jump from each built-in chain; published ports only to local addresses, as fib daddr type local',
  );
  t.true(chains(b).every((c) => c.name.startsWith('TSCONTAIN-')));
});

test('iptables setup: each chain made unless there, its rules made again, each jump inserted once (-C, -I)', (t) => {
  const b = bridge(parseCidr('10.9.0.0/16')!, netPaths({ ...roots, net: '/n' }), (n) => n, 'iptables');
  const lines = firewall('iptables')
    .setupLines(b)
    .map((l) => l.text);
  t.deepEqual(lines, [
    'iptables -w -t raw -S TSCONTAIN-GUARD >/dev/null 2>&1 ||',
    '  iptables -w -t raw -N TSCONTAIN-GUARD',
    'iptables -w -t raw -F TSCONTAIN-GUARD',
    'iptables -w -t raw -A TSCONTAIN-GUARD -i tsc0 -d 127.0.0.0/8 -j DROP',
    'iptables -w -t nat -S TSCONTAIN-DNAT >/dev/null 2>&1 ||',
    '  iptables -w -t nat -N TSCONTAIN-DNAT',
    'iptables -w -t nat -S TSCONTAIN-POSTROUTING >/dev/null 2>&1 ||',
    '  iptables -w -t nat -N TSCONTAIN-POSTROUTING',
    'iptables -w -t nat -F TSCONTAIN-POSTROUTING',
    'iptables -w -t nat -A TSCONTAIN-POSTROUTING -s 10.9.0.0/16 ! -o tsc0 -j MASQUERADE',
    'iptables -w -t nat -A TSCONTAIN-POSTROUTING -s 127.0.0.0/8 -o tsc0 -j MASQUERADE',
    'iptables -w -t nat -A TSCONTAIN-POSTROUTING -s 10.9.0.0/16 -o tsc0 -m conntrack --ctstate DNAT -j MASQUERADE',
    'iptables -w -t filter -S TSCONTAIN-FORWARD >/dev/null 2>&1 ||',
    '  iptables -w -t filter -N TSCONTAIN-FORWARD',
    'iptables -w -t filter -F TSCONTAIN-FORWARD',
    'iptables -w -t filter -A TSCONTAIN-FORWARD -o tsc0 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
    'iptables -w -t filter -A TSCONTAIN-FORWARD -o tsc0 -m conntrack --ctstate DNAT -j RETURN',
    'iptables -w -t filter -A TSCONTAIN-FORWARD -i tsc0 -o tsc0 -j RETURN',
    'iptables -w -t filter -A TSCONTAIN-FORWARD -o tsc0 -j DROP',
    '[ ! -e /n/forwarding-was-off ] ||',
    '  iptables -w -t filter -A TSCONTAIN-FORWARD ! -i tsc0 ! -o tsc0 -j DROP',
    'iptables -w -t raw -C PREROUTING -j TSCONTAIN-GUARD 2>/dev/null ||',
    '  iptables -w -t raw -I PREROUTING -j TSCONTAIN-GUARD',
    'iptables -w -t nat -C PREROUTING -m addrtype --dst-type LOCAL -j TSCONTAIN-DNAT 2>/dev/null ||',
    '  iptables -w -t nat -I PREROUTING -m addrtype --dst-type LOCAL -j TSCONTAIN-DNAT',
    'iptables -w -t nat -C OUTPUT -m addrtype --dst-type LOCAL -j TSCONTAIN-DNAT 2>/dev/null ||',
    '  iptables -w -t nat -I OUTPUT -m addrtype --dst-type LOCAL -j TSCONTAIN-DNAT',
    'iptables -w -t nat -C POSTROUTING -j TSCONTAIN-POSTROUTING 2>/dev/null ||',
    '  iptables -w -t nat -I POSTROUTING -j TSCONTAIN-POSTROUTING',
    'iptables -w -t filter -C FORWARD -j TSCONTAIN-FORWARD 2>/dev/null ||',
    '  iptables -w -t filter -I FORWARD -j TSCONTAIN-FORWARD',
  ]);
  // the nft backend makes its table the same way, once
  const nft = firewall('nft').setupLines({ ...b, firewall: 'nft' });
  t.regex(nft[0].text, /^if ! nft list table ip tscontain >\/dev\/null 2>&1; then$/);
});

test('the bridge step: a mark per firewall says its rules were made; prune removes those of every firewall installed', (t) => {
  const p = netPaths({ ...roots, net: '/n' });
  const setup = (fw: 'nft' | 'iptables') => text([bridgeSetupStep(bridge(parseCidr('10.9.0.0/16')!, p, (n) => n, fw))]);
  for (const fw of ['nft', 'iptables'] as const) {
    t.true(setup(fw).startsWith(`tsc_net_ready=; [ ! -e /n/made-${fw} ] ||\n  read -r tsc_net_ready`), fw);
    t.regex(setup(fw), new RegExp(`echo 1 > /proc/sys/net/ipv4/conf/tsc0/route_localnet\\n +: > /n/made-${fw}\\n`));
  }
  t.notRegex(setup('iptables'), /\bnft\b/);
  const both = bridgePruneStep(bridge(parseCidr('10.9.0.0/16')!, p, (n) => n, 'nft', ['nft', 'iptables']));
  t.is(
    both.title,
    'Remove the bridge tsc0 and the nft table ip tscontain and the iptables chains TSCONTAIN-* if no container uses them',
  );
  const prune = text([both]);
  t.regex(prune, /nft delete table ip tscontain/);
  t.regex(prune, /if iptables-save 2>\/dev\/null \| grep -q \^:TSCONTAIN-; then/);
  t.regex(
    prune,
    /while iptables -w -t nat -C OUTPUT -m addrtype --dst-type LOCAL -j TSCONTAIN-DNAT 2>\/dev\/null; do\n +iptables -w -t nat -D OUTPUT/,
  );
  t.regex(prune, /iptables -w -t filter -F TSCONTAIN-FORWARD\n +iptables -w -t filter -X TSCONTAIN-FORWARD/);
  t.regex(prune, /rm -f \/n\/made-nft \/n\/made-iptables/);
  const none = bridgePruneStep(bridge(parseCidr('10.9.0.0/16')!, p, (n) => n, 'nft', []));
  t.is(none.title, 'Remove the bridge tsc0 if no container uses them');
});

test('a published port: the DNAT rule (iptables) and the map element (nft), from -p', (t) => {
  const rows: [string, string, RegExp][] = [
    [
      '8080:80',
      `-p tcp --dport 8080 -m comment --comment tscontain:${A} -j DNAT --to-destination 10.9.0.2:80`,
      /add element ip tscontain tcp_pub \{ %s : %s \. %s \}/,
    ],
    [
      '127.0.0.1:5353:53/udp',
      `-p udp -d 127.0.0.1 --dport 5353 -m comment --comment tscontain:${A} -j DNAT --to-destination 10.9.0.2:53`,
      /add element ip tscontain udp_pub_ip \{ %s \. %s : %s \. %s \}/,
    ],
  ];
  for (const [p, rule, element] of rows) {
    const [m] = parsePublish(p);
    t.is(dnatRule(m, String(m.host.from), `tscontain:${A}`, `10.9.0.2:${m.container}`).join(' '), rule, p);
    const nft = bridge(parseCidr('10.9.0.0/16')!, netPaths(roots));
    t.regex(text([firewall('nft').publishStep(nft, [m])!]).replace(/'\\\n'/g, ''), element, p); // unfolded
  }
});

/** Fake iptables programs in a temp dir: iptables logs its arguments, iptables-save prints save.txt, -restore logs its input. */
function fakeHost() {
  const dir = tempDir('tscontain-ipt-');
  mkdirSync(join(dir, 'bin'));
  const prog = (name: string, body: string) =>
    writeFileSync(join(dir, 'bin', name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  prog('iptables', `echo "$*" >> ${dir}/iptables.log`);
  prog('iptables-save', `cat ${dir}/save.txt`);
  prog('iptables-restore', `echo "$*" >> ${dir}/restore.log; cat >> ${dir}/restore.log`);
  writeFileSync(join(dir, 'save.txt'), '');
  const b = bridge(
    parseCidr('10.9.0.0/16')!,
    netPaths({ lib: dir, run: dir, net: join(dir, 'net') }),
    (n) => join(dir, 'bin', n),
    'iptables',
  );
  const log = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
  return { dir, b, log };
}

function runSteps(h: { dir: string; b: Bridge }, id: string, ip: string, lines: string) {
  const run = join(h.dir, 'run', id.slice(0, 4));
  mkdirSync(run, { recursive: true });
  const script = `set -eu\ntsc_id=${id}; tsc_run=${run}; tsc_net_ip=${ip}\n${lines}\n`;
  return { ...spawnSync('dash', ['-c', script], { encoding: 'utf8' }), run };
}
const publishLines = (h: { b: Bridge }, ps: string[]) =>
  text([firewall('iptables').publishStep(h.b, ps.flatMap(parsePublish))!]);
const claims = (h: { b: Bridge }) => readdirSync(h.b.paths.claims).sort();

test('iptables publish: a claim file per host port taken exclusively; a port taken fails alone, leaving nothing', (t) => {
  const h = fakeHost();
  const a = runSteps(h, A, '10.9.0.2', publishLines(h, ['8080:80', '9000:90']));
  t.is(a.status, 0, a.stderr);
  t.deepEqual(claims(h), ['tcp-8080', 'tcp-9000']);
  t.is(readFileSync(join(h.b.paths.claims, 'tcp-8080'), 'utf8'), `${A} ${a.run}\n`);
  t.is(readFileSync(join(a.run, 'ports'), 'utf8'), 'tcp 80 0.0.0.0 8080\ntcp 90 0.0.0.0 9000\n');
  t.is(
    h.log('iptables.log'),
    `-w -t nat -A TSCONTAIN-DNAT -p tcp --dport 8080 -m comment --comment tscontain:${A} ` +
      '-j DNAT --to-destination 10.9.0.2:80\n' +
      `-w -t nat -A TSCONTAIN-DNAT -p tcp --dport 9000 -m comment --comment tscontain:${A} ` +
      '-j DNAT --to-destination 10.9.0.2:90\n',
  );
  const before = h.log('iptables.log');
  const b = runSteps(h, B, '10.9.0.3', publishLines(h, ['7000:70', '8080:80']));
  t.not(b.status, 0);
  t.is(b.stderr, 'tscontain: host port 8080/tcp is already published by another container\n');
  t.deepEqual(claims(h), ['tcp-8080', 'tcp-9000'], '7000 given back at once');
  t.is(h.log('iptables.log'), before, 'no rule made');
  t.false(existsSync(join(b.run, 'ports')));
  // a port of a range: the first whose claim succeeds
  const r = runSteps(h, B, '10.9.0.3', publishLines(h, ['127.0.0.1:8080-8081:80']));
  t.is(r.status, 0, r.stderr);
  t.is(readFileSync(join(r.run, 'ports'), 'utf8'), 'tcp 80 127.0.0.1 8081\n');
  t.regex(h.log('iptables.log'), /-A TSCONTAIN-DNAT -p tcp -d 127\.0\.0\.1 --dport 8081 .* 10\.9\.0\.3:80\n$/);
  const full = runSteps(h, B, '10.9.0.3', publishLines(h, ['127.0.0.1:8080-8081:80']));
  t.is(full.stderr, 'tscontain: no free host port in 8080-8081 for 80/tcp\n');
});

const SAVE = `# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:PREROUTING ACCEPT [0:0]
:TSCONTAIN-DNAT - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j TSCONTAIN-DNAT
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A TSCONTAIN-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "tscontain:${A}" -j DNAT --to-destination 10.9.0.2:80
-A TSCONTAIN-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 53 -m comment --comment "tscontain:${B}" -j DNAT --to-destination 10.9.0.3:53
-A TSCONTAIN-DNAT -p tcp -m tcp --dport 9000 -m comment --comment "tscontain:${A}" -j DNAT --to-destination 10.9.0.2:90
COMMIT
*filter
:TSCONTAIN-FORWARD - [0:0]
-A FORWARD -j TSCONTAIN-FORWARD
-A FORWARD -m comment --comment "tscontain:${A}" -j ACCEPT
COMMIT
`;

test("iptables exit: the container's own rules go (found by their comment, deleted by iptables-restore), and its claims", (t) => {
  const h = fakeHost();
  runSteps(h, A, '10.9.0.2', publishLines(h, ['8080:80', '9000:90']));
  runSteps(h, B, '10.9.0.3', publishLines(h, ['127.0.0.1:53:53/udp']));
  writeFileSync(join(h.dir, 'save.txt'), SAVE);
  const exit = text([{ title: 'exit', man: '', lines: firewall('iptables').unpublishLines(h.b) }]);
  const r = runSteps(h, A, '10.9.0.2', exit);
  t.is(r.status, 0, r.stderr);
  t.is(
    h.log('restore.log'),
    '-w -n\n*nat\n' +
      `-D TSCONTAIN-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "tscontain:${A}" -j DNAT --to-destination 10.9.0.2:80\n` +
      `-D TSCONTAIN-DNAT -p tcp -m tcp --dport 9000 -m comment --comment "tscontain:${A}" -j DNAT --to-destination 10.9.0.2:90\n` +
      'COMMIT\n',
  );
  t.deepEqual(claims(h), ['udp-53'], "B's claim stays");
  t.false(existsSync(join(r.run, 'ports')));
  t.is(runSteps(h, A, '10.9.0.2', exit).status, 0, 'twice: nothing left to do');
});

test('iptables gc and leak check: rules and claims of containers not alive, chains left without the bridge', (t) => {
  t.deepEqual(
    [...staleRules(SAVE, new Set([B]))],
    [
      [
        'nat',
        [
          `-D TSCONTAIN-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "tscontain:${A}" -j DNAT --to-destination 10.9.0.2:80`,
          `-D TSCONTAIN-DNAT -p tcp -m tcp --dport 9000 -m comment --comment "tscontain:${A}" -j DNAT --to-destination 10.9.0.2:90`,
        ],
      ],
    ],
    'only our chains: a rule of the FORWARD chain with such a comment is not ours',
  );
  t.deepEqual([...staleRules(SAVE, new Set([A, B]))], []);

  const h = fakeHost();
  mkdirSync(h.b.paths.claims, { recursive: true });
  writeFileSync(join(h.b.paths.claims, 'tcp-8080'), `${A} /nonexistent/a\n`);
  writeFileSync(join(h.b.paths.claims, 'udp-53'), `${B} /nonexistent/b\n`);
  writeFileSync(join(h.b.paths.claims, 'tcp-1'), ''); // being taken right now
  writeFileSync(join(h.b.paths.claims, 'tcp-2'), '');
  utimesSync(join(h.b.paths.claims, 'tcp-2'), new Date(0), new Date(0)); // left empty by a crash long ago
  const calls: string[] = [];
  const runner = {
    run: (cmd: string, args: string[], input?: string) => {
      calls.push([cmd.split('/').pop(), ...args].join(' ') + (input ? `\n${input}` : ''));
      return { code: 0, out: cmd.endsWith('iptables-save') ? SAVE : '' };
    },
  };
  const res = gcNetwork({ ...h.b, firewalls: ['iptables'] }, new Set([B]), runner, join(h.dir, 'sys'));
  t.deepEqual(res.elements.slice(0, 2).sort(), ['claim tcp-2', 'claim tcp-8080']);
  t.is(res.elements.length, 4);
  t.deepEqual(claims(h), ['tcp-1', 'udp-53']);
  t.deepEqual(calls, ['iptables-save', `iptables-restore -w -n\n*nat\n${res.elements.slice(2).join('\n')}\nCOMMIT\n`]);

  const sys = join(h.dir, 'sys');
  mkdirSync(sys, { recursive: true });
  const left = leftovers(h.b.paths, runner, (n) => n, sys);
  t.deepEqual(left, [
    `iptables rules: TSCONTAIN-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "tscontain:${A}" -j DNAT ` +
      `--to-destination 10.9.0.2:80; TSCONTAIN-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 53 -m comment --comment ` +
      `"tscontain:${B}" -j DNAT --to-destination 10.9.0.3:53; TSCONTAIN-DNAT -p tcp -m tcp --dport 9000 -m comment ` +
      `--comment "tscontain:${A}" -j DNAT --to-destination 10.9.0.2:90`,
    'iptables chains without the bridge: TSCONTAIN-DNAT TSCONTAIN-FORWARD',
    `ports claimed: tcp-1 () udp-53 (${B.slice(0, 12)})`,
  ]);
  mkdirSync(join(sys, 'tsc0'));
  t.false(
    leftovers(h.b.paths, runner, (n) => n, sys).some((l) => l.includes('chains')),
    'empty chains may stay with the bridge',
  );
});

test('doctor: the firewall row says which backend; it fails only without nft and iptables; the probe tries it', (t) => {
  const proc = tempDir('tscontain-proc-');
  mkdirSync(join(proc, 'sys/net/ipv4'), { recursive: true });
  writeFileSync(join(proc, 'sys/net/ipv4/ip_forward'), '1\n');
  const rows: [string[], string | undefined, string, RegExp][] = [
    [['nft', 'iptables'], undefined, 'ok', /^nft: the nft table ip tscontain$/],
    [['iptables'], undefined, 'ok', /^iptables \(nft\(8\) is not installed\): the iptables chains TSCONTAIN-\*$/],
    [['nft', 'iptables'], 'iptables', 'ok', /^iptables \(TSCONTAIN_FIREWALL=iptables\)/],
    [[], undefined, 'fail', /^neither nft\(8\) nor iptables\(8\) is installed/],
    [['nft'], 'iptables', 'fail', /^TSCONTAIN_FIREWALL=iptables, but iptables is not installed/],
    [['nft'], 'pf', 'fail', /^TSCONTAIN_FIREWALL=pf is not a firewall tscontain knows/],
  ];
  for (const [fws, forced, status, detail] of rows) {
    let probed = '';
    const cs = networkChecks(
      {
        proc,
        cgroup: proc,
        uid: 0,
        which: (c) =>
          ['nft', 'iptables', 'iptables-save', 'iptables-restore'].includes(c) && !fws.some((f) => c.startsWith(f))
            ? undefined
            : `/usr/sbin/${c}`,
        probe: (cmd, args) => {
          probed = [cmd, ...args].join(' ');
          return { code: 0, out: '' };
        },
      },
      forced,
    );
    const row = cs.find((c) => c.what === 'firewall')!;
    t.deepEqual([row.status, detail.test(row.detail)], [status, true], `${fws} ${forced}: ${row.detail}`);
    const use = status === 'ok' ? (forced ?? fws[0]) : undefined;
    t.is(cs.find((c) => c.what === 'network programs')!.status, 'ok');
    if (use === 'iptables') {
      t.regex(probed, /iptables -w -t nat -N TSCONTAIN-DNAT/);
      t.regex(
        probed.replace(/ \\\n +/g, ' '), // one rule, on as many lines as fit
        /iptables -w -t nat -A TSCONTAIN-DNAT -p tcp --dport 1 .*-j DNAT --to-destination 172\.31\.0\.2:1/,
      );
      t.is(cs.find((c) => c.what === 'bridge, veth, iptables')?.status, 'ok');
    } else if (use === 'nft') t.regex(probed, /table ip tscontain \{/);
    else t.is(probed, '', 'nothing to try');
  }
});

test('iptables plan lines fit in the plan (120 columns with the step indentation)', (t) => {
  const facts = {
    routes: [],
    resolv: '',
    firewall: { use: 'iptables' as const, installed: ['iptables' as const], why: '' },
  };
  const p = planNetwork({
    id: A,
    hostname: 'h',
    net: parseNetworkOptions({ publish: ['127.0.0.1:65000-65535:65535/udp', '8080:80', '192.168.100.100:80:80'] }),
    facts,
    roots,
    bin: (n) => `/usr/local/sbin/${n}`,
  });
  const wide = text([...p.host, ...p.exit])
    .split('\n')
    .filter((l) => l.length > 116);
  t.deepEqual(wide, []);
});
