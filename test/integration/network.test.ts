// Networking steps run for real, without the plan: the "host" is a network namespace this test
// makes (so the machine's own links, nft tables and ip_forward are never touched, and other tests
// running at the same time see nothing), an "outside host" is a second namespace on a veth with a
// subnet of its own (198.18.0.0/30, a benchmarking range), and a container is
// `unshare --net --mount --pid --fork busybox httpd`. The host namespace has no route beyond the
// outside namespace, so no packet can leave this machine. The firewall is nft, or iptables with
// TSCONTAIN_FIREWALL=iptables (network-iptables.test.ts runs this file so).
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { inert } from '../../src/plan/sh.js';
import type { Step } from '../../src/plan/step.js';
import { planNetwork, type NetRequest } from '../../src/kernel/network/index.js';
import { bridgePruneStep } from '../../src/kernel/network/bridge.js';
import { parseNetworkOptions } from '../../src/kernel/network/options.js';
import type { NetFacts } from '../../src/kernel/network/probe.js';
import { parseProcNetRoute } from '../../src/kernel/network/subnet.js';
import { parsePortsFile } from '../../src/kernel/network/publish.js';
import { gcNetwork } from '../../src/kernel/network/gc.js';
import { hostBridge, systemBin } from '../../src/kernel/network/index.js';
import { joinPrefix, joinStep } from '../../src/kernel/network/join.js';
import type { FirewallName } from '../../src/kernel/network/firewall.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';
import { until } from '../fixtures/poll.js';
import { env, isRoot, sleep } from './helpers.js';

const FIREWALL: FirewallName = process.env.TSCONTAIN_FIREWALL === 'iptables' ? 'iptables' : 'nft';
const serial = isRoot ? test.serial : test.serial.skip;
const tag = `${process.pid}`;
const H = `tscontain-test-h${tag}`; // the host
const E = `tscontain-test-e${tag}`; // the outside host
const OUT = '198.18.0.2';
const HOST_OUT = '198.18.0.1';

const BUSYBOX = [join(env.TSCONTAIN_ROOT!, 'lib/images/busybox/rootfs/bin/busybox'), '/bin/busybox'].find(existsSync);
const root = tempDir('tscontain-nettest-');
const roots = { lib: join(root, 'lib'), run: join(root, 'run') };
const started: ChildProcess[] = [];
const pid1s: number[] = [];

