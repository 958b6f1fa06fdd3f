// --explain: narrate each step as it happens. Loaded only when asked for (chalk is not on the hot path).
// The step it is given is already inert (src/plan/render.ts): its text cannot move the cursor.
import type { Step } from '../plan/step.js';

export async function narrator(env: NodeJS.ProcessEnv = process.env, isTTY = !!process.stderr.isTTY) {
  const { Chalk } = await import('chalk'); // ESM-only, and only --explain needs it
  const chalk = new Chalk({ level: env.NO_COLOR || !isTTY ? 0 : 1 });
  return (s: Step, n: number) => `${chalk.bold.cyan(`[${n}]`)} ${chalk.bold(s.title)}\n    ${chalk.dim(s.man)}`;
}
