// Networking as data: parsing (-p, --dns, --add-host, routes, resolv.conf), the subnet choice,
// the nft ruleset text, and the address allocation sh run with dash in a temp dir (no root).
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TscError } from '../../src/errors.js';
import { oneLine } from './helpers.js';
import { inert, lit } from '../../src/plan/sh.js';
import type { Step } from '../../src/plan/step.js';
import { bridge } from '../../src/kernel/network/bridge.js';
import { ruleset, staleElements } from '../../src/kernel/network/nft.js';
import { networkChecks } from '../../src/kernel/network/doctor.js';
import { gcNetwork, leftovers, staleLinks } from '../../src/kernel/network/gc.js';
import { etcFilesStep, hostsFile, parseAddHost } from '../../src/kernel/network/hosts.js';
import { hostBridge, planNetwork } from '../../src/kernel/network/index.js';
import { allocateStep, freeDeadAddresses, freeLines } from '../../src/kernel/network/ipam.js';
import { formatIPv4, isIPv6, isLoopback, overlaps, parseCidr, parseIPv4 } from '../../src/kernel/network/ipv4.js';
import { findPid1Lines, recordPid1Lines, sharedEtcBinds } from '../../src/kernel/network/join.js';
import { mountStep } from '../../src/kernel/rootfs.js';
import { parseNetworkMode, parseNetworkOptions } from '../../src/kernel/network/options.js';
import { parseProcNetSockets } from '../../src/kernel/network/probe.js';
import {
  candidates,
  checkMappings,
  formatPort,
  formatPsPorts,
  parsePortsFile,
  parsePublish,
  publishAll,
} from '../../src/kernel/network/publish.js';
import { parseDns, resolvConf } from '../../src/kernel/network/resolv.js';
import { netPaths, vethName } from '../../src/kernel/network/store.js';
import { chooseSubnet, parseProcNetRoute, type Route } from '../../src/kernel/network/subnet.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

test.after.always(removeTempDirs);

const route = (cidr: string, dev = 'eth0'): Route => ({ dst: parseCidr(cidr)!, dev });
const roots = { lib: '/var/lib/tscontain-x', run: '/run/tscontain-x' };

test('IPv4 parsing, printing, prefixes and overlap', (t) => {
  t.is(parseIPv4('172.17.0.1'), 0xac110001);
  for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', '1.2.3.4 ', 'a.b.c.d', '']) t.is(parseIPv4(bad), undefined, bad);
  t.is(formatIPv4(0xac110001), '172.17.0.1');
  t.deepEqual(parseCidr('10.0.0.0/8'), { base: 0x0a000000, len: 8 });
  t.is(parseCidr('10.0.0.1/8'), undefined, 'host bits set');
  t.true(overlaps(parseCidr('172.16.0.0/12')!, parseCidr('172.17.0.0/16')!));
  t.false(overlaps(parseCidr('172.18.0.0/16')!, parseCidr('172.17.0.0/16')!));
  t.true(isLoopback('127.0.0.53') && isLoopback('::1') && isLoopback('::ffff:127.0.0.1'));
  t.false(isLoopback('10.255.255.53'));
  t.true(isIPv6('2001:db8::1') && isIPv6('::1') && isIPv6('::ffff:192.0.2.1'));
  t.false(isIPv6('2001:db8::1::2') || isIPv6('not-an-ip') || isIPv6('1.2.3.4'));
});

test('ports host programs hold, from /proc/net/tcp and udp', (t) => {
  const tcp =
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n' +
    '   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n' +
    '   1: 0100007F:0050 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n';
  t.deepEqual([...parseProcNetSockets(tcp, '0A')], [8080], 'listening only, not a connection');
});

test("routes from /proc/net/route (this machine kind's format)", (t) => {
  const text =
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
    'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n' +
    'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' +
    'docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n';
  t.deepEqual(
    parseProcNetRoute(text).map((r) => `${r.dev} ${formatIPv4(r.dst.base)}/${r.dst.len}`),
    ['eth0 0.0.0.0/0', 'eth0 192.0.2.0/24', 'docker0 172.17.0.0/16'],
  );
});

