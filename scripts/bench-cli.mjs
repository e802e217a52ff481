#!/usr/bin/env node
// How long the `verdict` command takes to start, against bare node: wall time of
// `node bin/verdict.js --help` (and a few other quick commands) next to `node -e 0`, each run
// RUNS times, interleaved so that a busy moment of the machine hits every command alike. A
// benchmark, not a test: it prints figures and fails only when a command fails.
//
//   npm run bench:cli [-- --runs N]          (needs the build: npm run build)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'verdict.js');
const DEFAULT_RUNS = 20;

const runsFlag = process.argv.indexOf('--runs');
const runs = runsFlag === -1 ? DEFAULT_RUNS : Number(process.argv[runsFlag + 1]);
if (!Number.isSafeInteger(runs) || runs < 1) {
  console.error('bench-cli: --runs takes a positive integer');
  process.exit(1);
}
if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
  console.error('bench-cli: dist/ is missing: run `npm run build` first');
  process.exit(1);
}

const COMMANDS = [
  ['node -e 0', ['-e', '0']],
  ['verdict --help', [BIN, '--help']],
  ['verdict --version', [BIN, '--version']],
  ['verdict failpoints', [BIN, 'failpoints']],
  ['verdict chaos --help', [BIN, 'chaos', '--help']],
];

const times = new Map(COMMANDS.map(([label]) => [label, []]));
for (let i = 0; i < runs; i++) {
  for (const [label, args] of COMMANDS) {
    const began = process.hrtime.bigint();
    const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - began) / 1e6;
    if (result.status !== 0) {
      console.error(`bench-cli: ${label} exited ${result.signal ?? result.status}: ${result.stderr}`);
      process.exit(1);
    }
    times.get(label).push(ms);
  }
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const baseline = [...times.get('node -e 0')].sort((a, b) => a - b);
const rows = [['command', 'min ms', 'p50 ms', 'p90 ms', 'p50 over node -e 0']];
for (const [label] of COMMANDS) {
  const sorted = [...times.get(label)].sort((a, b) => a - b);
  const over = quantile(sorted, 0.5) - quantile(baseline, 0.5);
  rows.push([label, sorted[0].toFixed(0), quantile(sorted, 0.5).toFixed(0), quantile(sorted, 0.9).toFixed(0), label === 'node -e 0' ? '-' : `+${over.toFixed(0)} ms`]);
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
console.log(`node ${process.version}, ${runs} runs each, interleaved`);
for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
