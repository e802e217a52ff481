// The bench's text output: one aligned row per configuration, a table per sampled run, and the
// failover line of a `--group` run.

import type { BenchResult } from './bench.js';
import type { BenchInterval } from './bench-intervals.js';

interface Column<T> {
  readonly title: string;
  readonly value: (row: T) => string;
}

const fixed = (digits: number) => (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));

const percent = (v: number | null): string => (v === null || !Number.isFinite(v) ? '-' : `${(v * 100).toFixed(0)} %`);

const signedPercent = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)} %`);

const COLUMNS: readonly Column<BenchResult>[] = [
  { title: 'round', value: (r) => String(r.round) },
  { title: 'P', value: (r) => String(r.participants) },
  { title: 'inflight', value: (r) => String(r.inflight) },
  { title: 'variant', value: (r) => r.variant },
  { title: 'keys', value: (r) => r.keys },
  { title: 'tls', value: (r) => (r.transport === 'tls' ? 'mutual' : 'off') },
  { title: 'log', value: (r) => r.decisionLog },
  { title: 'commit/s', value: (r) => fixed(0)(r.committedPerSec) },
  { title: 'abort/s', value: (r) => fixed(0)(r.abortedPerSec) },
  { title: 'abort %', value: (r) => percent(r.abortedPerSec / (r.committedPerSec + r.abortedPerSec)) },
  { title: 'err/s', value: (r) => fixed(0)(r.errorsPerSec) },
  { title: 'p50 ms', value: (r) => fixed(2)(r.p50Ms) },
  { title: 'p95 ms', value: (r) => fixed(2)(r.p95Ms) },
  { title: 'p99 ms', value: (r) => fixed(2)(r.p99Ms) },
  { title: 'coord µs/tx', value: (r) => fixed(0)(r.coordinatorCpuUsPerTx) },
  { title: 'parts µs/tx', value: (r) => fixed(0)(r.participantCpuUsPerTx) },
  { title: 'etcd µs/tx', value: (r) => fixed(0)(r.etcdCpuUsPerTx) },
  { title: 'all µs/tx', value: (r) => fixed(0)(r.totalCpuUsPerTx) },
  { title: 'coord fsync/tx', value: (r) => fixed(3)(r.forcedWritesPerTx) },
  { title: 'log batches/tx', value: (r) => fixed(3)(r.coordinatorBatchesPerTx) },
  { title: 'parts fsync/tx', value: (r) => fixed(3)(r.participantForcedWritesPerTx) },
  { title: 'msg/frame', value: (r) => fixed(1)(r.messagesPerFrame) },
  { title: 'RSS MB', value: (r) => fixed(0)(r.peakRssMb) },
  { title: 'load', value: (r) => fixed(1)(r.hostLoad) },
  { title: 'ceiling/s', value: (r) => fixed(0)(r.ceilingPerSec) },
  { title: 'of ceiling', value: (r) => percent(r.ceilingRatio) },
  { title: 'CPU of ceiling', value: (r) => percent(r.cpuCeilingRatio) },
  { title: '× baseline', value: (r) => (r.vsBaseline ? `${fixed(2)(r.vsBaseline.committedPerSec)}×` : '-') },
  { title: '× lock-free', value: (r) => (r.vsLockFree ? `${fixed(2)(r.vsLockFree.committedPerSec)}×` : '-') },
  { title: '× plaintext', value: (r) => (r.vsPlaintext ? `${fixed(2)(r.vsPlaintext.committedPerSec)}×` : '-') },
  { title: '× leveldb', value: (r) => (r.vsLevelDb ? `${fixed(2)(r.vsLevelDb.committedPerSec)}×` : '-') },
];

const INTERVAL_COLUMNS: readonly Column<BenchInterval>[] = [
  { title: 't s', value: (i) => fixed(1)(i.elapsedS) },
  { title: 'commit/s', value: (i) => fixed(0)(i.committedPerSec) },
  { title: 'p50 ms', value: (i) => fixed(2)(i.p50Ms) },
  { title: 'p99 ms', value: (i) => fixed(2)(i.p99Ms) },
  { title: 'coord RSS MB', value: (i) => fixed(1)(i.coordinatorRssMb) },
  { title: 'max part RSS MB', value: (i) => fixed(1)(i.participantRssMb) },
  { title: 'load RSS MB', value: (i) => fixed(1)(i.loadRssMb) },
];

/** Aligns `rows` under a header and a rule: the first `leftColumns` columns left, the rest right. */
function alignTable<T>(columns: readonly Column<T>[], rows: readonly T[], leftColumns: number): string[] {
  const cells = [columns.map((c) => c.title), ...rows.map((r) => columns.map((c) => c.value(r)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => row[i]?.length ?? 0)));
  const line = (row: readonly string[]): string => row.map((cell, i) => (i < leftColumns ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(cells[0] ?? []), rule, ...cells.slice(1).map(line)];
}

/** Renders results as an aligned text table (one row per configuration). */
export function formatTable(results: readonly BenchResult[]): string {
  const withBaseline = results.some((r) => r.vsBaseline);
  const withTls = results.some((r) => r.transport === 'tls');
  const withPlaintext = results.some((r) => r.vsPlaintext);
  const withLockFree = results.some((r) => r.vsLockFree);
  const withRounds = results.some((r) => r.round > 1);
  // The decision log's columns only when a group ran: a LevelDB-only table stays as it was.
  const withGroup = results.some((r) => r.decisionLog === 'etcd');
  const hidden = new Set([
    ...(withRounds ? [] : ['round']),
    ...(withBaseline ? [] : ['× baseline']),
    ...(withTls ? [] : ['tls']),
    ...(withLockFree ? [] : ['× lock-free']),
    ...(withPlaintext ? [] : ['× plaintext']),
    ...(withGroup ? [] : ['log', 'etcd µs/tx', 'log batches/tx', '× leveldb']),
  ]);
  const columns = COLUMNS.filter((c) => !hidden.has(c.title));
  return alignTable(columns, results, withRounds ? 4 : 3).join('\n');
}

/**
 * With more than one round: a line per configuration with its mean commit/s over the rounds
 * (lowest–highest), and the mean of its per-round ratios to the lock-free, baseline, plaintext
 * or LevelDB run where it has them. '' for a run of one round.
 */
export function formatRoundSummary(results: readonly BenchResult[]): string {
  const rounds = Math.max(0, ...results.map((r) => r.round));
  if (rounds < 2) return '';
  const groups = new Map<string, BenchResult[]>();
  for (const r of results) {
    const key = `P=${r.participants} inflight=${r.inflight} ${r.variant} keys=${r.keys}${r.transport === 'tls' ? ' tls' : ''}${r.decisionLog === 'etcd' ? ' etcd' : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const spread = (values: readonly number[], digits: number, unit: string): string =>
    `${fixed(digits)(values.reduce((a, v) => a + v, 0) / values.length)}${unit} (${fixed(digits)(Math.min(...values))}–${fixed(digits)(Math.max(...values))})`;
  const lines = [...groups].map(([key, rows]) => {
    const ratios = (
      [
        ['lock-free', rows.flatMap((r) => (r.vsLockFree ? [r.vsLockFree.committedPerSec] : []))],
        ['baseline', rows.flatMap((r) => (r.vsBaseline ? [r.vsBaseline.committedPerSec] : []))],
        ['plaintext', rows.flatMap((r) => (r.vsPlaintext ? [r.vsPlaintext.committedPerSec] : []))],
        ['leveldb', rows.flatMap((r) => (r.vsLevelDb ? [r.vsLevelDb.committedPerSec] : []))],
      ] as const
    ).flatMap(([name, values]) => (values.length > 0 ? [`, ${spread(values, 3, '×')} ${name}`] : []));
    return `${key}: ${spread(rows.map((r) => r.committedPerSec), 0, ' commit/s')}${ratios.join('')}`;
  });
  return [`mean over ${rounds} rounds (lowest–highest):`, ...lines].join('\n');
}

