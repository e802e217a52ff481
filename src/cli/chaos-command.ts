// `verdict chaos`: a self-contained fault-injection run on this machine (a coordinator and K bank
// participants as real processes, their sessions through fault proxies, a seeded fault schedule),
// then a check of the recorded history. Prints a progress line while it runs and a table at the
// end; writes report.json and history.jsonl to --out; exits 1 on any violation. `--group [N]` runs
// it against a coordinator group of N members on a throwaway etcd, with leader kills and pauses
// (with `--tls`, every member serves mutual TLS).
// The chaos runner is imported only when the command runs.

import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_CHAOS_DURATION_MS, DEFAULT_CHAOS_PARTICIPANTS } from '../faults/chaos-options.js';
import { ALL_FAULT_KINDS, parseFaultKinds, type FaultKind } from '../faults/chaos-schedule.js';
import { DEFAULT_GROUP_MEMBERS } from '../faults/coordinator-group-options.js';
import { durationParser, formatDuration, parsePositiveInt } from './cli-arguments.js';

/** Flags of `verdict chaos`. */
export interface ChaosCommandOptions {
  readonly duration: number;
  readonly seed: number;
  readonly participants: number;
  /** The raw `--faults` list, parsed once `--group` is known (`all` means more with a group). */
  readonly faults: string;
  readonly out?: string;
  readonly quiet?: boolean;
  readonly tls?: boolean;
  /** `--group` alone: true (DEFAULT_GROUP_MEMBERS); `--group N`: N members. */
  readonly group?: true | number;
}

/** The shortest fault phase `--duration` accepts, in ms. */
const MIN_CHAOS_DURATION_MS = 1_000;

function parseSeed(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n >= 2 ** 32) throw new InvalidArgumentError('expected an integer in [0, 2^32)');
  return n;
}

function parseKinds(value: string, group: boolean): FaultKind[] {
  try {
    return parseFaultKinds(value, { group });
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function parseGroupSize(value: string): number {
  const n = parsePositiveInt(value);
  if (n < 2) throw new InvalidArgumentError('a coordinator group needs at least 2 members');
  return n;
}

/** Adds `chaos` to `program`. */
export function addChaosCommand(program: Command): void {
  program
    .command('chaos')
    .description('run the bank demo under seeded faults (kill -9, pauses, partitions, delays, drops, failpoints) and check the history')
    .addOption(
      new Option('--duration <time>', 'how long faults are injected (e.g. 30s, 2m)')
        .argParser(durationParser({ minMs: MIN_CHAOS_DURATION_MS }))
        .default(DEFAULT_CHAOS_DURATION_MS, formatDuration(DEFAULT_CHAOS_DURATION_MS)),
    )
    .option('--seed <n>', 'seed of the fault schedule and of the transfers (default: random, printed)', parseSeed)
    .option('--participants <k>', 'bank participants (at least 2)', parsePositiveInt, DEFAULT_CHAOS_PARTICIPANTS)
    .option('--faults <kinds>', `comma-separated fault kinds (${ALL_FAULT_KINDS.join(',')}, or all; leader-* need --group)`, 'all')
    .option('--out <dir>', 'directory for report.json, history.jsonl and the run\'s data (default: a fresh temp directory)')
    .option('--quiet', 'no progress line; only the final table')
    .option('--tls', 'mutual TLS on every connection, with throwaway certificates (with --group, every member serves it)')
    .option('--group [members]', `against a coordinator group of this many members (default ${DEFAULT_GROUP_MEMBERS}) on a throwaway 3-member etcd, with leader kills and pauses`, parseGroupSize)
    .action((options: Partial<ChaosCommandOptions>) => chaos(options));
}

async function chaos(options: Partial<ChaosCommandOptions>): Promise<void> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const participants = options.participants ?? DEFAULT_CHAOS_PARTICIPANTS;
  if (participants < 2) throw new InvalidArgumentError('--participants must be at least 2');
  const group = options.group === undefined ? undefined : options.group === true ? DEFAULT_GROUP_MEMBERS : options.group;
  const faults = parseKinds(options.faults ?? 'all', group !== undefined);
  const [{ runChaosCluster }, { formatChaosReport }] = await Promise.all([import('../faults/chaos.js'), import('../faults/chaos-report.js')]);
  const live = !options.quiet && process.stderr.isTTY;
  const report = await runChaosCluster({
    seed,
    durationMs: options.duration ?? DEFAULT_CHAOS_DURATION_MS,
    participants,
    faults,
    tls: options.tls === true,
    ...(group !== undefined ? { group } : {}),
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
