// The bridge through the CLI, with real containers: traffic only between this machine and the
// containers it starts. Publishing, container to container, a port taken twice, --network container.
import test from 'ava';
import { isRoot, start, tsc, waitFor } from './helpers.js';
import { DEADLINE_MS, SLOWDOWN } from '../fixtures/poll.js';

const it = isRoot ? test.serial : test.skip;

/** GET from the host, with Node.js (busybox wget is not used: it crashes on this kind of machine). */
async function get(url: string): Promise<string> {
  for (const end = Date.now() + DEADLINE_MS; ; ) {
    try {
      return await (await fetch(url, { signal: AbortSignal.timeout(3000 * SLOWDOWN) })).text();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const WWW =
  'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && echo ready && exec httpd -f -p 80 -h /www';

it('a published port answers on 127.0.0.1 and on the bridge; a second container cannot take it; port, ps and inspect show it', async (t) => {
  const a = start(['run', '--rm', '--name', 'tsc-net-a', '-h', 'web-a', '-p', '18181:80', 'busybox', 'sh', '-c', WWW]);
  try {
    await waitFor(a.stdout, /ready/);
    t.is(await get('http://127.0.0.1:18181/'), 'hello from web-a\n');
    const port = await tsc(['port', 'tsc-net-a']);
    t.is(port.stdout, '80/tcp -> 0.0.0.0:18181\n');
    t.regex((await tsc(['ps'])).stdout, /0\.0\.0\.0:18181->80\/tcp +tsc-net-a/);
    const info = JSON.parse((await tsc(['inspect', 'tsc-net-a'])).stdout)[0];
    t.is(info.NetworkSettings.Ports[0].hostPort, 18181);
    t.is(info.NetworkSettings.bridge, 'tsc0');
    const gw = info.NetworkSettings.gateway as string;
    t.is(await get(`http://${gw}:18181/`), 'hello from web-a\n', "on the bridge's own address");
    const b = await tsc(['run', '--rm', '-p', '18181:80', 'busybox', 'true']);
    t.is(b.code, 125);
    t.regex(b.stderr, /host port 18181\/tcp is already published/);
    // another container reaches it by address; one that joins its network namespace sees its eth0
    const ip = (await tsc(['exec', 'tsc-net-a', 'sh', '-c', "ip -4 -o addr show eth0 | awk '{print $4}'"])).stdout
      .trim()
      .split('/')[0];
    t.regex(ip, /^\d+\.\d+\.\d+\.\d+$/);
    const c = await tsc(['run', '--rm', 'busybox', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc ${ip} 80`]);
    t.regex(c.stdout, /hello from web-a/);
    const j = await tsc([
      'run',
      '--rm',
      '--network',
      'container:tsc-net-a',
      'busybox',
      'sh',
      '-c',
      'ip -4 -o addr show eth0; hostname; cat /etc/hosts; echo "192.0.2.99 joined" >> /etc/hosts',
    ]);
    t.regex(j.stdout, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/`));
    // as in docker, it also takes that container's hostname and shares its /etc files
    t.regex(j.stdout, /^web-a$/m, 'its hostname');
    t.regex(j.stdout, new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+web-a tsc-net-a$`, 'm'), 'its /etc/hosts');
    const shared = await tsc(['exec', 'tsc-net-a', 'grep', 'joined', '/etc/hosts']);
    t.is(shared.stdout, '192.0.2.99 joined\n', 'one /etc/hosts: a line added by the joiner is in the other');
  } finally {
    await tsc(['rm', '-f', 'tsc-net-a']);
  }
  await a.done;
  t.not((await tsc(['ps', '-a'])).stdout.includes('tsc-net-a'), true);
});

it("/etc/resolv.conf, /etc/hosts and /etc/hostname are the container's own, with --dns, --dns-search and --add-host", async (t) => {
  const r = await tsc([
    'run',
    '--rm',
    '-h',
    'box',
    '--dns',
    '192.0.2.53',
    '--dns-search',
    'example.test',
    '--add-host',
    'db:192.0.2.10',
    'busybox',
    'sh',
    '-c',
    'cat /etc/resolv.conf /etc/hosts /etc/hostname; echo changed > /etc/hostname',
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^nameserver 192\.0\.2\.53$/m);
  t.regex(r.stdout, /^search example\.test$/m);
  t.regex(r.stdout, /^192\.0\.2\.10\s+db$/m);
  t.regex(r.stdout, /\sbox$/m);
  t.not((await import('node:fs')).readFileSync('/etc/hostname', 'utf8'), 'changed\n', "the host's file is untouched");
});