/** Stop a fake container: its PID 1 (killing unshare alone would leave PID 1 running). */
function stop(c: { pid1: number }) {
  try {
    process.kill(c.pid1, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** Run a command in a namespace; returns code and output. */
function inNs(ns: string, cmd: string[], input?: string) {
  const [prog, ...args] = cmd;
  const r = spawnSync('/usr/sbin/ip', ['netns', 'exec', ns, prog.startsWith('/') ? prog : systemBin(prog), ...args], {
    input,
    encoding: 'utf8',
    timeout: 30000,
  });
  return { code: r.status ?? 1, out: `${r.stdout ?? ''}`, err: `${r.stderr ?? ''}` };
}
const mustNs = (ns: string, cmd: string[], input?: string) => {
  const r = inNs(ns, cmd, input);
  if (r.code !== 0) throw new Error(`${cmd.join(' ')} in ${ns}: ${r.err || r.out}`);
  return r.out;
};

const render = (steps: Step[]) =>
  steps.flatMap((s) => [`# ${inert(s.title)}`, ...s.lines.map((l) => l.text)]).join('\n');

/** The host's facts as the host namespace has them (its routes; resolv.conf given, not the machine's). */
function facts(): NetFacts {
  return {
    routes: parseProcNetRoute(mustNs(H, ['cat', '/proc/net/route'])),
    remembered: existsSync(join(roots.lib, 'network/subnet'))
      ? readFileSync(join(roots.lib, 'network/subnet'), 'utf8')
      : undefined,
    resolv: `nameserver 127.0.0.53\nnameserver ${OUT}\nsearch example.test\n`,
    listening: { tcp: new Set(), udp: new Set() },
    firewall: { use: FIREWALL, installed: [FIREWALL], why: FIREWALL },
  };
}

function request(id: string, publish: string[]): NetRequest {
  return { id, hostname: id.slice(0, 12), net: parseNetworkOptions({ publish }), facts: facts(), roots };
}

/** A fake container serving "hello NAME" with busybox httpd on port 80 (or running `argv`). */
async function fakeContainer(
  name: string,
  argv?: string[],
): Promise<{ id: string; pid1: number; unshare: ChildProcess }> {
  const id = (name.padEnd(4, '0').replace(/[^0-9a-f]/g, 'f') + tag).padEnd(64, '0').slice(0, 64);
  const www = join(root, 'www', name);
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'index.html'), `hello ${name}\n`);
  const cmd = argv ?? [BUSYBOX!, 'httpd', '-f', '-p', '80', '-h', www];
  const u = spawn(
    '/usr/sbin/ip',
    ['netns', 'exec', H, 'unshare', '--net', '--mount', '--pid', '--fork', '--mount-proc', ...cmd],
    { stdio: 'ignore' },
  );
  started.push(u);
  for (let i = 0; i < 500; i++) {
    let kid = '';
    try {
      kid = readFileSync(`/proc/${u.pid}/task/${u.pid}/children`, 'utf8').trim();
    } catch {
      /* not yet */
    }
    if (kid && readFileSync(`/proc/${kid}/cmdline`, 'utf8') === cmd.join('\0') + '\0') {
      pid1s.push(Number(kid));
      return { id, pid1: Number(kid), unshare: u };
    }
    await sleep(10);
  }
  throw new Error('the fake container did not start');
}

const UDP_ECHO = `const s = require('dgram').createSocket('udp4');
s.on('message', (m, r) => s.send('pong ' + m, r.port, r.address)); s.bind(5353);`;
const udpAsk = (host: string, port: number) => `const s = require('dgram').createSocket('udp4');
s.on('message', (m) => { console.log(String(m)); process.exit(0); });
s.send('ping', ${port}, '${host}'); setTimeout(() => process.exit(1), 5000);`;

/** The supervisor's part: host setup and gate steps in one sh (shell variables carry over). */
function supervisorScript(
  c: { id: string; pid1: number },
  run: string,
  ctr: string,
  plan: ReturnType<typeof planNetwork>,
) {
  const vars = `tsc_id=${c.id}; tsc_run=${run}; tsc_ctr=${ctr}; tsc_pid1=${c.pid1}`;
  return `set -eu\n${vars}\n${render(plan.host)}\n${render(plan.gate)}\n${render(plan.afterStart)}\n`;
}

/**
 * Host setup and gate steps in one sh, as the supervisor runs them (shell variables carry over).
 * A failed test still stops its container and runs its exit steps (they are idempotent).
 */
function start(t: ExecutionContext, c: { id: string; pid1: number }, publish: string[] = []) {
  const run = join(roots.run, c.id);
  const ctr = join(roots.lib, 'containers', c.id);
  mkdirSync(run, { recursive: true });
  mkdirSync(join(ctr, 'upper'), { recursive: true });
  const plan = planNetwork(request(c.id, publish));
  const script = supervisorScript(c, run, ctr, plan);
  t.teardown(() => {
    stop(c);
    exit(c, plan);
  });
  return { r: inNs(H, ['sh', '-c', script]), plan, run, ctr };
}

function exit(c: { id: string }, plan: ReturnType<typeof planNetwork>) {
  const script = `set -eu\ntsc_id=${c.id}; tsc_run=${join(roots.run, c.id)}\n${render(plan.exit)}\n`;
  return inNs(H, ['sh', '-c', script]);
}

/**
 * GET http://ADDR:PORT/PATH from a namespace (or from a container's, by PID 1), with busybox nc:
 * busybox-static 1.35's wget dies of SIGSEGV on this machine. Returns the body, code 0 on success.
 */
function get(ns: string, url: string, via?: number) {
  const m = /^http:\/\/([0-9.]+):(\d+)(\/.*)$/.exec(url)!;
  const r = inNs(
    ns,
    [...(via ? ['nsenter', '--target', String(via), '--net'] : []), BUSYBOX!, 'nc', '-w', '5', m[1], m[2]],
    `GET ${m[3]} HTTP/1.0\r\n\r\n`,
  );
  const ok = r.code === 0 && /^HTTP\/1\.[01] 200 /.test(r.out);
  return { code: ok ? 0 : 1, out: ok ? r.out.slice(r.out.indexOf('\r\n\r\n') + 4) : `${r.out}${r.err}` };
}
const links = () =>
  mustNs(H, ['ip', '-o', 'link'])
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0])
    .filter(Boolean);
