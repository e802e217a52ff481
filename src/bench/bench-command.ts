// The `bench` command's flags and action, shared by `npm run bench` (src/bench/cli.ts) and
// `verdict bench` (add it to the program with `addBenchCommand`). The table (and, with
// `--interval`, the samples over time; with `--group`, the failover line) goes to stdout, progress to stderr, machine-readable
// results to `--json FILE`. The benchmark itself is imported only when the command runs, so that
// `verdict --help` stays fast.

import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { durationParser, formatDuration } from '../cli/cli-arguments.js';
import type { BenchResult } from './bench.js';
import {
  BenchInitiator,
  BenchTls,
  DEFAULT_DURATION_S,
  DEFAULT_FAILOVER_LEASE_TTL_S,
  DEFAULT_INFLIGHT_COUNTS,
  DEFAULT_KILLS,
  DEFAULT_PARTICIPANT_COUNTS,
  DEFAULT_PAYLOAD_BYTES,
  DEFAULT_WARMUP_S,
  MAX_ROUNDS,
  MAX_FAILOVER_LEASE_TTL_S,
  MAX_KILLS,
  MIN_INTERVAL_S,
  resolveBenchOptions,
  type BenchOptions,
} from './bench-options.js';

/** Functions listed per profile after a `--cpu-prof` run. */
const PROFILE_TOP_FUNCTIONS = 15;

/** Flags of `bench`, as commander parses them (durations in ms). */
export interface BenchCommandOptions {
  readonly participants?: number[];
  readonly inflight?: number[];
  readonly duration: number;
  readonly warmup: number;
  readonly ceiling: boolean;
  readonly ceilingDuration?: number;
  readonly baseline?: boolean;
  readonly payloadBytes: number;
  readonly hotKeys?: number;
  readonly lockFree?: boolean;
  readonly rounds: number;
  readonly initiator: BenchInitiator;
  readonly json?: string;
  readonly cpuProf?: string;
  readonly interval?: number;
  readonly tls?: boolean;
  readonly tlsCompare?: boolean;
  /** LevelDB and then a coordinator group on a throwaway etcd, and the group's failover. */
  readonly group?: boolean;
  /** Leader SIGKILLs of the failover measurement; only when given (it needs --group). */
  readonly kills?: number;
  /** The failover group's lease, in ms; only when given (it needs --group). */
  readonly leaseTtl?: number;
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
    .addOption(durationOption('--duration <time>', 'measured time per configuration, e.g. 10s or 5m', DEFAULT_DURATION_S * 1_000, 1))
    .addOption(durationOption('--warmup <time>', 'unmeasured warm-up per configuration', DEFAULT_WARMUP_S * 1_000, 0))
    .addOption(
      new Option('--ceiling-duration <time>', 'measured time of each transport-ceiling run (default: --duration)')
        .argParser(durationParser({ minMs: 1 }))
        .conflicts('ceiling'),
    )
    .option('--no-ceiling', 'skip the transport-ceiling (echo) runs')
    .option('--baseline', 'also run every configuration on the naive path (no group commit, one frame per message) and show the ratios')
    .option('--payload-bytes <n>', 'payload bytes per branch', parseByteCount, DEFAULT_PAYLOAD_BYTES)
    .option('--hot-keys <n>', 'also run every configuration with every transaction locking one of N keys, next to a key per transaction', parseHotKeys)
    .option('--lock-free', 'also run every configuration with participants that take no lock, next to a key per transaction: what lock bookkeeping costs')
    .option(
      '--rounds <n>',
      'run the whole list of configurations N times, every other round in reverse order (A B, B A, …), so that drift and running second fall on each alike; ' +
        'prints the mean of each configuration and of its ratios over the rounds',
      parseRounds,
      1,
    )
    .addOption(
      new Option('--initiator <kind>', 'how the load generator (and the ceiling) sends commits: over one CommitStream, or one unary call each')
        .choices(Object.values(BenchInitiator))
        .default(BenchInitiator.STREAM),
    )
    .addOption(new Option('--tls', 'run every connection over mutual TLS with throwaway certificates (the ceiling stays plaintext)').conflicts('tlsCompare'))
    .option('--tls-compare', 'run every configuration in plaintext and then over mutual TLS, in the same run, and show the ratio')
    .addOption(
      new Option(
        '--group',
        'also run every configuration on a coordinator group whose decision log is in a throwaway 3-member etcd on 127.0.0.1 (etcd on the PATH), ' +
          'next to LevelDB in the same run, and measure its failover over --kills SIGKILLs of the leader of a 3-member group',
      ).conflicts('baseline'),
    )
    .option('--kills <n>', `with --group: leader SIGKILLs of the failover measurement, 0 to skip it (default: ${DEFAULT_KILLS})`, parseKills)
    .option(
      '--lease-ttl <duration>',
      `with --group: the lease of the failover group's members, in whole seconds (default: ${formatDuration(DEFAULT_FAILOVER_LEASE_TTL_S * 1_000)})`,
      durationParser({ minMs: 1_000, maxMs: MAX_FAILOVER_LEASE_TTL_S * 1_000 }),
    )
    .option('--json <file>', 'also write the results as a JSON array to FILE')
    .option(
      '--interval <time>',
      'also sample the measured window at this interval (at most half of --duration), e.g. 30s: tx/s, p50/p99 and the mean RSS of every process over ' +
        'the interval, with RSS growth and p99 spread from the first sample to the last; a remainder under half an interval joins the last interval',
      durationParser({ minMs: MIN_INTERVAL_S * 1_000 }),
    )
    .option('--cpu-prof <dir>', 'CPU-profile the coordinator and participants over the measured window, write the profiles to DIR and list their top functions')
    .action(async (options: BenchCommandOptions) => {
      await runBenchCommand(options);
    });
}

