// The plan is a shell script, and this file is the only way text gets into it.
//
// - A line of the script is an `Sh`: made only by the `sh` tag, whose static parts are written in
//   our source code and whose every ${value} is quoted by `q` (an `Sh` inserted into another stays
//   as it is), or by `lit`, which takes string literals only (checked by the type system).
// - Comments and narration go through `inert`: one line of printable text whatever it is given.
// The renderer takes `Sh` lines and `inert` text, nothing else, so no byte of user or image data
// can ever be read by sh as anything but the data it is.

const brand: unique symbol = Symbol('sh');

/** A fragment of sh source whose data parts are all quoted. */
export interface Sh {
  readonly [brand]: true;
  readonly text: string;
}

const make = (text: string): Sh => ({ [brand]: true, text }) as Sh;

export const isSh = (v: unknown): v is Sh => typeof v === 'object' && v !== null && brand in v;

/**
 * POSIX sh quoting, the one quoting function: the result is one word that sh reads back as
 * exactly `s`. NUL cannot be passed to a program at all, so it is refused.
 */
/** The widest a line of the plan may be. */
export const WIDTH = 120;
/** A long quoted value is folded: its first line at most this wide (text may come before it on its line)... */
const FIRST = 72;
/** ...and each further line (text may come after the last one). */
const REST = 88;

export function q(s: string): string {
  if (s.includes('\0')) throw new Error('a NUL byte cannot be passed to a program');
  if (s !== '' && s.length <= FIRST && /^[A-Za-z0-9_/.,:=@%+^-]+$/.test(s)) return s;
  return quote(s, true);
}

/**
 * 'TEXT' with each ' written '\''. Folded (the default for the plan): where a line would grow too
 * wide the quote is closed, the line continued with a backslash-newline and the quote reopened on
 * the next line, at its start: sh removes backslash-newline before it splits words, so 'ab'\<newline>'cd'
 * is the one word abcd. A fold never falls inside '\'' nor between the halves of a surrogate pair.
 */
function quote(s: string, fold: boolean): string {
  const esc = (t: string) => t.replace(/'/g, `'\\''`);
  if (!fold) return `'${esc(s)}'`;
  const lines = s.split('\n');
  const out: string[] = [];
  lines.forEach((line, i) => {
    const limit = i === 0 ? FIRST : REST;
    const whole = esc(line);
    // the closing quote and backslash of a fold need 2 columns (the first line also has its opening ')
    if (whole.length + (i === 0 ? 1 : 0) <= limit - 2 || !line.length) {
      out.push(whole);
      return;
    }
    if (/^[\x20-\x26\x28-\x7e]*$/.test(line)) {
      // printable ASCII without ': cut by length (the seccomp filter's hex is one such line)
      const first = limit - 3 - (i === 0 ? 1 : 0);
      const parts = [line.slice(0, first)];
      for (let k = first; k < line.length; k += REST - 3) parts.push(line.slice(k, k + REST - 3));
      out.push(parts.join("'\\\n'"));
      return;
    }
    let cur = '';
    let col = i === 0 ? 1 : 0;
    let max = limit;
    for (const ch of line) {
      const piece = ch === "'" ? "'\\''" : ch;
      if (col + piece.length > max - 2) {
        cur += "'\\\n'";
        col = 1;
        max = REST;
      }
      cur += piece;
      col += piece.length;
    }
    out.push(cur);
  });
  return `'${out.join('\n')}'`;
}

export type ShValue = string | number | Sh | readonly (string | Sh)[];

function word(v: ShValue): string {
  if (isSh(v)) return v.text;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`not a finite number: ${v}`);
    return String(v);
  }
  if (typeof v === 'string') return q(v);
  // a list of words: on one line if it fits, else one word a line (a backslash-newline between words)
  const words = v.map(word);
  const flat = words.join(' ');
  return Math.max(...flat.split('\n').map((l) => l.length)) <= FIRST ? flat : words.join(' \\\n    ');
}

/**
 * sh`mkdir -p ${dir}`: the template's own text is sh, taken as written (raw: `\n` stays a
 * backslash and an n), every value is quoted (arrays: one word each). Only a real template
 * literal is accepted: its strings are frozen and come with `raw`.
 */
export function sh(strings: TemplateStringsArray, ...values: ShValue[]): Sh {
  if (!Object.isFrozen(strings) || !Object.isFrozen(strings.raw)) throw new Error('sh is a template tag');
  let out = strings.raw[0];
  values.forEach((v, i) => {
    out += word(v) + strings.raw[i + 1];
  });
  return make(out);
}

/** sh source written in our code: string literals only (a `string` variable does not type-check). */
export function lit<T extends string>(text: string extends T ? never : T): Sh {
  return make(text);
}

/** Fragments joined by a separator written in our code. */
export function joinSh(
  parts: readonly Sh[],
  sep: ' ' | '; ' | ' && ' | ' || ' | ' | ' | ' \\\n  ' | ' \\\n    ' = ' ',
): Sh {
  return make(parts.map((p) => p.text).join(sep));
}

/**
 * Any text made inert for a comment, a title or narration: one line, printable. Control
 * characters (newline, CR, escape, ...) become visible escapes such as \n and \x1b, so a newline
 * can never end a comment and no terminal sequence reaches the reader's screen.
 */
export function inert(text: string): string {
  return text.replace(
    // C0 and C1 controls, DEL, line/paragraph separators, lone surrogates, bidi overrides
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    (c) => {
      const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
      return named[c] ?? `\\u{${c.charCodeAt(0).toString(16)}}`;
    },
  );
}

/** A comment line: `# ` and inert text, cut to the plan's width (ending in …). */
export const comment = (text: string): Sh => make(cut(`# ${inert(text)}`, WIDTH - 8)); // room for indentation

/** At most `width` code points, the last one … when cut. */
export function cut(text: string, width: number): string {
  const cps = [...text];
  return cps.length <= width ? text : `${cps.slice(0, width - 1).join('')}…`;
}

/** How a user's value is shown in a title: quoted as sh would take it (not folded), and inert. */
export const show = (v: string): string => inert(v !== '' && /^[A-Za-z0-9_/.,:=@%+^-]+$/.test(v) ? v : quote(v, false));

/** How an argv is shown in a title. */
export const showArgv = (argv: readonly string[]): string => argv.map(show).join(' ');

/** "$tsc_NAME": a reference to one of the plan's own variables (the name is checked, not quoted). */
export function ref(name: string): Sh {
  if (!/^tsc_[a-z0-9_]+$/.test(name)) throw new Error(`not a plan variable: ${name}`);
  return make(`"$${name}"`);
}

/** NAME=value: one of the plan's variables set to a value (quoted). */
export function setVar(name: string, value: string | number | Sh): Sh {
  if (!/^tsc_[a-z0-9_]+$/.test(name)) throw new Error(`not a plan variable: ${name}`);
  return make(`${name}=${word(value)}`);
}
