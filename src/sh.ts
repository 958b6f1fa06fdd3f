// POSIX sh quoting: the plan is a shell script, so every value that goes into it passes through here.
export function q(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_\/.,:=@%+^-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
export const qa = (args: string[]) => args.map(q).join(' ');