test('subnet: the first private /16 no route overlaps, nor a resolver; a remembered one is checked', (t) => {
  t.is(
    formatIPv4(chooseSubnet([route('0.0.0.0/0'), route('192.0.2.0/24')]).base),
    '172.17.0.0',
    'the default route overlaps nothing',
  );
  t.is(formatIPv4(chooseSubnet([route('172.17.0.0/16', 'docker0'), route('172.18.5.0/24')]).base), '172.19.0.0');
  t.is(formatIPv4(chooseSubnet([route('172.16.0.0/12')]).base), '10.0.0.0');
  t.is(
    formatIPv4(chooseSubnet([route('172.16.0.0/12')], [parseIPv4('10.0.0.53')!]).base),
    '10.1.0.0',
    'the resolver stays reachable',
  );
  t.throws(() => chooseSubnet([route('172.16.0.0/12'), route('10.0.0.0/8'), route('192.168.0.0/16')]), {
    instanceOf: TscError,
  });
  const facts = { routes: [route('172.17.0.0/16', 'wg0')], resolv: '' };
  t.regex(
    oneLine(() =>
      hostBridge({ facts: { ...facts, remembered: '172.17.0.0/16' }, roots, net: parseNetworkOptions({}) }),
    ),
    /overlaps the host route 172\.17\.0\.0\/16 on wg0/,
  );
  const own = { routes: [route('172.17.0.0/16', 'tsc0')], resolv: '', remembered: '172.17.0.0/16' };
  t.is(
    hostBridge({ facts: own, roots, net: parseNetworkOptions({}) }).subnet.base,
    parseIPv4('172.17.0.0')!,
    'its own bridge route is no collision',
  );
  t.regex(
    oneLine(() => hostBridge({ facts: { ...own, remembered: '172.20.0.0/16' }, roots, net: parseNetworkOptions({}) })),
    /tsc0 has 172\.17\.0\.0\/16, but this store uses 172\.20\.0\.0\/16/,
  );
  t.regex(
    oneLine(() =>
      hostBridge({ facts: { routes: [], resolv: '', remembered: 'garbage' }, roots, net: parseNetworkOptions({}) }),
    ),
    /holds "garbage"/,
  );
});

test('-p: forms, ranges, protocols; bad input is one line', (t) => {
  t.deepEqual(parsePublish('8080:80'), [
    { proto: 'tcp', hostIp: undefined, host: { from: 8080, to: 8080 }, container: 80 },
  ]);
  t.deepEqual(parsePublish('127.0.0.1:5353:53/udp'), [
    { proto: 'udp', hostIp: '127.0.0.1', host: { from: 5353, to: 5353 }, container: 53 },
  ]);
  t.deepEqual(parsePublish('0.0.0.0:8080:80')[0].hostIp, undefined, '0.0.0.0 is every address');
  t.deepEqual(
    parsePublish('8000-8001:80-81').map((m) => `${m.host.from}->${m.container}`),
    ['8000->80', '8001->81'],
  );
  t.deepEqual(parsePublish('8000-8010:80')[0].host, { from: 8000, to: 8010 }, 'one free port of the range');
  t.deepEqual(parsePublish('80')[0].host, { from: 32768, to: 60999 });
  t.deepEqual(parsePublish('127.0.0.1::80')[0], {
    proto: 'tcp',
    hostIp: '127.0.0.1',
    host: { from: 32768, to: 60999 },
    container: 80,
  });
  const bad: [string, RegExp][] = [
    ['70000:80', /^invalid -p "70000:80": port 70000 is out of range$/],
    ['abc', /^invalid -p "abc": "abc" is not a port or a port range$/],
    ['0:80', /port 0 is out of range/],
    ['8080:80/sctp', /protocol "sctp" is not tcp or udp/],
    ['8080-8081:80-82', /differ in length/],
    ['9-8:80', /ends before it starts/],
    ['300.1.1.1:80:80', /not an IPv4 address/],
    ['[::1]:80:80', /IPv6/],
    ['1:2:3:4', /^invalid -p "1:2:3:4"$/],
    [':80', /^invalid -p ":80"$/],
  ];
  for (const [v, re] of bad)
    t.regex(
      oneLine(() => parsePublish(v)),
      re,
      v,
    );
});

