// The `bench` command's flags and action, shared by `npm run bench` (src/bench/cli.ts) and
// `verdict bench` (add it to the program with `addBenchCommand`). The table goes to stdout,
// progress to stderr, machine-readable results to `--json FILE`.

import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { formatTable, runBench, type BenchResult } from './bench.js';
import { DEFAULT_DURATION_S, DEFAULT_INFLIGHT_COUNTS, DEFAULT_PARTICIPANT_COUNTS, DEFAULT_PAYLOAD_BYTES, DEFAULT_WARMUP_S } from './bench-options.js';
import { formatProfileSummary, summarizeCpuProfile } from './cpu-profile.js';

/** Functions listed per profile after a `--cpu-prof` run. */
const PROFILE_TOP_FUNCTIONS = 15;

/** Flags of `bench`, as commander parses them. */
export interface BenchCommandOptions {
  readonly participants?: number[];
  readonly inflight?: number[];
  readonly duration: number;
  readonly warmup: number;
  readonly ceiling: boolean;
  readonly ceilingDuration?: number;
  readonly baseline?: boolean;
  readonly payloadBytes: number;
  readonly json?: string;
  readonly cpuProf?: string;
}

/** Adds the bench flags and action to `command` (a subcommand, or a standalone program). */
export function configureBenchCommand(command: Command): Command {
  return command
    .description(
      'benchmark a coordinator and P participants (separate processes) against the transport ceiling; ' +
        `by default the matrix P ∈ {${DEFAULT_PARTICIPANT_COUNTS.join(', ')}} × in flight ∈ {${DEFAULT_INFLIGHT_COUNTS.join(', ')}}`,
    )
    .option('--participants <list>', 'participant counts, e.g. 3 or 1,3,5 (default: the matrix)', parseCountList)
    .option('--inflight <list>', 'transactions in flight, e.g. 64 or 1,64,256 (default: the matrix)', parseCountList)
    .option('--duration <seconds>', 'measured seconds per configuration', parseSeconds, DEFAULT_DURATION_S)
    .option('--warmup <seconds>', 'unmeasured warm-up seconds per configuration', parseSeconds, DEFAULT_WARMUP_S)
    .option('--ceiling-duration <seconds>', 'measured seconds of each transport-ceiling run (default: --duration)', parseSeconds)
    .option('--no-ceiling', 'skip the transport-ceiling (echo) runs')
    .option('--baseline', 'also run every configuration on the naive path (no group commit) and show the ratios')
    .option('--payload-bytes <n>', 'payload bytes per branch', parseByteCount, DEFAULT_PAYLOAD_BYTES)
    .option('--json <file>', 'also write the results as a JSON array to FILE')
    .option('--cpu-prof <dir>', 'CPU-profile the coordinator and participants over the measured window, write the profiles to DIR and list their top functions')
    .action(async (options: BenchCommandOptions) => {
      await runBenchCommand(options);
    });
}

/** Adds `bench` to `program` (for `verdict bench`). */
export function addBenchCommand(program: Command): void {
  configureBenchCommand(program.command('bench'));
}

/** Runs the benchmark as the flags say; prints the table (and profile summaries). */
export async function runBenchCommand(options: BenchCommandOptions): Promise<BenchResult[]> {
  const started = Date.now();
  const results = await runBench({
    ...(options.participants ? { participants: options.participants } : {}),
    ...(options.inflight ? { inflight: options.inflight } : {}),
    durationS: options.duration,
    warmupS: options.warmup,
    ceiling: options.ceiling,
    ...(options.ceilingDuration !== undefined ? { ceilingDurationS: options.ceilingDuration } : {}),
    baseline: options.baseline ?? false,
    payloadBytes: options.payloadBytes,
    ...(options.cpuProf ? { cpuProfDir: options.cpuProf } : {}),
    onProgress: (line) => process.stderr.write(`bench: ${line}\n`),
  });
  process.stdout.write(`${formatTable(results)}\n`);
  process.stderr.write(`bench: done in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(results, null, 2)}\n`);
    process.stderr.write(`bench: results written to ${options.json}\n`);
  }
  if (options.cpuProf) printProfiles(options.cpuProf);
  return results;
}

function printProfiles(dir: string): void {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  for (const file of files) {
    process.stdout.write(`\n${formatProfileSummary(file, summarizeCpuProfile(join(dir, file), PROFILE_TOP_FUNCTIONS))}\n`);
  }
}

function parseCountList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) throw new InvalidArgumentError('expected positive integers separated by commas, e.g. 1,3,5');
  return parts.map(Number);
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds, e.g. 10 or 0.5');
  return n;
}

function parseByteCount(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError('expected a number of bytes');
  return Number(value);
}