/** Adds `bench` to `program` (for `verdict bench`). */
export function addBenchCommand(program: Command): void {
  configureBenchCommand(program.command('bench'));
}

/**
 * Runs the benchmark as the flags say; prints the table (and the samples over time, profile
 * summaries). Flags that conflict throw commander's InvalidArgumentError before anything runs.
 */
export async function runBenchCommand(options: BenchCommandOptions): Promise<BenchResult[]> {
  const started = Date.now();
  if (options.interval !== undefined && options.interval > options.duration / 2) {
    throw new InvalidArgumentError(
      `--interval ${formatDuration(options.interval)} is more than half of --duration ${formatDuration(options.duration)}: there would be fewer than two samples`,
    );
  }
  if (!options.group && (options.kills !== undefined || options.leaseTtl !== undefined)) {
    throw new InvalidArgumentError(`${options.kills !== undefined ? '--kills' : '--lease-ttl'} measures the failover of a coordinator group: it needs --group`);
  }
  if (options.leaseTtl !== undefined && options.leaseTtl % 1_000 !== 0) {
    throw new InvalidArgumentError(`--lease-ttl ${formatDuration(options.leaseTtl)} is not a whole number of seconds (etcd's unit)`);
  }
  const benchOptions: BenchOptions = {
    ...(options.participants ? { participants: options.participants } : {}),
    ...(options.inflight ? { inflight: options.inflight } : {}),
    durationS: options.duration / 1_000,
    warmupS: options.warmup / 1_000,
    ceiling: options.ceiling,
    ...(options.ceilingDuration !== undefined ? { ceilingDurationS: options.ceilingDuration / 1_000 } : {}),
    baseline: options.baseline ?? false,
    payloadBytes: options.payloadBytes,
    ...(options.hotKeys !== undefined ? { hotKeys: options.hotKeys } : {}),
    lockFree: options.lockFree ?? false,
    rounds: options.rounds,
    initiator: options.initiator,
    tls: options.tlsCompare ? BenchTls.COMPARE : options.tls ? BenchTls.ON : BenchTls.OFF,
    ...(options.cpuProf ? { cpuProfDir: options.cpuProf } : {}),
    ...(options.interval !== undefined ? { intervalS: options.interval / 1_000 } : {}),
    ...(options.group ? { group: true } : {}),
    ...(options.kills !== undefined ? { kills: options.kills } : {}),
    ...(options.leaseTtl !== undefined ? { leaseTtlS: options.leaseTtl / 1_000 } : {}),
    onProgress: (line) => process.stderr.write(`bench: ${line}\n`),
  };
  // Flags that are fine alone but not together (--interval over half of --duration) are a usage
  // error like any bad flag, not a failure of the run.
  try {
    resolveBenchOptions(benchOptions);
  } catch (e) {
    if (e instanceof RangeError) throw new InvalidArgumentError(`invalid flags: ${e.message}`);
    throw e;
  }
  const [{ runBench }, { formatFailover, formatIntervals, formatRoundSummary, formatTable }] = await Promise.all([import('./bench.js'), import('./bench-format.js')]);
  const results = await runBench(benchOptions);
  process.stdout.write(`${formatTable(results)}\n`);
  const summary = formatRoundSummary(results);
  if (summary) process.stdout.write(`\n${summary}\n`);
  const failover = formatFailover(results);
  if (failover) process.stdout.write(`\n${failover}\n`);
  for (const r of results) {
    if (r.intervals) process.stdout.write(`\n${formatIntervals(r)}\n`);
  }
  process.stderr.write(`bench: done in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(results, null, 2)}\n`);
    process.stderr.write(`bench: results written to ${options.json}\n`);
  }
  if (options.cpuProf) await printProfiles(options.cpuProf);
  return results;
}

async function printProfiles(dir: string): Promise<void> {
  const { formatProfileSummary, summarizeCpuProfile } = await import('./cpu-profile.js');
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

/** A duration flag (parsed to ms) whose help shows its default in the same syntax. */
function durationOption(flags: string, description: string, defaultMs: number, minMs: number): Option {
  return new Option(flags, description).argParser(durationParser({ minMs })).default(defaultMs, formatDuration(defaultMs));
}

function parseByteCount(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError('expected a number of bytes');
  return Number(value);
}

function parseRounds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > MAX_ROUNDS) throw new InvalidArgumentError(`--rounds must be an integer from 1 to ${MAX_ROUNDS}, got ${JSON.stringify(value)}`);
  return n;
}

function parseHotKeys(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`--hot-keys must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function parseKills(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > MAX_KILLS) throw new InvalidArgumentError(`expected an integer from 0 to ${MAX_KILLS}`);
  return n;
}
