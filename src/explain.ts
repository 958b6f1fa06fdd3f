// --explain: narrate each step as it happens. Loaded only when asked for (chalk is not on the hot path).
import { type Step } from './plan.js';

export async function narrator(env: NodeJS.ProcessEnv = process.env, isTTY = !!process.stderr.isTTY) {
  const { Chalk } = await import('chalk'); // ESM-only, and only --explain needs it
  const chalk = new Chalk({ level: env.NO_COLOR || !isTTY ? 0 : 1 });
  return (s: Step, n: number) => `${chalk.bold.cyan(`[${n}]`)} ${chalk.bold(s.title)}\n    ${chalk.dim(s.why)}`;
}