test('-P from ExposedPorts; one container cannot give a host port twice, nor one a host program listens on', (t) => {
  t.deepEqual(
    publishAll({ '80/tcp': {}, '53/udp': {}, '9000': {}, '7/sctp': {} }).map((m) => `${m.container}/${m.proto}`),
    ['53/udp', '80/tcp', '9000/tcp'],
  );
  t.deepEqual(publishAll(undefined), []);
  t.regex(
    oneLine(() => publishAll({ 'x/tcp': {} })),
    /exposes "x\/tcp"/,
  );
  t.regex(
    oneLine(() => checkMappings([...parsePublish('8080:80'), ...parsePublish('127.0.0.1:8080:81')])),
    /host port 8080\/tcp is published twice/,
  );
  t.notThrows(
    () => checkMappings([...parsePublish('8080:80'), ...parsePublish('8080:80/udp')]),
    'tcp and udp are separate',
  );
  t.regex(
    oneLine(() => checkMappings(parsePublish('8080:80'), { tcp: new Set([8080]), udp: new Set() })),
    /in use by a program on this host/,
  );
  const m = parsePublish('8000-8004:80')[0];
  t.deepEqual(
    candidates(m, (p) => p === 8002),
    [8000, 8001, 8003, 8004],
  );
  t.is(
    candidates(
      parsePublish('80')[0],
      () => false,
      8,
      () => 0.5,
    ).length,
    8,
  );
});

test('published ports: the record file, `port` and the ps column', (t) => {
  const ports = parsePortsFile('udp 53 127.0.0.1 5353\ntcp 80 0.0.0.0 8080\ngarbage line\ntcp 443 0.0.0.0 8443\n');
  t.is(formatPort(ports), '53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n443/tcp -> 0.0.0.0:8443\n');
  t.is(formatPort(ports, '80'), '0.0.0.0:8080\n');
  t.is(formatPort(ports, '53/udp'), '127.0.0.1:5353\n');
  t.is(formatPort(ports, '53'), undefined, 'tcp by default, as docker');
  t.throws(() => formatPort(ports, 'http'), { instanceOf: TscError });
  t.is(formatPsPorts(ports), '127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp, 0.0.0.0:8443->443/tcp');
});

test("resolv.conf: loopback and IPv6 resolvers dropped, systemd-resolved's upstream, --dns, fallback said", (t) => {
  t.deepEqual(
    resolvConf({
      host:
        'nameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n' +
        'search a.test b.test\noptions edns0\n',
    }),
    {
      text:
        "# Generated by tscontain from the host's resolv.conf\n" +
        'search a.test b.test\nnameserver 192.0.2.53\noptions edns0\n',
      note: undefined,
    },
  );
  t.regex(
    resolvConf({ host: 'nameserver 127.0.0.53\n', upstream: 'nameserver 198.51.100.1\n' }).text,
    /^nameserver 198\.51\.100\.1$/m,
  );
  const fb = resolvConf({ host: 'nameserver 127.0.0.1\n' });
  t.regex(fb.text, /nameserver 8\.8\.8\.8\nnameserver 8\.8\.4\.4/);
  t.regex(fb.note!, /no resolver a container can reach \(127\.0\.0\.1\): using 8\.8\.8\.8 and 8\.8\.4\.4/);
  const own = resolvConf({
    host: 'nameserver 127.0.0.53\nsearch x.test\n',
    dns: ['192.0.2.1'],
    dnsSearch: ['.'],
    dnsOptions: ['ndots:2'],
  });
  t.is(own.text, "# Generated by tscontain from the host's resolv.conf\nnameserver 192.0.2.1\noptions ndots:2\n");
  t.is(own.note, undefined);
  t.regex(
    oneLine(() => parseDns('not-an-ip')),
    /^invalid --dns "not-an-ip": not an IP address$/,
  );
  t.is(parseDns('2001:db8::1'), '2001:db8::1');
});

test('/etc/hosts and --add-host', (t) => {
  t.deepEqual(parseAddHost('db:192.0.2.10'), { name: 'db', ip: '192.0.2.10' });
  t.deepEqual(parseAddHost('v6=2001:db8::1'), { name: 'v6', ip: '2001:db8::1' });
  t.deepEqual(parseAddHost('gw:host-gateway', '172.17.0.1'), { name: 'gw', ip: '172.17.0.1' });
  t.regex(
    oneLine(() => parseAddHost('gw:host-gateway')),
    /host-gateway needs --network bridge/,
  );
  t.regex(
    oneLine(() => parseAddHost('db:nope')),
    /"nope" is not an IP address/,
  );
  t.regex(
    oneLine(() => parseAddHost('bad name:1.2.3.4')),
    /is not a host name/,
  );
  const h = hostsFile([{ name: 'db', ip: '192.0.2.10' }], 'abc123', 'web', '172.17.0.2');
  t.true(h.startsWith('127.0.0.1\tlocalhost\n'));
  t.true(h.endsWith('192.0.2.10\tdb\n172.17.0.2\tabc123 web\n'));
});

