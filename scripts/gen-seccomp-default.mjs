// Writes src/kernel/seccomp-default.ts: docker's default seccomp profile, the one `tscontain run` applies
// unless told otherwise.
//   node scripts/gen-seccomp-default.mjs [default.json]
// Without an argument it takes profiles/seccomp/default.json from Debian's golang-github-docker-docker-dev
// package (moby's source of docker 20.10.24; Apache-2.0), fetched with `apt-get download`. Docker has
// tightened and widened that profile since; CHANGES below brings it to what newer docker releases do,
// each change with its reason, so the data stays reviewable against its source.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PACKAGE = 'golang-github-docker-docker-dev';
const IN_PACKAGE = 'usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json';

function fromDebian() {
  const dir = mkdtempSync(join(tmpdir(), 'tscontain-seccomp-gen-'));
  try {
    execFileSync('apt-get', ['download', PACKAGE], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
    execFileSync('dpkg-deb', ['-x', deb, 'x'], { cwd: dir });
    const origin = `Debian package ${deb.replace(/\.deb$/, '')}, ${IN_PACKAGE.replace(/.*github.com\//, '')}`;
    return { text: readFileSync(join(dir, 'x', IN_PACKAGE), 'utf8'), origin };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const empty = (o) => !o || Object.keys(o).length === 0;
const plain = (s) => !s.args?.length && empty(s.includes) && empty(s.excludes);
const allowAll = (p) => p.syscalls.find((s) => s.action === 'SCMP_ACT_ALLOW' && plain(s));
const rule = (p, pred) => p.syscalls.find(pred);
const drop = (list, names) => list.filter((n) => !names.includes(n));
const add = (list, names) => [...new Set([...list, ...names])].sort();
const capRule = (p, cap) => rule(p, (s) => s.action === 'SCMP_ACT_ALLOW' && s.includes?.caps?.join() === cap);

/** Newer docker's decisions, applied to the 20.10 profile. */
const CHANGES = [
  [
    'io_uring_setup, io_uring_enter and io_uring_register are denied (docker 25): a large kernel attack surface that ' +
      'seccomp cannot see into',
    (p) => {
      allowAll(p).names = drop(allowAll(p).names, ['io_uring_setup', 'io_uring_enter', 'io_uring_register']);
    },
  ],
  [
    'socket() is allowed for every address family but AF_ALG (38) and AF_VSOCK (40): vsock reaches the host and ' +
      'hypervisor outside any namespace',
    (p) => {
      allowAll(p).names = drop(allowAll(p).names, ['socket']);
      const at = p.syscalls.indexOf(allowAll(p)) + 1;
      p.syscalls.splice(
        at,
        0,
        ...[
          ['SCMP_CMP_LT', 38],
          ['SCMP_CMP_EQ', 39],
          ['SCMP_CMP_GT', 40],
        ].map(([op, value]) => ({ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value, op }] })),
      );
    },
  ],
  [
    'process_vm_readv and process_vm_writev follow ptrace: allowed on Linux >= 4.8, where they are checked like ptrace',
    (p) => {
      const r = rule(p, (s) => s.includes?.minKernel === '4.8');
      r.names = add(r.names, ['process_vm_readv', 'process_vm_writev']);
    },
  ],
  [
    'name_to_handle_at is allowed to all (only open_by_handle_at, kept behind CAP_DAC_READ_SEARCH, opens files by ' +
      'handle)',
    (p) => {
      const admin = capRule(p, 'CAP_SYS_ADMIN');
      admin.names = drop(admin.names, ['name_to_handle_at']);
      allowAll(p).names = add(allowAll(p).names, ['name_to_handle_at']);
    },
  ],
  [
    "pkey_alloc, pkey_free and pkey_mprotect are allowed: memory protection keys act on the caller's own memory",
    (p) => {
      allowAll(p).names = add(allowAll(p).names, ['pkey_alloc', 'pkey_free', 'pkey_mprotect']);
    },
  ],
  [
    'syscalls added after Linux 6.1 that docker allows (unknown to tables built from older headers, which then ' +
      'answer ENOSYS)',
    (p) => {
      allowAll(p).names = add(allowAll(p).names, [
        'cachestat',
        'fchmodat2',
        'futex_requeue',
        'futex_wait',
        'futex_wake',
        'getxattrat',
        'listmount',
        'listxattrat',
        'map_shadow_stack',
        'mseal',
        'removexattrat',
        'setxattrat',
        'statmount',
        'uretprobe',
      ]);
      const admin = capRule(p, 'CAP_SYS_ADMIN');
      admin.names = add(admin.names, ['lsm_get_self_attr', 'lsm_list_modules', 'lsm_set_self_attr']);
    },
  ],
  [
    'the narrow capabilities of Linux 5.8 unlock their syscalls: CAP_BPF bpf, CAP_PERFMON perf_event_open',
    (p) => {
      const at = p.syscalls.indexOf(capRule(p, 'CAP_SYSLOG')) + 1;
      p.syscalls.splice(
        at,
        0,
        { names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_BPF'] } },
        { names: ['perf_event_open'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_PERFMON'] } },
      );
    },
  ],
  [
    "CAP_SYS_NICE also allows set_mempolicy_home_node, CAP_SYS_TIME clock_settime64 (the 32-bit ABIs' " +
      '64-bit-time call)',
    (p) => {
      capRule(p, 'CAP_SYS_NICE').names = add(capRule(p, 'CAP_SYS_NICE').names, ['set_mempolicy_home_node']);
      capRule(p, 'CAP_SYS_TIME').names = add(capRule(p, 'CAP_SYS_TIME').names, ['clock_settime64']);
    },
  ],
  [
    'clone3 answers ENOSYS (so the C library falls back to clone, whose flags the filter can check) unless ' +
      'CAP_SYS_ADMIN, on every arch',
    (p) => {
      p.syscalls = p.syscalls.filter((s) => !(s.names.join() === 'clone3' && s.action === 'SCMP_ACT_ERRNO'));
      const clone = rule(p, (s) => s.names.includes('clone') && s.args?.length && s.excludes?.arches);
      const enosys = {
        names: ['clone3'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 38,
        excludes: { caps: ['CAP_SYS_ADMIN'] },
      };
      p.syscalls.splice(p.syscalls.indexOf(clone) + 2, 0, enosys);
    },
  ],
  [
    'defaultErrnoRet is written out: EPERM (1), what docker returns for a denied call',
    (p) => {
      p.defaultErrnoRet = 1;
    },
  ],
];

/** Drops the empty fields of the old format ("args": [], "comment": "", "includes": {}). */
function tidy(p) {
  const { defaultAction, defaultErrnoRet, archMap, syscalls } = p;
  return {
    defaultAction,
    defaultErrnoRet,
    archMap,
    syscalls: syscalls.map((s) => {
      const o = { names: s.names, action: s.action };
      if (s.errnoRet !== undefined && s.errnoRet !== null) o.errnoRet = s.errnoRet;
      if (s.args?.length) o.args = s.args;
      if (Object.keys(s.includes ?? {}).length) o.includes = s.includes;
      if (Object.keys(s.excludes ?? {}).length) o.excludes = s.excludes;
      return o;
    }),
  };
}

/** JSON with one rule per block and names wrapped, for readable diffs. */
function format(p) {
  const wrap = (names) => {
    const lines = [];
    let line = '';
    for (const n of names.map((x) => JSON.stringify(x))) {
      if (line && line.length + n.length + 2 > 104) {
        lines.push(line + ',');
        line = '';
      }
      line += (line ? ', ' : '') + n;
    }
    return lines
      .concat(line)
      .map((l) => '        ' + l)
      .join('\n');
  };
  const rules = p.syscalls.map((s) => {
    const { names, ...rest } = s;
    const more = Object.entries(rest)
      .map(([k, v]) => `,\n      ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
      .join('');
    return `    {\n      "names": [\n${wrap(names)}\n      ]${more}\n    }`;
  });
  return (
    `{\n  "defaultAction": ${JSON.stringify(p.defaultAction)},\n  "defaultErrnoRet": ${p.defaultErrnoRet},\n` +
    `  "archMap": [\n${p.archMap.map((a) => `    ${JSON.stringify(a)}`).join(',\n')}\n  ],\n` +
    `  "syscalls": [\n${rules.join(',\n')}\n  ]\n}\n`
  );
}

const src = process.argv[2] ? { text: readFileSync(process.argv[2], 'utf8'), origin: process.argv[2] } : fromDebian();
const profile = JSON.parse(src.text);
for (const [, change] of CHANGES) change(profile);
const json = format(tidy(profile));
if (JSON.stringify(JSON.parse(json)) !== JSON.stringify(tidy(profile))) throw new Error('format() changed the data');
if (/[`\\$]/.test(json)) throw new Error('the profile has a character a template literal would change');
/** A comment paragraph, wrapped at 116 columns. */
function comment(text, first = '// ', rest = '// ') {
  const lines = [];
  let line = '';
  for (const w of text.split(' ')) {
    const prefix = lines.length ? rest : first;
    if (line && prefix.length + line.length + w.length + 1 > 116) {
      lines.push(line);
      line = '';
    }
    line += (line ? ' ' : '') + w;
  }
  return lines
    .concat(line)
    .map((l, i) => (i ? rest : first) + l)
    .join('\n');
}

const out = `// Generated by scripts/gen-seccomp-default.mjs: do not edit.
${comment(
  `Docker's default seccomp profile (moby, profiles/seccomp/default.json; Apache License 2.0, Copyright ` +
    `Docker, Inc. and the Moby authors), taken from ${src.origin}, ` +
    'with these changes that newer docker releases made:',
)}
${CHANGES.map(([why]) => comment(why, '//  - ', '//    ')).join('\n')}
export const DOCKER_DEFAULT_PROFILE_JSON = \`${json}\`;
`;
writeFileSync('src/kernel/seccomp-default.ts', out);
console.log(`wrote src/kernel/seccomp-default.ts from ${src.origin}`);
