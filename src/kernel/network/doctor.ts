// `tscontain doctor`, networking part: the programs, the firewall (nft, else iptables), and what
// the kernel must do, tried for real in a throwaway network namespace (a bridge, a veth pair, the
// firewall's whole ruleset): nothing on the host changes. Then the state of the bridge if it
// exists (forwarding, route_localnet).
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { TscError } from '../../errors.js';
import type { Check, DoctorEnv } from '../../host/doctor.js';
import { bridge } from './bridge.js';
import { FIREWALL_PROGRAMS, type FirewallFacts, chooseFirewall, firewall } from './firewall.js';
import { netPaths } from './store.js';
import { parseCidr } from './ipv4.js';

const read = (f: string) => {
  try {
    return readFileSync(f, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** The probe run in a new network namespace: every kernel feature the bridge uses (no host change). */
export const PROBE_SCRIPT = [
  'set -e',
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin   # not node_modules/.bin/nft (@vercel/nft)',
  'ip link add tscdoctor0 type bridge',
  'ip link add tscdoctora type veth peer name tscdoctorb',
  'ip link set tscdoctora master tscdoctor0',
].join('\n');

const KERNEL_NEEDS = {
  nft:
    'the kernel needs bridge, veth, nf_tables with nat, fib and masquerade ' +
    '(CONFIG_BRIDGE, CONFIG_VETH, CONFIG_NFT_NAT, CONFIG_NFT_FIB_IPV4, CONFIG_NFT_MASQ)',
  iptables:
    'the kernel needs bridge, veth, and iptables nat, raw, conntrack, addrtype, comment, masquerade ' +
    '(CONFIG_IP_NF_NAT, CONFIG_IP_NF_RAW, CONFIG_NETFILTER_XT_MATCH_CONNTRACK, ..._ADDRTYPE, ..._COMMENT)',
};

function firewallFacts(env: DoctorEnv, forced: string | undefined): FirewallFacts {
  try {
    return chooseFirewall(forced, (p) => !!env.which(p));
  } catch (e) {
    if (e instanceof TscError) return { installed: [], why: e.message };
    throw e;
  }
}

/** `forced`: TSCONTAIN_FIREWALL, as the host facts read it. */
export function networkChecks(env: DoctorEnv, forced: string | undefined = process.env.TSCONTAIN_FIREWALL): Check[] {
  const out: Check[] = [];
  const add = (what: string, status: Check['status'], detail: string, fix?: string) =>
    out.push({ what, status, detail, fix });
  const fw = firewallFacts(env, forced);
  const tools: [string, string][] = [
    ['ip', 'iproute2'],
    ...(fw.use
      ? FIREWALL_PROGRAMS[fw.use].programs.map((p): [string, string] => [p, FIREWALL_PROGRAMS[fw.use!].pkg])
      : []),
    ['nsenter', 'util-linux'],
    ['flock', 'util-linux'],
  ];
  const missing = tools.filter(([t]) => !env.which(t));
  // --network none and host work without these, so a missing one is a warning
  add(
    'network programs',
    missing.length ? 'warn' : 'ok',
    missing.length
      ? `missing: ${missing.map(([t]) => t).join(', ')} (--network bridge needs them)`
      : tools.map(([t]) => t).join(', '),
    missing.length ? `apt-get install ${[...new Set(missing.map(([, p]) => p))].join(' ')}` : undefined,
  );

  // the default network is the bridge: without a firewall program `run` fails unless told otherwise
  add(
    'firewall',
    fw.use ? 'ok' : 'fail',
    fw.use ? `${fw.why}: ${firewall(fw.use).what}` : `${fw.why} (--network bridge, the default, needs one)`,
    fw.use ? undefined : 'apt-get install nftables',
  );

  const fwd = read(join(env.proc, 'sys/net/ipv4/ip_forward'));
  add(
    'ip forwarding',
    fwd === undefined ? 'fail' : 'ok',
    fwd === undefined
      ? 'no /proc/sys/net/ipv4/ip_forward'
      : fwd === '1'
        ? 'on'
        : "off now: turned on with the bridge (other forwarding stays off: tscontain's forward chain drops it)",
    fwd === undefined ? 'a kernel with IPv4 networking' : undefined,
  );

  const what = `bridge, veth, ${fw.use === 'iptables' ? 'iptables' : 'nftables'}`;
  if (env.uid === 0 && !missing.length && fw.use) {
    const paths = netPaths({ lib: '/nonexistent', run: '/nonexistent' });
    const b = bridge(parseCidr('172.31.0.0/16')!, paths, (n) => n, fw.use);
    const r = env.probe('unshare', ['--net', 'sh', '-c', `${PROBE_SCRIPT}\n${firewall(fw.use).probe(b)}\n`]);
    add(
      what,
      r.code === 0 ? 'ok' : 'fail',
      r.code === 0
        ? `a bridge, a veth pair and ${firewall(fw.use).what} work (tried in a throwaway network namespace)`
        : `tried in a throwaway network namespace: ${r.out.trim().split('\n').slice(-2).join(' ')}`,
      r.code === 0 ? undefined : KERNEL_NEEDS[fw.use],
    );
  } else if (env.uid !== 0) add(what, 'ok', 'not tried without root');

  const rl = read(join(env.proc, 'sys/net/ipv4/conf/tsc0/route_localnet'));
  if (rl !== undefined)
    add(
      'bridge tsc0',
      rl === '1' && fwd === '1' ? 'ok' : 'warn',
      `exists; route_localnet ${rl}, ip_forward ${fwd}`,
      rl === '1' && fwd === '1' ? undefined : 'something reset them: tscontain network prune, then start a container',
    );
  return out;
}
