// Ratios from hyperfine's JSON export, and the start-up target of issue 2.
import { readFileSync } from 'node:fs';

const { results } = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const ms = Object.fromEntries(results.map((r) => [r.command, r.mean * 1000]));
const line = (k) => `  ${k.padEnd(16)} ${ms[k].toFixed(1).padStart(7)} ms`;
console.log('\nmeans:');
for (const k of Object.keys(ms)) console.log(line(k));
const base = ms['node -e 0'] + ms['raw unshare'];
const ratio = ms['tscontain run'] / base;
console.log(`\ntscontain run / (node -e 0 + raw unshare) = ${ratio.toFixed(2)}  (target <= 1.5: ${ratio <= 1.5 ? 'met' : 'NOT met'})`);
console.log(`tscontain run - tscontain plan (executing the plan) = ${(ms['tscontain run'] - ms['tscontain plan']).toFixed(1)} ms`);
console.log(`tscontain plan - node -e 0 (our JavaScript) = ${(ms['tscontain plan'] - ms['node -e 0']).toFixed(1)} ms`);
if (ms['runc run']) console.log(`tscontain run / runc run = ${(ms['tscontain run'] / ms['runc run']).toFixed(2)}`);
