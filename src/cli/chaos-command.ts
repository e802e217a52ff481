// `verdict chaos`: a self-contained fault-injection run on this machine (a coordinator and K bank
// participants as real processes, their sessions through fault proxies, a seeded fault schedule),
// then a check of the recorded history. Prints a progress line while it runs and a table at the
// end; writes report.json and history.jsonl to --out; exits 1 on any violation.

import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_CHAOS_PARTICIPANTS, runChaosCluster } from '../faults/chaos.js';
import { formatChaosReport } from '../faults/chaos-report.js';
import { FAULT_KINDS, parseFaultKinds, type FaultKind } from '../faults/chaos-schedule.js';
import { parsePositiveInt } from './cli-arguments.js';

/** Flags of `verdict chaos`. */
export interface ChaosCommandOptions {
  readonly duration: number;
  readonly seed: number;
  readonly participants: number;
  readonly faults: FaultKind[];
  readonly out?: string;
  readonly quiet?: boolean;
}

/** A duration: `30s`, `1m`, `500ms`, or a number of seconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('expected a duration such as 30s, 2m or 500ms');
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1_000;
  if (ms < 1_000 || ms > 24 * 3_600_000) throw new InvalidArgumentError('expected a duration between 1s and 24h');
  return Math.round(ms);
}

function parseSeed(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n >= 2 ** 32) throw new InvalidArgumentError('expected an integer in [0, 2^32)');
  return n;
}

function parseKinds(value: string): FaultKind[] {
  try {
    return parseFaultKinds(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** Adds `chaos` to `program`. */
export function addChaosCommand(program: Command): void {
  program
    .command('chaos')
    .description('run the bank demo under seeded faults (kill -9, pauses, partitions, delays, drops, failpoints) and check the history')
    .option('--duration <time>', 'how long faults are injected (e.g. 30s, 2m)', parseDuration, 30_000)
    .option('--seed <n>', 'seed of the fault schedule and of the transfers (default: random, printed)', parseSeed)
    .option('--participants <k>', 'bank participants (at least 2)', parsePositiveInt, DEFAULT_CHAOS_PARTICIPANTS)
    .option('--faults <kinds>', `comma-separated fault kinds (${FAULT_KINDS.join(',')}, or all)`, parseKinds, [...FAULT_KINDS])
    .option('--out <dir>', 'directory for report.json, history.jsonl and the run\'s data (default: a fresh temp directory)')
    .option('--quiet', 'no progress line; only the final table')
    .action((options: Partial<ChaosCommandOptions>) => chaos(options));
}

async function chaos(options: Partial<ChaosCommandOptions>): Promise<void> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const participants = options.participants ?? DEFAULT_CHAOS_PARTICIPANTS;
  if (participants < 2) throw new InvalidArgumentError('--participants must be at least 2');
  const live = !options.quiet && process.stderr.isTTY;
  const report = await runChaosCluster({
    seed,
    durationMs: options.duration ?? 30_000,
    participants,
    faults: options.faults ?? [...FAULT_KINDS],
    ...(options.out !== undefined ? { outDir: options.out } : {}),
    ...(options.quiet
      ? {}
      : {
          // One line rewritten in place on a terminal; plain lines otherwise (CI logs).
          onProgress: (line: string) => process.stderr.write(live ? `\r\x1b[2K${line}` : `${line}\n`),
        }),
  });
  if (live) process.stderr.write('\n');
  console.log(formatChaosReport(report));
  if (report.violations.length > 0) process.exitCode = 1;
}
