// `verdict demo`: runs the bank demo and prints its summary table on stdout; violations go to
// stderr and make the exit code 1. The demo itself is imported only when the command runs.

import { InvalidArgumentError, type Command } from 'commander';
import type { DemoReport } from '../demo/demo.js';
import { DEFAULT_BANKS, DEFAULT_CONCURRENCY, DEFAULT_DEMO_DATA_DIR, DEFAULT_TRANSFERS } from '../demo/demo-options.js';
import { parseAddress, parseLogLevel, parsePositiveInt, type LogLevel } from './cli-arguments.js';

/** Flags of `verdict demo`. */
export interface DemoCommandOptions {
  readonly transfers: number;
  readonly concurrency: number;
  readonly banks: number;
  readonly coordinator?: string;
  readonly data: string;
  readonly keepData?: boolean;
  readonly logLevel?: LogLevel;
  readonly tls?: boolean;
}

/** Violations printed in full; the rest are counted. */
const MAX_VIOLATIONS_SHOWN = 20;

/** Adds `demo` to `program`. */
export function addDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('move money between bank participants and check that every transfer is all-or-nothing')
    .option('--transfers <n>', 'transfers to run', parsePositiveInt, DEFAULT_TRANSFERS)
    .option('--concurrency <c>', 'transfers in flight at once', parsePositiveInt, DEFAULT_CONCURRENCY)
    .option('--banks <k>', 'bank participants (at least 2)', parsePositiveInt, DEFAULT_BANKS)
    .option('--coordinator <host:port>', 'use this running coordinator instead of an embedded one', parseAddress)
    .option('--data <dir>', 'parent of the per-run data directory (a fresh run-* subdirectory each time)', DEFAULT_DEMO_DATA_DIR)
    .option('--keep-data', "keep the run's directory (by default it is kept only when a check failed)")
    .option('--log-level <level>', 'log level on stderr (default: VERDICT_LOG_LEVEL, else warn)', parseLogLevel)
    .option('--tls', 'mutual TLS on every connection, with throwaway certificates (embedded coordinator only)')
    .action((options: DemoCommandOptions) => demo(options));
}

async function demo(options: DemoCommandOptions): Promise<void> {
  if (options.tls === true && options.coordinator !== undefined) {
    throw new InvalidArgumentError('--tls makes throwaway certificates for an embedded coordinator: it cannot be used with --coordinator');
  }
  const [{ runDemo }, { cliLogger }] = await Promise.all([import('../demo/demo.js'), import('./cli-logger.js')]);
  const report = await runDemo({
    transfers: options.transfers,
    concurrency: options.concurrency,
    banks: options.banks,
    dataDir: options.data,
    keepData: options.keepData === true,
    tls: options.tls === true,
    logger: cliLogger(options.logLevel, 'warn'),
    ...(options.coordinator !== undefined ? { coordinator: options.coordinator } : {}),
  });
  console.log(formatReport(report));
  if (report.violations.length > 0) {
    for (const v of report.violations.slice(0, MAX_VIOLATIONS_SHOWN)) console.error(`violation: ${v}`);
    const more = report.violations.length - MAX_VIOLATIONS_SHOWN;
    if (more > 0) console.error(`… and ${more} more violation(s)`);
    console.error(`the run's data is kept in ${report.runDir}`);
    process.exitCode = 1;
  }
}

/** The summary table. */
export function formatReport(r: DemoReport): string {
  const where = `${r.embedded ? 'embedded coordinator' : 'coordinator'} at ${r.coordinator}${r.tls ? ' (mutual TLS)' : ''}`;
  const natural = r.aborted - r.overdrafts;
  const rows: [string, string, string?][] = [
    ['committed', String(r.committed)],
    ['aborted', String(r.aborted), `${r.overdrafts} overdrawn on purpose, ${natural} for other reasons`],
    ['unknown', String(r.unknown)],
    ['throughput', r.throughput.toFixed(1), 'tx/s'],
    ['latency p50', r.latencyMs.p50.toFixed(1), 'ms'],
    ['latency p99', r.latencyMs.p99.toFixed(1), 'ms'],
    ['total balance', `${r.totalBefore} -> ${r.totalAfter}`],
    ['violations', String(r.violations.length)],
  ];
  const width = Math.max(...rows.map(([, v]) => v.length));
  const lines = [
    `verdict demo: ${r.banks.length} banks x ${r.accountsPerBank} accounts, ${r.transfers} transfers, ${r.concurrency} in flight, ${where}`,
    '',
    ...rows.map(([k, v, note]) => `  ${k.padEnd(16)}${v.padStart(width)}${note ? `  ${note}` : ''}`),
    '',
    r.violations.length === 0
      ? 'OK: the total balance is unchanged and every transfer was all-or-nothing'
      : `FAILED: ${r.violations.length} violation(s)`,
  ];
  if (r.dataKept) lines.push(`data: ${r.runDir}`);
  return lines.join('\n');
}
