// A tiny eBPF interpreter (the subset a cgroup device program needs, decoded from the bytes), and
// the static checks of the kernel's verifier that such a program can fail: jumps in range, no
// unreachable instruction, the last one an exit, no register read before it is written.
// The context is struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor }.

export interface Decoded {
  op: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

export function decode(prog: Uint8Array): Decoded[] {
  if (prog.length % 8) throw new Error('not a whole number of instructions');
  const v = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const out: Decoded[] = [];
  for (let i = 0; i < prog.length; i += 8) {
    const regs = v.getUint8(i + 1);
    out.push({
      op: v.getUint8(i),
      dst: regs & 0xf,
      src: regs >> 4,
      off: v.getInt16(i + 2, true),
      imm: v.getInt32(i + 4, true),
    });
  }
  return out;
}

const CLASS = (op: number) => op & 7;
const ALU = 0x04,
  ALU64 = 0x07,
  JMP = 0x05,
  LDX = 0x01;
const M32 = (1n << 32n) - 1n,
  M64 = (1n << 64n) - 1n;

const isJump = (d: Decoded) => CLASS(d.op) === JMP && (d.op & 0xf0) !== 0x90;
const isExit = (d: Decoded) => d.op === 0x95;

/** The verifier's structural checks: returns a list of problems (empty = fine). */
export function structuralProblems(insns: Decoded[]): string[] {
  const problems: string[] = [];
  if (!insns.length || !isExit(insns[insns.length - 1])) problems.push('last insn is not an exit');
  const seen = new Set<number>();
  const todo = [0];
  while (todo.length) {
    const pc = todo.pop()!;
    if (seen.has(pc)) continue;
    if (pc < 0 || pc >= insns.length) {
      problems.push(`jump out of range to ${pc}`);
      continue;
    }
    seen.add(pc);
    const d = insns[pc];
    if (isExit(d)) continue;
    if (isJump(d)) todo.push(pc + 1 + d.off);
    if ((d.op & 0xf0) !== 0x00 || !isJump(d)) todo.push(pc + 1); // JA (0x05) does not fall through
  }
  for (let pc = 0; pc < insns.length; pc++) if (!seen.has(pc)) problems.push(`unreachable insn ${pc}`);
  return problems;
}

const SIGN = (imm: number) => BigInt.asUintN(64, BigInt(imm)); // imm is sign-extended to 64 bits

function alu(code: number, a: bigint, b: bigint, bits: 32 | 64): bigint {
  const m = bits === 32 ? M32 : M64;
  a &= m;
  b &= m;
  const r = (
    {
      0: a + b,
      16: a - b,
      32: a * b,
      64: a | b,
      80: a & b,
      96: a << (b & BigInt(bits - 1)),
      112: a >> (b & BigInt(bits - 1)),
      160: a ^ b,
      176: b,
    } as Record<number, bigint>
  )[code];
  if (r === undefined) throw new Error(`ALU op 0x${code.toString(16)} not interpreted`);
  return r & m;
}

function cond(code: number, a: bigint, b: bigint): boolean {
  const r = (
    {
      16: a === b,
      32: a > b,
      48: a >= b,
      64: (a & b) !== 0n,
      80: a !== b,
      160: a < b,
      176: a <= b,
    } as Record<number, boolean>
  )[code];
  if (r === undefined) throw new Error(`JMP op 0x${code.toString(16)} not interpreted`);
  return r;
}

const CTX = 0x10000n; // where r1 points: any value the program cannot mistake for data

/** Run the program for one request; returns r0. */
export function run(prog: Uint8Array, ctx: { type: number; access: number; major: number; minor: number }): number {
  const insns = decode(prog);
  const mem = new DataView(new ArrayBuffer(12));
  mem.setUint32(0, (ctx.access << 16) | ctx.type, true);
  mem.setUint32(4, ctx.major, true);
  mem.setUint32(8, ctx.minor, true);
  const reg: (bigint | undefined)[] = new Array(11).fill(undefined);
  reg[1] = CTX;
  reg[10] = 0n;
  const get = (r: number) => {
    if (reg[r] === undefined) throw new Error(`R${r} read before it was written`);
    return reg[r]!;
  };
  for (let pc = 0, steps = 0; ; pc++, steps++) {
    if (steps > 100000 || pc < 0 || pc >= insns.length) throw new Error(`ran off the program at ${pc}`);
    const d = insns[pc];
    const cls = CLASS(d.op);
    if (cls === LDX) {
      if (d.op !== 0x61) throw new Error(`load 0x${d.op.toString(16)} not interpreted`);
      const at = Number(get(d.src) - CTX) + d.off;
      if (get(d.src) < CTX || at < 0 || at + 4 > 12 || at % 4) throw new Error(`bad context read at ${at}`);
      reg[d.dst] = BigInt(mem.getUint32(at, true));
    } else if (cls === ALU || cls === ALU64) {
      const b = d.op & 0x08 ? get(d.src) : SIGN(d.imm);
      const code = d.op & 0xf0;
      reg[d.dst] = alu(code, code === 0xb0 ? 0n : get(d.dst), b, cls === ALU ? 32 : 64);
    } else if (cls === JMP) {
      if (isExit(d)) return Number(get(0));
      if ((d.op & 0xf0) === 0x00) {
        pc += d.off;
        continue;
      }
      const b = d.op & 0x08 ? get(d.src) : SIGN(d.imm);
      if (cond(d.op & 0xf0, get(d.dst), b)) pc += d.off;
    } else throw new Error(`class ${cls} not interpreted`);
  }
}