const addresses = () => readdirSync(join(roots.lib, 'network/addresses')).filter((f) => !f.startsWith('.'));
const claims = () =>
  existsSync(join(roots.lib, 'network/ports')) ? readdirSync(join(roots.lib, 'network/ports')) : [];
/** The rules of ours in the host namespace (iptables: with the port claims). */
const rules = () =>
  FIREWALL === 'nft'
    ? mustNs(H, ['nft', 'list', 'table', 'ip', 'tscontain'])
    : mustNs(H, ['iptables-save'])
        .split('\n')
        .filter((l) => /tscontain/i.test(l))
        .concat(claims().map((c) => `claim ${c}`))
        .join('\n');
/** What containers published: nft map elements, or iptables DNAT rules and port claims. */
const published = () =>
  FIREWALL === 'nft'
    ? [...rules().matchAll(/elements = \{([^}]*)\}/g)].map((m) => m[1].trim())
    : rules()
        .split('\n')
        .filter((l) => /tscontain:|^claim /.test(l));
/** Whether the firewall's table or chains are there. */
const firewallMade = () =>
  FIREWALL === 'nft'
    ? inNs(H, ['nft', 'list', 'table', 'ip', 'tscontain']).code === 0
    : /TSCONTAIN/.test(mustNs(H, ['iptables-save']));
/** The rule of the forward chain that lets DNAT traffic into the bridge. */
const dnatForward = FIREWALL === 'nft' ? /ct status dnat accept/g : /-A TSCONTAIN-FORWARD -o tsc0 .*--ctstate DNAT/g;

