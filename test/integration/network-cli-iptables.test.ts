// The bridge through the CLI with the iptables firewall (TSCONTAIN_FIREWALL=iptables), in a
// network namespace this test makes: tscontain runs there with a sysfs of that namespace (the
// machine's cgroup mounts moved into it), so its tsc0, its TSCONTAIN-* chains and its addresses
// (a network directory of its own) are the test's, and the machine's bridge, which other users'
// containers share, is never touched. An "outside host" namespace on a veth sees the NAT source.
// Traffic stays between these namespaces; deleting them at the end deletes every link and rule.
import test from 'ava';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, CLEAN_FDS, env, isRoot, until, waitFor, type Result } from './helpers.js';
import { removeTempDirs, tempDir } from '../fixtures/temp.js';

// the v2 guest leaves it to the native suite: the firewall does not depend on the cgroup version
const it = isRoot && !process.env.TSCONTAIN_TEST_NO_IPTABLES ? test.serial : test.skip;
const H = `tscontain-test-ih${process.pid}`; // the host
const E = `tscontain-test-ie${process.pid}`; // the outside host
const HOST_OUT = '198.18.0.5';
const OUT = '198.18.0.6';
const BUSYBOX = join(env.TSCONTAIN_ROOT, 'lib/images/busybox/rootfs/bin/busybox');
const netDir = join(tempDir('tscontain-iptnet-'), 'network');
const stage = tempDir('tscontain-iptcg-');
const cliEnv = { ...env, TSCONTAIN_FIREWALL: 'iptables', TSCONTAIN_NET_DIR: netDir };
const children = new Set<ChildProcess>();
const outside: ChildProcess[] = [];

/** In H, in a mount namespace of its own: a sysfs of H (its links), the machine's cgroups moved in. */
const IN_H = [
  'mount --rbind /sys/fs/cgroup "$1"',
  'mount -t sysfs sysfs /sys',
  'mount --move "$1" /sys/fs/cgroup',
  'shift',
  'exec "$@"',
].join(' && ');

