// The plan for a given spec, for cgroup v1 and v2 layouts. No root needed: nothing is executed
// except `sh -n`, which only parses the script.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupDriver } from '../../src/cgroup.js';
import { hostTools } from '../../src/host.js';
import { planRun, type PlanContext } from '../../src/plan.js';
import { buildRunRequest } from '../../src/spec.js';
import { fakeRootfs, fakeCgroupV1, fakeCgroupV2 } from './helpers.js';
import { tempDir, removeTempDirs } from '../fixtures/temp.js';

const ID = 'b'.repeat(64);

/** --dry-run: planning needs no root (the plan is the same) */
function request(argv: string[], roots: { lib: string; run: string }) {
  const req = buildRunRequest(argv, roots, {}, ID);
  if (req.help) throw new Error('help');
  return req;
}

function plan(args: string[], cgroot = fakeCgroupV1()) {
  const rootfs = fakeRootfs();
  const roots = { lib: '/var/lib/tscontain', run: '/run/tscontain' };
  const req = request(['--dry-run', ...args.slice(0, -1), rootfs, ...args.slice(-1)[0].split(' ')], roots);
  const ctx: PlanContext = { roots, cgroup: cgroupDriver(ID, req.spec.limits, cgroot), tools: hostTools(), bin: (n) => `/usr/bin/${n}` };
  return planRun(req.spec, ctx);
}

function syntaxOk(script: string) {
  const f = join(tempDir('tscontain-plan-'), 'plan.sh');
  writeFileSync(f, script);
  execFileSync('/bin/sh', ['-n', f]);
}