test("--network modes and docker's conflicting options", (t) => {
  t.deepEqual(parseNetworkMode('bridge'), { kind: 'bridge' });
  t.deepEqual(parseNetworkMode('container:web'), { kind: 'container', name: 'web' });
  t.regex(
    oneLine(() => parseNetworkMode('overlay')),
    /unsupported network mode "overlay"/,
  );
  t.regex(
    oneLine(() => parseNetworkMode('container:')),
    /is not a container name/,
  );
  t.deepEqual(parseNetworkOptions({}).mode, { kind: 'bridge' }, 'bridge is the default');
  t.regex(
    oneLine(() => parseNetworkOptions({ network: 'none', publish: ['80:80'] })),
    /conflicting options: publishing ports \(-p, -P\) and --network none/,
  );
  t.regex(
    oneLine(() => parseNetworkOptions({ network: 'container:web' }, 'h1')),
    /--hostname and --network container:web/,
  );
  t.regex(
    oneLine(() => parseNetworkOptions({ network: 'container:web', dns: ['192.0.2.1'] })),
    /--dns options/,
  );
  t.regex(
    oneLine(() => parseNetworkOptions({ dns: ['not-an-ip'] })),
    /invalid --dns/,
  );
});

test('the nft table: its name holds tscontain, a map per protocol, NAT for the subnet, nft 1.0.6 syntax', (t) => {
  const b = bridge(parseCidr('172.18.0.0/16')!, netPaths(roots));
  const r = ruleset(b);
  t.regex(r, /^table ip tscontain \{$/m);
  for (const m of ['tcp_pub', 'tcp_pub_ip', 'tcp_claim', 'udp_pub', 'udp_pub_ip', 'udp_claim'])
    t.regex(r, new RegExp(`^  map ${m} \\{`, 'm'));
  t.regex(r, /ip saddr 172\.18\.0\.0\/16 oifname != "tsc0" masquerade/);
  t.regex(
    r,
    /chain forward \{ type filter hook forward priority filter; policy accept/,
    'never a drop policy: other forwarding is not ours',
  );
  t.regex(r, /iifname "tsc0" ip daddr 127\.0\.0\.0\/8 drop/);
  t.false(/[^\s][^\S\n]*\}$/m.test(r), 'every closing brace on a line of its own');
  t.is(vethName('0123456789abcdef'.repeat(4)), 'tsc0123456789ab');
});

const render = (steps: Step[]) =>
  steps.flatMap((s) => [`# ${inert(s.title)}`, ...s.lines.map((l) => l.text)]).join('\n');

function allocScript(b: ReturnType<typeof bridge>, id: string, run: string) {
  return `set -eu\ntsc_id=${id}; tsc_run=${run}\n${render([allocateStep(b)])}\necho "$tsc_net_ip"\n`;
}

test('allocation: 30 at once get 30 addresses; freeing gives only our own back; a full subnet says so', async (t) => {
  const dir = tempDir('tscontain-ipam-');
  const b = bridge(parseCidr('10.9.0.0/16')!, netPaths({ lib: dir, run: dir }));
  const ids = Array.from({ length: 30 }, (_, i) => i.toString(16).padStart(2, '0').repeat(32));
  const outs = await Promise.all(
    ids.map(
      (id) =>
        new Promise<string>((res) => {
          const run = join(dir, 'run', id);
          mkdirSync(run, { recursive: true });
          const p = spawn('dash', ['-c', allocScript(b, id, run)]);
          let out = '';
          p.stdout.on('data', (d) => (out += d));
          p.on('close', () => res(out.trim()));
        }),
    ),
  );
  t.is(new Set(outs).size, 30, outs.join(' '));
  t.true(
    outs.every((a) => /^10\.9\.0\.\d+$/.test(a) && a !== '10.9.0.1' && a !== '10.9.0.0'),
    outs.join(' '),
  );
  const files = readdirSync(b.paths.addresses).filter((f) => !f.startsWith('.'));
  t.is(files.length, 30);
  t.is(readFileSync(join(b.paths.addresses, outs[0]), 'utf8'), `${ids[0]} ${join(dir, 'run', ids[0])}\n`);
  // exit of a container that does not own the address (its start failed): nothing freed
  const free = (id: string, ip: string) =>
    spawnSync('dash', [
      '-c',
      `set -eu\ntsc_id=${id}; tsc_run=/nonexistent; tsc_net_ip=${ip}\n${freeLines(b)
        .map((l) => l.text)
        .join('\n')}`,
    ]);
  t.is(free(ids[1], outs[0]).status, 0);
  t.true(readdirSync(b.paths.addresses).includes(outs[0]));
  t.is(free(ids[0], outs[0]).status, 0);
  t.false(readdirSync(b.paths.addresses).includes(outs[0]));

  const small = bridge(parseCidr('10.8.0.0/30')!, netPaths({ lib: join(dir, 's'), run: dir }));
  const r1 = spawnSync('dash', ['-c', allocScript(small, 'a'.repeat(64), dir)], { encoding: 'utf8' });
  t.is(r1.stdout.trim(), '10.8.0.2', 'a /30 holds one container');
  const r2 = spawnSync('dash', ['-c', allocScript(small, 'b'.repeat(64), dir)], { encoding: 'utf8' });
  t.not(r2.status, 0);
  t.is(r2.stderr, 'tscontain: no free address left in 10.8.0.0/30: remove stopped containers, or run tscontain gc\n');
});

test("gc: dead containers' addresses, elements pointing at free addresses, veths of dead containers", (t) => {
  const dir = tempDir('tscontain-ipam-');
  const live = 'a'.repeat(64),
    dead = 'b'.repeat(64);
  writeFileSync(join(dir, '172.17.0.2'), `${live}\n`);
  writeFileSync(join(dir, '172.17.0.3'), `${dead}\n`);
  writeFileSync(join(dir, '172.17.0.4'), ''); // being taken right now
  writeFileSync(join(dir, '172.17.0.5'), '');
  utimesSync(join(dir, '172.17.0.5'), new Date(0), new Date(0)); // left empty by a crash long ago
  writeFileSync(join(dir, '.next'), '3\n');
  t.deepEqual(freeDeadAddresses(dir, new Set([live])).sort(), ['172.17.0.3', '172.17.0.5']);
  t.deepEqual(readdirSync(dir).sort(), ['.next', '172.17.0.2', '172.17.0.4']);

  const json = JSON.stringify({
    nftables: [
      { metainfo: {} },
      {
        map: {
          name: 'tcp_pub',
          table: 'tscontain',
          elem: [
            [8080, { concat: ['172.17.0.2', 80] }],
            [8081, { concat: ['172.17.0.3', 80] }],
          ],
        },
      },
      {
        map: {
          name: 'tcp_pub_ip',
          table: 'tscontain',
          elem: [[{ concat: ['127.0.0.1', 8082] }, { concat: ['172.17.0.3', 81] }]],
        },
      },
      { map: { name: 'udp_claim', table: 'tscontain', elem: [[53, '172.17.0.9']] } },
      { map: { name: 'other', table: 'tscontain', elem: [[1, '172.17.0.9']] } },
    ],
  });
  t.deepEqual(staleElements(json, 'tscontain', new Set(['172.17.0.2'])), [
    'delete element ip tscontain tcp_pub { 8081 }',
    'delete element ip tscontain tcp_pub_ip { 127.0.0.1 . 8082 }',
    'delete element ip tscontain udp_claim { 53 }',
  ]);
  t.deepEqual(staleLinks(['tscaaaaaaaaaaaa', 'tscbbbbbbbbbbbb', 'eth5', 'tsc0'], new Set([live])), ['tscbbbbbbbbbbbb']);
  const runner = { run: () => ({ code: 0, out: json }) };
  t.deepEqual(leftovers({ ...netPaths(roots), addresses: dir }, runner), [
    'nft elements in ip tscontain: tcp_pub { 8080 }, tcp_pub { 8081 }, ' +
      'tcp_pub_ip { 127.0.0.1 . 8082 }, udp_claim { 53 }',
    `addresses allocated: 172.17.0.2 (${live.slice(0, 12)}) 172.17.0.4 ()`,
  ]);
});

test("the container's /etc files are written into its layer, by printf only", (t) => {
  const ctr = tempDir('tscontain-ctr-');
  const step = etcFilesStep({
    resolv: 'nameserver 192.0.2.1\n',
    hostsHead: '127.0.0.1\tlocalhost\n',
    ownNames: ['abc', 'web'],
    hostname: 'abc\n',
    note: 'a note',
  });
  const r = spawnSync('dash', ['-c', `set -eu\ntsc_ctr=${ctr}; tsc_net_ip=172.17.0.9\n${render([step])}`], {
    encoding: 'utf8',
  });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, 'tscontain: a note\n');
  t.is(readFileSync(join(ctr, 'upper/etc/hosts'), 'utf8'), '127.0.0.1\tlocalhost\n172.17.0.9\tabc web\n');
  t.is(readFileSync(join(ctr, 'upper/etc/resolv.conf'), 'utf8'), 'nameserver 192.0.2.1\n');
  t.is(readFileSync(join(ctr, 'upper/etc/hostname'), 'utf8'), 'abc\n');
});