test.before(() => {
  if (!isRoot) return;
  if (!BUSYBOX) throw new Error('busybox missing: build the image first (node bin/tscontain.cjs rootfs build busybox)');
  for (const ns of [H, E]) spawnSync('ip', ['netns', 'add', ns]);
  // a new namespace copies the machine's ip_forward, which tscontain's own bridge may have turned on:
  // the test's "host" starts as a machine that never forwarded
  spawnSync('ip', ['netns', 'exec', H, 'sh', '-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward']);
  mustNs(H, ['ip', 'link', 'set', 'lo', 'up']);
  mustNs(E, ['ip', 'link', 'set', 'lo', 'up']);
  mustNs(H, ['ip', 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', E]);
  mustNs(H, ['ip', 'addr', 'add', `${HOST_OUT}/30`, 'dev', 'ext0']);
  mustNs(H, ['ip', 'link', 'set', 'ext0', 'up']);
  mustNs(E, ['ip', 'addr', 'add', `${OUT}/30`, 'dev', 'eth0']);
  mustNs(E, ['ip', 'link', 'set', 'eth0', 'up']);
  // the outside host answers with the address it sees the client at (busybox httpd CGI: REMOTE_ADDR)
  const www = join(root, 'outside');
  mkdirSync(join(www, 'cgi-bin'), { recursive: true });
  writeFileSync(
    join(www, 'cgi-bin', 'peer'),
    '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$REMOTE_ADDR"\n',
  );
  chmodSync(join(www, 'cgi-bin', 'peer'), 0o755);
  const httpd = spawn('ip', ['netns', 'exec', E, BUSYBOX, 'httpd', '-f', '-p', `${OUT}:80`, '-h', www], {
    stdio: 'ignore',
  });
  started.push(httpd);
});

test.after.always(() => {
  for (const p of pid1s) stop({ pid1: p });
  for (const c of started) c.kill('SIGKILL');
  for (const ns of [H, E]) spawnSync('ip', ['netns', 'del', ns]);
  removeTempDirs();
});

serial(
  'bridge: NAT out, container to container, published ports from the host, 127.0.0.1, outside and hairpin; ' +
    'a taken port fails; exit leaves nothing',
  async (t) => {
    const a = await fakeContainer('a');
    const b = await fakeContainer('b');
    const sa = start(t, a, ['8080:80', '127.0.0.1:8090-8099:80']);
    t.is(sa.r.code, 0, sa.r.err);
    const sb = start(t, b);
    t.is(sb.r.code, 0, sb.r.err);
    const gw = sa.plan.record.gateway!;
    const ipA = readFileSync(join(sa.run, 'ip'), 'utf8').trim();
    const ipB = readFileSync(join(sb.run, 'ip'), 'utf8').trim();
    t.not(ipA, ipB);
    t.is(sa.plan.record.subnet, '172.17.0.0/16', 'the first private /16: the host namespace has no route there');

    // the container's side: eth0 with its address, the default route, lo up
    const ipAddr = mustNs(H, ['nsenter', '--target', String(a.pid1), '--net', 'ip', '-o', '-4', 'addr']);
    t.regex(ipAddr, new RegExp(`eth0\\s+inet ${ipA.replace(/\./g, '\\.')}/16`));
    t.regex(ipAddr, /lo\s+inet 127\.0\.0\.1/);
    t.regex(
      mustNs(H, ['nsenter', '--target', String(a.pid1), '--net', 'ip', 'route']),
      new RegExp(`default via ${gw.replace(/\./g, '\\.')} dev eth0`),
    );
    t.true(links().includes(`tsc${a.id.slice(0, 12)}`));

    t.is(
      inNs(H, ['nsenter', '--target', String(a.pid1), '--net', BUSYBOX!, 'ping', '-c', '1', '-W', '5', gw]).code,
      0,
      'container -> bridge address',
    );
    t.is(get(H, `http://${ipA}:80/`, b.pid1).out, 'hello a\n', 'container -> container');
    t.is(get(H, 'http://127.0.0.1:8080/').out, 'hello a\n', 'host -> 127.0.0.1:8080');
    t.is(get(H, `http://${gw}:8080/`).out, 'hello a\n', 'host -> bridge address:8080');
    t.is(get(E, `http://${HOST_OUT}:8080/`).out, 'hello a\n', "outside -> the host's address:8080");
    t.is(get(H, `http://${gw}:8080/`, b.pid1).out, 'hello a\n', 'another container -> a published port via the host');
    t.is(get(H, `http://${gw}:8080/`, a.pid1).out, 'hello a\n', 'a container -> its own published port (hairpin)');
    t.is(
      get(H, `http://${OUT}:80/cgi-bin/peer`, a.pid1).out,
      `${HOST_OUT}\n`,
      "outbound: the outside host sees the host's address",
    );

    // the port picked from 127.0.0.1:8090-8099 is recorded, reachable on 127.0.0.1 only
    const ports = parsePortsFile(readFileSync(join(sa.run, 'ports'), 'utf8'));
    const picked = ports.find((p) => p.hostIp === '127.0.0.1')!;
    t.truthy(picked && picked.hostPort >= 8090 && picked.hostPort <= 8099, JSON.stringify(ports));
    t.is(get(H, `http://127.0.0.1:${picked.hostPort}/`).out, 'hello a\n');
    t.not(get(E, `http://${HOST_OUT}:${picked.hostPort}/`).code, 0, 'bound to 127.0.0.1: not reachable from outside');

    // /etc files: resolv.conf without the loopback resolver, hosts with the container's own line
    t.is(
      readFileSync(join(sa.ctr, 'upper/etc/resolv.conf'), 'utf8'),
      `# Generated by tscontain from the host's resolv.conf\nsearch example.test\nnameserver ${OUT}\n`,
    );
    t.true(readFileSync(join(sa.ctr, 'upper/etc/hosts'), 'utf8').endsWith(`${ipA}\t${a.id.slice(0, 12)}\n`));

    // a third container asks for 8080 as well: one line, nothing of it left after its exit steps
    const c = await fakeContainer('c');
    const before = rules();
    const sc = start(t, c, ['9000:80', '8080:80']);
    t.not(sc.r.code, 0);
    t.is(sc.r.err, 'tscontain: host port 8080/tcp is already published by another container\n');
    t.is(rules(), before, 'the failed start added nothing, not even 9000');
    t.is(exit(c, sc.plan).code, 0);
    t.false(addresses().includes(readFileSync(join(sc.run, 'ip'), 'utf8').trim()), 'its address is free again');
    t.is(get(H, 'http://127.0.0.1:8080/').out, 'hello a\n', 'the owner keeps its port');

    for (const [x, s] of [
      [a, sa],
      [b, sb],
      [c, sc],
    ] as const) {
      stop(x);
      t.is(exit(x, s.plan).code, 0);
    }
    // the kernel deletes each veth pair with its network namespace, in the background
    const veths = () => links().filter((l) => l.startsWith('tsc') && l !== 'tsc0');
    await until(
      () => !veths().length,
      () => `the veths to go: ${veths().join(' ')}`,
    ).catch(() => undefined);
    t.deepEqual(veths(), [], 'no veth left');
    t.deepEqual(published(), [], 'no map element, rule or claim left');
    t.deepEqual(addresses(), [], 'no address left');
    t.not(get(H, 'http://127.0.0.1:8080/').code, 0, 'unpublished');

    // prune removes the bridge and the table
    const b0 = hostBridge({ facts: facts(), roots, net: parseNetworkOptions({}) });
    t.is(inNs(H, ['sh', '-c', `set -eu\n${render([bridgePruneStep(b0)])}`]).code, 0);
    t.false(links().includes('tsc0'));
    t.false(firewallMade(), 'no table or chain of ours left');
  },
);

serial('UDP: published on every address and on 127.0.0.1 only', async (t) => {
  const u = await fakeContainer('u', [process.execPath, '-e', UDP_ECHO]);
  for (let i = 0; i < 500 && !/:14E9 /.test(readFileSync(`/proc/${u.pid1}/net/udp`, 'utf8')); i++) await sleep(10);
  const su = start(t, u, ['5355:5353/udp', '127.0.0.1:5354:5353/udp']);
  t.is(su.r.code, 0, su.r.err);
  const ask = (ns: string, host: string, port: number) => inNs(ns, [process.execPath, '-e', udpAsk(host, port)]);
  t.is(ask(H, '127.0.0.1', 5354).out, 'pong ping\n', 'host -> 127.0.0.1:5354/udp');
  t.is(ask(E, HOST_OUT, 5355).out, 'pong ping\n', "outside -> the host's address:5355/udp");
  t.not(ask(E, HOST_OUT, 5354).code, 0, '127.0.0.1 only: not from outside');
  stop(u);
  t.is(exit(u, su.plan).code, 0);
  t.deepEqual(published(), []);
});

serial(
  'gc after a crash: the address, the map elements and a stray veth of a dead container go; ' +
    'a live one keeps everything',
  async (t) => {
    const a = await fakeContainer('d');
    const b = await fakeContainer('e');
    const sa = start(t, a, ['8181:80']);
    const sb = start(t, b, ['8182:80']);
    t.is(sa.r.code, 0, sa.r.err);
    t.is(sb.r.code, 0, sb.r.err);
    // a's supervisor "was SIGKILLed": no exit steps ran. Its namespace stays alive (held by the test),
    // so its veth stays too.
    const bridgeNow = hostBridge({ facts: facts(), roots, net: parseNetworkOptions({}) });
    const runner = {
      run: (cmd: string, args: string[], input?: string) => {
        const r = inNs(H, [cmd, ...args], input);
        return { code: r.code, out: r.out };
      },
    };
    const sys = join(root, 'sys');
    // /sys/class/net of the host namespace, as gc reads it
    mkdirSync(join(sys, 'tsc0', 'brif'), { recursive: true });
    for (const l of mustNs(H, ['ls', '/sys/class/net/tsc0/brif']).split('\n').filter(Boolean))
      mkdirSync(join(sys, 'tsc0', 'brif', l), { recursive: true });
    const deadIp = readFileSync(join(sa.run, 'ip'), 'utf8').trim();
    rmSync(sa.run, { recursive: true, force: true }); // gc removes a dead container's run dir first
    const res = gcNetwork(bridgeNow, new Set([b.id]), runner, sys);
    t.deepEqual(res.freed, [deadIp]);
    t.deepEqual(res.links, [`tsc${a.id.slice(0, 12)}`]);
    t.is(res.elements.length, 2, res.elements.join('; '));
    t.false(links().includes(`tsc${a.id.slice(0, 12)}`));
    t.not(get(H, 'http://127.0.0.1:8181/').code, 0);
    t.is(get(H, 'http://127.0.0.1:8182/').out, 'hello e\n', 'the live container is untouched');
    for (const [x, s] of [
      [a, sa],
      [b, sb],
    ] as const) {
      stop(x);
      exit(x, s.plan);
    }
    t.deepEqual(published(), []);
    t.deepEqual(addresses(), []);
  },
);

serial(
  'first use by several containers at once: one bridge, one table, distinct addresses (flock and exclusive files)',
  async (t) => {
    const cs = await Promise.all(['f1', 'f2', 'f3', 'f4'].map((n) => fakeContainer(n)));
    // a fresh host: remove what earlier tests left (the test before pruned; make sure)
    inNs(H, ['ip', 'link', 'del', 'tsc0']);
    if (FIREWALL === 'nft') inNs(H, ['nft', 'delete', 'table', 'ip', 'tscontain']);
    // the host namespace is this test's own: every table of it goes
    else
      for (const tb of ['raw', 'nat', 'filter']) inNs(H, ['sh', '-c', `iptables -t ${tb} -F && iptables -t ${tb} -X`]);
    const plans = cs.map((c) => ({
      c,
      run: join(roots.run, c.id),
      ctr: join(roots.lib, 'containers', c.id),
      plan: planNetwork(request(c.id, [])),
    }));
    for (const { c, plan } of plans)
      t.teardown(() => {
        stop(c);
        exit(c, plan);
      });
    const rs = await Promise.all(
      plans.map(({ c, run, ctr, plan }) => {
        mkdirSync(run, { recursive: true });
        mkdirSync(join(ctr, 'upper'), { recursive: true });
        const script = supervisorScript(c, run, ctr, plan);
        return new Promise<number>((res) =>
          spawn('/usr/sbin/ip', ['netns', 'exec', H, 'sh', '-c', script], { stdio: 'ignore' }).on('close', (code) =>
            res(code ?? 1),
          ),
        );
      }),
    );
    t.deepEqual(rs, [0, 0, 0, 0]);
    const ips = plans.map(({ run }) => readFileSync(join(run, 'ip'), 'utf8').trim());
    t.is(new Set(ips).size, 4, ips.join(' '));
    const all = FIREWALL === 'nft' ? mustNs(H, ['nft', 'list', 'ruleset']) : mustNs(H, ['iptables-save']);
    t.is((all.match(dnatForward) ?? []).length, 1, 'the table was made once');
    if (FIREWALL === 'iptables') t.is((all.match(/-j TSCONTAIN-FORWARD/g) ?? []).length, 1, 'one jump');
    t.is(mustNs(H, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'tsc0']).split('\n').filter(Boolean).length, 1);
    // forwarding was off in this host: it is on now, and the host's other forwarding stays off
    t.is(mustNs(H, ['cat', '/proc/sys/net/ipv4/ip_forward']).trim(), '1');
    t.regex(
      FIREWALL === 'nft'
        ? mustNs(H, ['nft', 'list', 'chain', 'ip', 'tscontain', 'forward'])
        : mustNs(H, ['iptables', '-S', 'TSCONTAIN-FORWARD']),
      FIREWALL === 'nft' ? /iifname != "tsc0" oifname != "tsc0" drop/ : /! -i tsc0 ! -o tsc0 -j DROP/,
    );
    for (const { c, plan } of plans) {
      stop(c);
      t.is(exit(c, plan).code, 0);
    }
    t.deepEqual(addresses(), []);
  },
);

serial("a container cannot reach the host's 127.0.0.1 services through route_localnet (CVE-2020-8558)", async (t) => {
  const a = await fakeContainer('g');
  const sa = start(t, a);
  t.is(sa.r.code, 0, sa.r.err);
  const www = join(root, 'www', 'g');
  const secret = spawn(
    '/usr/sbin/ip',
    ['netns', 'exec', H, BUSYBOX!, 'httpd', '-f', '-p', '127.0.0.1:7777', '-h', www],
    { stdio: 'ignore' },
  );
  started.push(secret);
  t.teardown(() => secret.kill('SIGKILL'));
  const gw = sa.plan.record.gateway!;
  for (let i = 0; i < 200 && get(H, 'http://127.0.0.1:7777/').code !== 0; i++) await sleep(10);
  t.is(get(H, 'http://127.0.0.1:7777/').out, 'hello g\n', 'the host reaches its own service');
  // inside, send 127.0.0.1 out of eth0 to the bridge, as a hostile root in a container can
  const ns = (cmd: string) => mustNs(H, ['nsenter', '--target', String(a.pid1), '--net', 'sh', '-c', cmd]);
  ns(`echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet; ip rule add pref 100 lookup local; ip rule del pref 0
      ip route add 127.0.0.1/32 via ${gw} dev eth0 table 100; ip rule add pref 10 to 127.0.0.1 lookup 100`);
  t.regex(ns('ip route get 127.0.0.1'), /dev eth0/);
  t.not(get(H, 'http://127.0.0.1:7777/', a.pid1).code, 0, 'dropped by the guard chain');
  secret.kill('SIGKILL');
  stop(a);
  t.is(exit(a, sa.plan).code, 0);
});

serial(
  "--network container:NAME: the joiner sees the other container's eth0; a stopped one is refused in one line",
  async (t) => {
    const a = await fakeContainer('h');
    const sa = start(t, a);
    t.is(sa.r.code, 0, sa.r.err);
    const ipA = readFileSync(join(sa.run, 'ip'), 'utf8').trim();
    t.regex(readFileSync(join(sa.run, 'pid1'), 'utf8'), new RegExp(`^${a.pid1} \\d+\\n$`));
    const joiner = (runDir: string) =>
      // in the background, as the plan starts unshare: $$ stays
      `set -eu\n${render([joinStep({ name: 'web', runDir })])}\n` +
      `${joinPrefix(systemBin('nsenter')).text} ${systemBin('ip')} -o -4 addr 8<&- &\nwait $!\n`;
    const r = inNs(H, ['sh', '-c', joiner(sa.run)]);
    t.is(r.code, 0, r.err);
    t.regex(r.out, new RegExp(`eth0\\s+inet ${ipA.replace(/\./g, '\\.')}/`));
    stop(a);
    for (let i = 0; i < 500 && existsSync(`/proc/${a.pid1}`); i++) await sleep(10);
    const gone = inNs(H, ['sh', '-c', joiner(sa.run)]);
    t.not(gone.code, 0);
    t.is(gone.err, 'tscontain: container web is not running: --network container:web needs it running\n');
    t.is(exit(a, sa.plan).code, 0);
  },
);