/**
 * Renders a result's samples over time: a title line, a table with one row per interval, and a
 * summary line of RSS growth and p99 spread. '' for a result without intervals.
 */
export function formatIntervals(result: BenchResult): string {
  if (!result.intervals) return '';
  const summary =
    `RSS growth coordinator ${signedPercent(result.rssGrowth)}, participants ${signedPercent(result.participantRssGrowth)}; ` +
    `p99 spread ${fixed(2)(result.p99Spread)}× (max/min interval p99)`;
  return [`P=${result.participants} inflight=${result.inflight} ${result.variant}, over time:`, ...alignTable(INTERVAL_COLUMNS, result.intervals, 0), summary].join('\n');
}

/**
 * One line on the failover of a `--group` run (every `etcd` result carries the same measurement):
 * the lease, the kills, p50 and worst time without a serving leader, and every time in kill
 * order. '' when no failover was measured.
 */
export function formatFailover(results: readonly BenchResult[]): string {
  const f = results.find((r) => r.failover)?.failover;
  if (!f) return '';
  return (
    `failover (SIGKILL of the leader of a ${f.members}-member group, lease ${f.leaseTtlS} s; time until a member served as leader again): ` +
    `p50 ${fixed(0)(f.p50Ms)} ms, worst ${fixed(0)(f.worstMs)} ms over ${f.timesMs.length} kills (${f.timesMs.map((t) => t.toFixed(0)).join(', ')} ms)`
  );
}