test('planNetwork: which phase gets what', (t) => {
  const id = 'c'.repeat(64);
  const facts = { routes: [route('192.0.2.0/24')], resolv: 'nameserver 192.0.2.53\n' };
  const bin = (n: string) => `/usr/sbin/${n}`;
  const b = planNetwork({ id, hostname: 'h', net: parseNetworkOptions({ publish: ['8080:80'] }), facts, roots, bin });
  t.deepEqual(
    b.host.map((s) => s.title.split(' ')[0]),
    ['Make', 'Take', 'Publish', 'Write'],
  );
  t.deepEqual(
    b.gate.map((s) => s.title.split(' ')[0]),
    ['Connect'],
  );
  t.deepEqual(
    b.afterStart.map((s) => s.title.split(' ')[0]),
    ['Record'],
  );
  t.is(b.exit.length, 1);
  t.true(b.unshareNet);
  t.deepEqual(
    b.record.publish.map((m) => m.container),
    [80],
  );
  t.regex(render(b.gate), /\/usr\/sbin\/ip -batch -/);
  const none = planNetwork({ id, hostname: 'h', net: parseNetworkOptions({ network: 'none' }), facts, roots, bin });
  t.deepEqual([none.host.length, none.gate.length, none.afterStart.length, none.exit.length], [1, 0, 1, 0]);
  t.true(none.unshareNet);
  t.notRegex(render(none.host), /tsc_net_ip/, 'no address: no own line in /etc/hosts');
  const host = planNetwork({
    id,
    hostname: 'h',
    net: parseNetworkOptions({ network: 'host' }),
    facts: { ...facts, hosts: '10.0.0.1 myhost\n' },
    roots,
    bin,
  });
  t.false(host.unshareNet);
  t.regex(render(host.host), /10\.0\.0\.1 myhost/);
  const j = planNetwork({
    id,
    hostname: 'h',
    net: parseNetworkOptions({ network: 'container:web' }),
    facts,
    roots,
    bin,
    join: { name: 'web', runDir: '/run/tscontain-x/w' },
  });
  t.false(j.unshareNet);
  t.deepEqual([j.gate.length, j.afterStart.length], [0, 1], 'no gate: nothing to wait for');
  t.is(j.startPrefix.map((s) => s.text).join(' '), '/usr/sbin/nsenter --net=/proc/$$/fd/8');
});