/** tscontain in the test's host namespace, as a user runs it from a terminal. */
function cli(args: string[]) {
  const child = spawn(
    'nsenter',
    [`--net=/run/netns/${H}`, 'unshare', '--mount', '--propagation', 'slave', 'sh', '-c', IN_H, 'sh', stage].concat([
      '/bin/sh',
      CLEAN_FDS,
      BIN,
      ...args,
    ]),
    { env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Result>((res) =>
    child.on('close', (code, sig) => {
      children.delete(child);
      res({ code: code ?? 128 + (sig === 'SIGKILL' ? 9 : 15), stdout, stderr });
    }),
  );
  return { child, done, stdout: () => stdout };
}
const tsc = (args: string[]) => cli(args).done;

function inNs(ns: string, cmd: string[], input?: string) {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { input, encoding: 'utf8', timeout: 30000 });
  return { code: r.status ?? 1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

/** GET with busybox nc from a namespace (busybox wget crashes on this kind of machine). */
function get(ns: string, host: string, port: number, path = '/') {
  const r = inNs(ns, [BUSYBOX, 'nc', '-w', '5', host, String(port)], `GET ${path} HTTP/1.0\r\n\r\n`);
  return /^HTTP\/1\.[01] 200 /.test(r.out) ? r.out.slice(r.out.indexOf('\r\n\r\n') + 4) : undefined;
}

const ours = () =>
  inNs(H, ['iptables-save'])
    .out.split('\n')
    .filter((l) => /tscontain/i.test(l));
const dnatRules = () => ours().filter((l) => l.startsWith('-A TSCONTAIN-DNAT'));
const claims = () => (existsSync(join(netDir, 'ports')) ? readdirSync(join(netDir, 'ports')) : []);
const addresses = () =>
  existsSync(join(netDir, 'addresses')) ? readdirSync(join(netDir, 'addresses')).filter((f) => !f.startsWith('.')) : [];

const WWW =
  'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && echo ready && exec httpd -f -p 80 -h /www';

test.before(() => {
  if (!isRoot) return;
  for (const ns of [H, E]) spawnSync('ip', ['netns', 'add', ns]);
  const must = (ns: string, cmd: string[]) => {
    const r = inNs(ns, cmd);
    if (r.code !== 0) throw new Error(`${cmd.join(' ')} in ${ns}: ${r.err}`);
  };
  must(H, ['ip', 'link', 'set', 'lo', 'up']);
  must(E, ['ip', 'link', 'set', 'lo', 'up']);
  must(H, ['ip', 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', E]);
  must(H, ['ip', 'addr', 'add', `${HOST_OUT}/30`, 'dev', 'ext0']);
  must(H, ['ip', 'link', 'set', 'ext0', 'up']);
  must(E, ['ip', 'addr', 'add', `${OUT}/30`, 'dev', 'eth0']);
  must(E, ['ip', 'link', 'set', 'eth0', 'up']);
  // the outside host answers with the address it sees the client at (busybox httpd CGI: REMOTE_ADDR)
  const www = tempDir('tscontain-iptout-');
  mkdirSync(join(www, 'cgi-bin'));
  writeFileSync(
    join(www, 'cgi-bin/peer'),
    '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$REMOTE_ADDR"\n',
  );
  chmodSync(join(www, 'cgi-bin/peer'), 0o755);
  outside.push(
    spawn('ip', ['netns', 'exec', E, BUSYBOX, 'httpd', '-f', '-p', `${OUT}:80`, '-h', www], { stdio: 'ignore' }),
  );
});

test.after.always(async () => {
  if (!isRoot) return;
  const left = [...children];
  for (const c of left) c.kill('SIGKILL');
  await until(() => left.every((c) => c.exitCode !== null || c.signalCode !== null), 'the tscontain processes to end');
  // records of containers this file named, should a test have failed half-way
  for (const n of ['tsc-ipt-a', 'tsc-ipt-k']) await tsc(['rm', '-f', n]);
  for (const c of outside) c.kill('SIGKILL');
  for (const ns of [H, E]) spawnSync('ip', ['netns', 'del', ns]);
  removeTempDirs();
});

it('iptables: published on 127.0.0.1, the bridge and the host address; NAT out; a port taken twice is refused, nothing left', async (t) => {
  const a = cli(['run', '--rm', '--name', 'tsc-ipt-a', '-h', 'web-a', '-p', '18181:80', 'busybox', 'sh', '-c', WWW]);
  try {
    await waitFor(a.stdout, /ready/);
    t.is(await until(() => get(H, '127.0.0.1', 18181), 'the published port on 127.0.0.1'), 'hello from web-a\n');
    const info = JSON.parse((await tsc(['inspect', 'tsc-ipt-a'])).stdout)[0];
    const gw = info.NetworkSettings.gateway as string;
    t.is(get(H, gw, 18181), 'hello from web-a\n', "on the bridge's own address");
    t.is(get(E, HOST_OUT, 18181), 'hello from web-a\n', "from the outside host, to the host's address");
    const id = info.Id as string;
    t.deepEqual(
      dnatRules().map((l) => l.replace(/ --to-destination \S+$/, '')),
      [`-A TSCONTAIN-DNAT -p tcp -m tcp --dport 18181 -m comment --comment "tscontain:${id}" -j DNAT`],
    );
    t.deepEqual(claims(), ['tcp-18181']);
    t.false(inNs(H, ['/usr/sbin/nft', 'list', 'table', 'ip', 'tscontain']).code === 0, 'no nft table: iptables alone');

    const peer = await tsc([
      'run',
      '--rm',
      'busybox',
      'sh',
      '-c',
      `printf 'GET /cgi-bin/peer HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${OUT} 80`,
    ]);
    t.regex(
      peer.stdout,
      new RegExp(`\\r\\n\\r\\n${HOST_OUT.replace(/\./g, '\\.')}\\n$`),
      'the outside host sees the host',
    );

    const before = ours();
    const b = await tsc(['run', '--rm', '-p', '9000:90', '-p', '18181:80', 'busybox', 'true']);
    t.is(b.code, 125);
    t.regex(b.stderr, /host port 18181\/tcp is already published by another container/);
    t.deepEqual(ours(), before, 'no rule added, none removed');
    t.deepEqual(claims(), ['tcp-18181'], '9000 given back');
    t.is(addresses().length, 1, "the refused container's address is free again");
  } finally {
    await tsc(['rm', '-f', 'tsc-ipt-a']);
  }
  await a.done;
  t.deepEqual(dnatRules(), [], 'its rule went with it');
  t.deepEqual(claims(), []);
  t.deepEqual(addresses(), []);
  t.is(get(H, '127.0.0.1', 18181), undefined, 'unpublished');
});

it('iptables: after tscontain is SIGKILLed, gc removes the rule, the claim and the address', async (t) => {
  const k = cli(['run', '--name', 'tsc-ipt-k', '-h', 'web-k', '-p', '18282:80', 'busybox', 'sh', '-c', WWW]);
  await waitFor(k.stdout, /ready/);
  t.is(await until(() => get(H, '127.0.0.1', 18282), 'the published port'), 'hello from web-k\n');
  k.child.kill('SIGKILL'); // the supervisor: no exit steps run
  await k.done;
  t.is(dnatRules().length, 1, 'left behind');
  t.deepEqual(claims(), ['tcp-18282']);
  await until(
    async () => {
      await tsc(['gc']);
      return !dnatRules().length && !claims().length && !addresses().length;
    },
    () => `gc to remove ${dnatRules().join(' ')} ${claims()} ${addresses()}`,
  );
  t.is(get(H, '127.0.0.1', 18282), undefined, 'unpublished');
  await tsc(['rm', '-f', 'tsc-ipt-k']);
});

it('iptables: network prune removes the bridge, the chains and the jumps; doctor names the backend', async (t) => {
  t.true(
    ours().some((l) => l.startsWith(':TSCONTAIN-')),
    'the chains stay while no container runs',
  );
  const p = await tsc(['network', 'prune']);
  t.is(p.code, 0, p.stderr);
  t.deepEqual(ours(), []);
  t.false(inNs(H, ['ip', '-o', 'link']).out.includes('tsc0'));
  t.false(existsSync(join(netDir, 'made-iptables')));
  const d = await tsc(['doctor']);
  t.regex(d.stdout, /firewall.*iptables \(TSCONTAIN_FIREWALL=iptables\): the iptables chains TSCONTAIN-\*/);
  t.regex(d.stdout, /bridge, veth, iptables.*work \(tried in a throwaway network namespace\)/);
});
