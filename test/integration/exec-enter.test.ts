// exec-enter.pl as root, in a mount namespace of the test's own whose mounts are shared (as systemd
// makes the host's): the files it opens are read-only for the command it execs, at fds 3, 4, 5, and
// none of its binds shows in the namespace it was started from. Every probe of a host file opens it
// for append and writes nothing.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { hostTools } from '../../src/host/tools.js';
import { enterArgv } from '../../src/kernel/exec-enter.js';
import { CLEAN_FDS, isRoot } from './helpers.js';

const it = isRoot ? test : test.skip;

// $1: the program; $2: the loader, the first path; the rest: exec-enter.pl's arguments. The command
// probes its fds; then the namespace it started in is searched for a mount at the loader's path.
const OUTER = `prog=$1 ldso=$2; shift 2
perl -e "$prog" -- "$@"
echo "status=$?"
grep -c " $ldso " /proc/self/mountinfo || :
`;
const PROBE = `
for n in 3 4 5; do echo "fd$n=$(readlink /proc/self/fd/$n)"; done
if [ -w /proc/self/fd/3 ]; then echo writable; else echo read-only; fi
ls /proc/self/fd | awk '$1 >= 100 { print "high fd " $1 }'
`;

it('exec-enter.pl: fds 3, 4, 5 are the paths, read-only; nothing propagates back; no other fd', (t) => {
  const tools = hostTools({ ip: false, awk: false, perl: true });
  if (!tools.ldso) return t.fail('no dynamic loader found');
  const paths = [tools.ldso, tools.perl!, tools.libPath[0]];
  const prog = enterArgv({ perl: '', cgroups: [], readOnly: [] }, [])[2];
  const args = [...paths.flatMap((p) => ['--ro', p]), '--', 'sh', '-c', PROBE];
  const r = spawnSync(
    'sh',
    [CLEAN_FDS, 'unshare', '--mount', '--propagation', 'shared', 'sh', '-c', OUTER, 'sh', prog, tools.ldso, ...args],
    { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
  );
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.deepEqual(
    lines.slice(0, 3),
    paths.map((p, i) => `fd${3 + i}=${p}`),
    r.stdout,
  );
  // access(2): EROFS for a read-only mount (an open would say ETXTBSY while a container runs the loader)
  t.is(lines[3], 'read-only', 'the loader opens for writing through its fd');
  t.deepEqual(lines.slice(4), ['status=0', '0'], 'no high fd reached the command; no bind in the outer namespace');
});