test("container:NAME binds the joined container's /etc files over its own, in the fstab", (t) => {
  t.deepEqual(sharedEtcBinds({ name: 'web', runDir: '/r/w' }), [], 'none to share: its own files stay');
  const binds = sharedEtcBinds({ name: 'web', runDir: '/r/w', etcDir: '/l/containers/w/upper/etc' });
  t.deepEqual(
    binds.map((b) => `${b.host} ${b.path}`),
    [
      '/l/containers/w/upper/etc/hosts /etc/hosts',
      '/l/containers/w/upper/etc/resolv.conf /etc/resolv.conf',
      '/l/containers/w/upper/etc/hostname /etc/hostname',
    ],
  );
  const fstab = mountStep({
    volumes: [],
    tmpfs: [],
    devices: [],
    masks: [],
    readOnly: false,
    shared: binds,
  })
    .lines.map((l) => l.text)
    .join('\n');
  t.regex(fstab, /^ {2}\/l\/containers\/w\/upper\/etc\/hosts \/etc\/hosts none bind \\$/m);
  t.regex(fstab, /^ {2}\/l\/containers\/w\/upper\/etc\/hostname \/etc\/hostname none bind > "\$tsc_run\/fstab"$/m);
});

test('gc judges what it listed by the allocations read after the listing: a container started meanwhile keeps its veth and map elements', (t) => {
  const dir = tempDir('tscontain-gc-order-');
  const paths = netPaths({ lib: dir, run: dir, net: join(dir, 'net') });
  mkdirSync(paths.addresses, { recursive: true });
  const sys = join(dir, 'sys');
  mkdirSync(join(sys, 'tsc0', 'brif'), { recursive: true });
  const c = 'c'.repeat(64);
  const json = JSON.stringify({
    nftables: [{ map: { name: 'tcp_claim', table: 'tscontain', elem: [[8080, '172.17.0.7']] } }],
  });
  const deleted: string[] = [];
  // while gc lists the table, container c starts: its address first, then its veth and its element
  const runner = {
    run: (cmd: string, args: string[], input?: string) => {
      if (args[0] === '-j') {
        writeFileSync(join(paths.addresses, '172.17.0.7'), `${c} ${dir}\n`);
        mkdirSync(join(sys, 'tsc0', 'brif', `tsc${c.slice(0, 12)}`));
        return { code: 0, out: json };
      }
      deleted.push([cmd, ...args].join(' ') + (input ?? ''));
      return { code: 0, out: '' };
    },
  };
  const b = { ...bridge(parseCidr('172.17.0.0/16')!, paths), firewalls: ['nft' as const] };
  const res = gcNetwork(b, new Set(), runner, sys);
  t.deepEqual(res.links, [], 'its veth was made after the links were listed');
  t.deepEqual(res.elements, [], 'its element is judged by the allocations read after the listing');
  t.deepEqual(deleted, []);
});