test('default plan: namespaces, hostname = short id, lo up, overlay, pivot_root, cleanup', (t) => {
  const p = plan(['--rm', 'sh -c true']);
  const s = p.script;
  syntaxOk(s);
  t.regex(s, /unshare --uts --ipc --mount --pid --net --fork --kill-child=SIGKILL --propagation private/);
  t.regex(s, new RegExp(`printf '%s' ${ID.slice(0, 12)} > /proc/sys/kernel/hostname`));
  t.regex(s, /ip link set lo up & tsc_ip=\$!/, 'lo comes up while the mounts are made');
  t.true(s.indexOf('wait "$tsc_ip"') > s.indexOf('mount --all') && s.indexOf('wait "$tsc_ip"') < s.indexOf('pivot_root'), 'and is waited for before the switch');
  t.regex(s, /"overlay \/dev +overlay lowerdir=\$tsc_dev,upperdir=\$tsc_ctr\/dev\/upper,workdir=\$tsc_ctr\/dev\/work,nosuid,X-mount\.mkdir 0 0"/, '/dev: the shared skeleton below, the container\'s own layer above');
  t.notRegex(s, /cp -a "\$tsc_dev/);
  t.regex(s, /supervise "\$@"/);
  t.regex(s, /read -r tsc_x <&7; kill -s ALRM \$\$/, 'dies with its parent without setpriv');
  t.regex(s, /"overlay \/\. overlay lowerdir=\$tsc_image,upperdir=\$tsc_ctr\/upper,workdir=\$tsc_ctr\/work 0 0"/);
  t.regex(s, /'proc +\/proc +proc +nosuid,nodev,noexec/);
  t.regex(s, /'sysfs +\/sys +sysfs +ro,/);
  t.regex(s, /mount --all --fstab "\$tsc_run\/fstab" --target-prefix "\$tsc_root"/);
  t.regex(s, /pivot_root \. dev\/shm/);
  t.regex(s, /umount -l \/dev\/shm/);
  t.regex(s, /exec "\$@"/, 'no user switch: the shell execs the command itself');
  t.regex(s, /find "\$tsc_ctr" "\$tsc_run" "\$tsc_cg_memory" .* -o -delete/, '--rm removes the container and its cgroup in one pass');
  t.regex(s, /--init sh -c true <\/dev\/null/, 'no -i: stdin is /dev/null');
  t.regex(s, /tsc_cg_memory=.*\/memory\/tscontain\/\$tsc_id/);
  t.true(s.indexOf('cgroup.procs') < s.indexOf('mount --all'), 'cgroup joined before anything runs');
  t.regex(s, /tsc_id=b{64}\n/);
  // every step names its kernel feature
  for (const st of [...p.host, ...p.init, ...p.exit]) t.truthy(st.why, st.title);
});

test('--network host keeps the host network namespace', (t) => {
  const s = plan(['--network', 'host', 'sh']).script;
  t.notRegex(s, /--net /);
  t.notRegex(s, /ip link set lo up/);
});

test('--no-pivot uses chroot and says so', (t) => {
  const p = plan(['--no-pivot', 'sh']);
  syntaxOk(p.script);
  t.notRegex(p.script, /pivot_root \./);
  t.regex(p.script, /unshare --root="\$tsc_root"/);
  t.regex(p.script, /chroot\(2\).*escape/);
});

test('-u, -w, -e, -h, -i, --read-only reach the script', (t) => {
  const s = plan(['-i', '-u', 'app', '-w', '/srv/data', '-e', 'FOO=bar baz', '-h', 'box', '--read-only', 'sh']).script;
  syntaxOk(s);
  t.regex(s, /--wd=\/srv\/data --setgid 1001 --setuid 1000 --/);
  t.regex(s, /'FOO=bar baz'/);
  t.regex(s, /HOSTNAME=box/);
  t.regex(s, /HOME=\/home\/app/);
  t.regex(s, /--init sh <&5/);
  t.regex(s, /mount -o remount,bind,ro "\$tsc_root"/);
});

test('limits on cgroup v1: v1 files, OOM from memory.oom_control', (t) => {
  const s = plan(['-m', '32m', '--pids-limit', '20', '--cpus', '0.5', 'sh']).script;
  t.regex(s, /echo 33554432 > "\$tsc_cg_memory"\/memory.limit_in_bytes/);
  t.regex(s, /echo 20 > "\$tsc_cg_pids"\/pids.max/);
  t.regex(s, /echo 50000 > "\$tsc_cg_cpu"\/cpu.cfs_quota_us/);
  t.regex(s, /memory.oom_control/);
  t.regex(s, /ran out of memory \(limit 32MiB\)/);
});

test('limits on cgroup v2: one cgroup, v2 files, OOM from memory.events', (t) => {
  const p = plan(['-m', '32m', '--pids-limit', '20', '--cpus', '0.5', 'sh'], fakeCgroupV2());
  syntaxOk(p.script);
  t.is(p.cgroup.version, 2);
  t.regex(p.script, /echo 33554432 > "\$tsc_cg_unified"\/memory.max/);
  t.regex(p.script, /echo '50000 100000' > "\$tsc_cg_unified"\/cpu.max/);
  t.regex(p.script, /memory.events/);
  t.notRegex(p.script, /memory.oom_control/);
});

test('the dry-run plan of an image not yet built includes building it', (t) => {
  const roots = { lib: tempDir('tscontain-lib-'), run: '/run/tscontain' };
  const req = request(['--dry-run', 'busybox'], roots);
  t.true(req.dryRun);
  const p = planRun(req.spec, { roots, cgroup: cgroupDriver(ID, {}, fakeCgroupV1()), tools: hostTools(), bin: (n) => n });
  t.regex(p.host[0].lines[0], /rootfs-recipes\/busybox/);
  t.regex(p.script, /--init sh/);
});

test.after.always(removeTempDirs);

test('step 1\'s directories are data: tscontain makes them itself; the script makes them only when missing', (t) => {
  for (const cg of [fakeCgroupV1(), fakeCgroupV2()]) {
    const p = plan(['--name', 'web', 'sh'], cg);
    const last = p.cgroup.all[p.cgroup.all.length - 1];
    t.deepEqual(p.dirs.slice(0, 6), [p.run, ...['upper', 'work', 'dev/upper', 'dev/work', 'rootfs'].map((d) => join(p.ctr, d))]);
    t.true(p.dirs.includes('/var/lib/tscontain/names'), 'the names directory with --name');
    t.deepEqual(p.dirs.slice(-p.cgroup.all.length), p.cgroup.all, 'the cgroup directories last');
    const ref = p.cgroup.mkdirs()[p.cgroup.mkdirs().length - 1];
    const line = p.script.split('\n').find((l) => l.includes('mkdir -p "$tsc_run"'))!;
    t.true(line.trim().startsWith(`[ -d ${ref} ] || mkdir -p`), line);
    t.true(p.script.includes(`${ref.slice(1, -1).replace('$', '')}=${last.slice(0, -ID.length)}$tsc_id`), 'the guard names the directory made last');
  }
});