test('doctor: programs, forwarding, and the kernel tried in a throwaway namespace', (t) => {
  const proc = tempDir('tscontain-proc-');
  mkdirSync(join(proc, 'sys/net/ipv4'), { recursive: true });
  writeFileSync(join(proc, 'sys/net/ipv4/ip_forward'), '0\n');
  const base = {
    proc,
    cgroup: proc,
    uid: 0,
    which: (c: string) => (c === 'nft' ? undefined : `/usr/bin/${c}`),
    probe: () => ({ code: 0, out: '' }),
  };
  const c1 = networkChecks({ ...base, which: (c: string) => (c === 'flock' ? undefined : `/usr/bin/${c}`) }, '');
  t.is(c1.find((c) => c.what === 'network programs')!.status, 'warn');
  t.regex(c1.find((c) => c.what === 'network programs')!.fix!, /util-linux/);
  t.regex(c1.find((c) => c.what === 'ip forwarding')!.detail, /off now/);
  let probed = '';
  const c2 = networkChecks(
    {
      ...base,
      which: (c: string) => `/usr/bin/${c}`,
      probe: (cmd, args) => {
        probed = [cmd, ...args].join(' ');
        return { code: 1, out: 'Error: Could not process rule: No such file or directory\n' };
      },
    },
    '',
  );
  t.regex(probed, /^unshare --net sh -c /);
  t.regex(probed, /table ip tscontain/);
  t.is(c2.find((c) => c.what === 'bridge, veth, nftables')!.status, 'fail');
});

test("PID 1 is found as unshare's child and recorded with its start time; an unshare that ended says so", (t) => {
  const run = tempDir('tscontain-run-');
  const find = [...findPid1Lines(), ...recordPid1Lines(lit('"$tsc_pid1"'))].map((l) => l.text).join('\n');
  const start = 'unshare --fork sleep 5 & tsc_upid=$!';
  const script = `set -eu\ntsc_run=${run}\n${start}\n${find}\n` + 'echo "$tsc_pid1"; kill "$tsc_pid1"';
  const r = spawnSync('dash', ['-c', script], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const pid = r.stdout.trim();
  t.regex(readFileSync(join(run, 'pid1'), 'utf8'), new RegExp(`^${pid} \\d+\\n$`));
  const gone = spawnSync('dash', ['-c', `set -eu\ntsc_run=${run}\nfalse & tsc_upid=$!\n${find}`], { encoding: 'utf8' });
  t.not(gone.status, 0);
  t.is(gone.stderr, 'tscontain: the container did not start\n');
});
