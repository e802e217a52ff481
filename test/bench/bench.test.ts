// The benchmark harness end to end on a tiny configuration: real child processes, the echo
// ceiling, samples over time, and results whose fields are sane. Performance itself is never
// asserted: this machine is shared and noisy, and a benchmark is read by people, not by CI.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CommanderError } from 'commander';
import {
  formatIntervals,
  formatRoundSummary,
  formatTable,
  resolveBenchOptions,
  runBench,
  sampleTimesS,
  type BenchResult,
} from '../../src/bench/index.js';
import { parseBenchFlags } from '../support/bench-flags.js';

/** Generous: a run forks 2 × (1 + P) processes through tsx on a busy 2-core machine. */
const TEST_TIMEOUT_MS = 180_000;

describe('verdict bench', () => {
  it('measures P=1 and P=2 with 4 in flight against the transport ceiling', { timeout: TEST_TIMEOUT_MS }, async () => {
    const results = await runBench({ participants: [1, 2], inflight: [4], durationS: 1, warmupS: 0.5 });

    assert.deepEqual(
      results.map((r) => [r.participants, r.inflight, r.variant]),
      [
        [1, 4, 'optimized'],
        [2, 4, 'optimized'],
      ],
    );
    for (const r of results) assertSane(r);

    const table = formatTable(results);
    assert.equal(table.split('\n').length, 2 + results.length, 'a header, a rule and one row per configuration');
    assert.ok(results.every((r) => r.intervals === undefined && r.rssGrowth === undefined), 'no samples without an interval');
  });

  it('runs a lock-free variant next to a key per transaction, in alternating order over rounds, with the ratio of each round', { timeout: TEST_TIMEOUT_MS }, async () => {
    const progress: string[] = [];
    const results = await runBench({ participants: [1], inflight: [4], durationS: 1, warmupS: 0.5, ceiling: false, lockFree: true, rounds: 2, onProgress: (l) => progress.push(l) });

    // Round 2 runs the list backwards: what runs second in round 1 runs first in round 2.
    assert.deepEqual(
      results.map((r) => [r.round, r.keys]),
      [
        [1, 'uniform'],
        [1, 'none'],
        [2, 'none'],
        [2, 'uniform'],
      ],
    );
    assert.deepEqual(
      progress.filter((l) => / initiator: /.test(l)).map((l) => (/no locks/.test(l) ? 'none' : 'uniform')),
      ['uniform', 'none', 'none', 'uniform'],
      'measured in that order',
    );
    for (const r of results) assert.ok(r.committedPerSec > 0 && r.abortedPerSec === 0, `${r.keys}: commits, never a conflict`);
    // Each locking row is compared with the lock-free row of its own round.
    for (const round of [1, 2]) {
      const locking = results.find((r) => r.round === round && r.keys === 'uniform');
      const free = results.find((r) => r.round === round && r.keys === 'none');
      assert.equal(locking?.vsLockFree?.committedPerSec, (locking?.committedPerSec ?? 0) / (free?.committedPerSec ?? 1), `round ${round}`);
      assert.equal(free?.vsLockFree, undefined);
    }

    const [header, , first] = formatTable(results).split('\n');
    assert.match(header ?? '', /^round +P .* × lock-free$/);
    assert.match(first ?? '', new RegExp(`^1 .* uniform .* ${results[0]?.vsLockFree?.committedPerSec.toFixed(2)}×$`));
    const summary = formatRoundSummary(results).split('\n');
    assert.equal(summary[0], 'mean over 2 rounds (lowest–highest):');
    const ratios = results.flatMap((r) => (r.vsLockFree ? [r.vsLockFree.committedPerSec] : []));
    const mean = ((ratios[0] ?? 0) + (ratios[1] ?? 0)) / 2;
    assert.match(summary[1] ?? '', new RegExp(`^P=1 inflight=4 optimized keys=uniform: \\d+ commit/s \\(\\d+–\\d+\\), ${mean.toFixed(3)}× \\(`));
    assert.match(summary[2] ?? '', /^P=1 inflight=4 optimized keys=none: \d+ commit\/s \(\d+–\d+\)$/);
    assert.equal(formatRoundSummary(results.filter((r) => r.round === 1)), '', 'no summary for one round');
  });

  it('samples throughput, tail latency and current RSS at every interval of the window', { timeout: TEST_TIMEOUT_MS }, async () => {
    const [r, ...rest] = await runBench({ participants: [1], inflight: [4], durationS: 3, warmupS: 0.5, ceiling: false, intervalS: 1 });

    assert.ok(r && rest.length === 0, 'one configuration, one result');
    const intervals = r.intervals ?? [];
    assert.ok(intervals.length >= 2, `at least two samples (got ${intervals.length})`);
    intervals.forEach((i, n) => {
      const where = `interval ${n} (t=${i.elapsedS} s)`;
      assert.ok(i.committedPerSec > 0, `${where}: committed something`);
      assert.ok(Number.isFinite(i.p99Ms) && i.p50Ms <= i.p99Ms, `${where}: p50 ${i.p50Ms} ≤ p99 ${i.p99Ms}`);
      assert.ok(i.coordinatorRssMb > 0 && i.participantRssMb > 0 && i.loadRssMb > 0, `${where}: every RSS reported`);
      if (n > 0) assert.ok(i.elapsedS > (intervals[n - 1]?.elapsedS ?? 0), `${where}: samples in time order`);
    });
    // Cutting the window into intervals leaves it whole: the intervals' commits add up to its own.
    const committed = intervals.reduce((acc, i, n) => acc + i.committedPerSec * (i.elapsedS - (intervals[n - 1]?.elapsedS ?? 0)), 0);
    const windowCommitted = r.committedPerSec * r.durationS;
    assert.ok(Math.abs(committed - windowCommitted) < 1, `intervals add up to the window (${committed} vs ${windowCommitted})`);
    for (const key of ['rssGrowth', 'participantRssGrowth', 'p99Spread'] as const) {
      assert.ok(Number.isFinite(r[key]), `${key} is a finite number (${r[key]})`);
    }
    assert.ok((r.p99Spread ?? 0) >= 1, 'the spread is max ÷ min');

    const text = formatIntervals(r).split('\n');
    assert.equal(text.length, 1 + 2 + intervals.length + 1, 'a title, a header, a rule, one row per sample and a summary');
    assert.match(text.at(-1) ?? '', /^RSS growth coordinator [+-]\d+\.\d %, participants [+-]\d+\.\d %; p99 spread \d+\.\d\d× \(max\/min interval p99\)$/);
    // The JSON contract of --json.
    const json = JSON.parse(JSON.stringify(r)) as { intervals: Record<string, unknown>[]; rssGrowth: unknown; p99Spread: unknown };
    assert.equal(json.intervals.length, intervals.length);
    assert.equal(typeof json.intervals[0]?.['coordinatorRssMb'], 'number');
    assert.equal(typeof json.rssGrowth, 'number');
    assert.equal(typeof json.p99Spread, 'number');
  });
});

describe('verdict bench --tls-compare', () => {
  it('measures every configuration in plaintext and then over mutual TLS in the same run, with the ratio', { timeout: TEST_TIMEOUT_MS }, async () => {
    const results = await runBench({ participants: [2], inflight: [4], durationS: 1, warmupS: 0.5, ceiling: false, tls: 'compare' });

    assert.deepEqual(
      results.map((r) => [r.participants, r.transport]),
      [
        [2, 'plaintext'],
        [2, 'tls'],
      ],
    );
    const [plain, tls] = results as [BenchResult, BenchResult];
    // A client dialing TLS cannot talk to a plaintext server, nor participants without a
    // certificate to a coordinator that requires one: commits on the TLS row ran over mutual TLS.
    for (const r of results) {
      assert.ok(r.committedPerSec > 0, `${r.transport}: committed something`);
      assert.equal(r.errorsPerSec, 0, `${r.transport}: no call failed (${r.firstError ?? ''})`);
    }
    assert.equal(plain.vsPlaintext, undefined);
    assert.equal(tls.vsPlaintext?.committedPerSec, tls.committedPerSec / plain.committedPerSec);
    assert.equal(tls.vsPlaintext?.totalCpuUsPerTx, tls.totalCpuUsPerTx / plain.totalCpuUsPerTx);

    const [header, , first, second] = formatTable(results).split('\n');
    assert.match(header ?? '', / tls .* × plaintext$/);
    assert.match(first ?? '', / off .* -$/);
    assert.match(second ?? '', new RegExp(` mutual .* ${tls.vsPlaintext?.committedPerSec.toFixed(2)}×$`));
  });

  it('refuses --tls together with --tls-compare, and runs plaintext only by default', async () => {
    const e = await parseBenchFlags(['--tls', '--tls-compare']);
    assert.ok(e instanceof CommanderError && /--tls.*--tls-compare|--tls-compare.*--tls/.test(e.message), String(e));
    assert.deepEqual(resolveBenchOptions({}).transports, ['plaintext']);
    assert.deepEqual(resolveBenchOptions({ tls: 'on' }).transports, ['tls']);
  });
});

describe('verdict bench --interval', () => {

  for (const [bad, why] of [
    ['0', /from 100ms to 24h/],
    ['50ms', /from 100ms to 24h/],
    ['-1s', /with a unit/],
    ['abc', /with a unit/],
    ['', /with a unit/],
    ['5', /with a unit/],
  ] as const) {
    it(`rejects ${JSON.stringify(bad)} as a flag value, naming the flag`, async () => {
      const e = await parseBenchFlags(['--interval', bad]);
      assert.ok(e instanceof CommanderError, `a commander error (got ${String(e)})`);
      assert.equal(e.code, 'commander.invalidArgument');
      assert.match(e.message, /--interval/);
      assert.match(e.message, why);
    });
  }

  it('rejects an interval over half the duration as a usage error, before anything runs', async () => {
    const e = await parseBenchFlags(['--duration', '4s', '--interval', '3s']);
    assert.ok(e instanceof CommanderError, `a commander error (got ${String(e)})`);
    assert.equal(e.code, 'commander.invalidArgument');
    assert.match(e.message, /--interval 3s is more than half of --duration 4s/);
  });

  it('accepts a positive interval up to half the duration, and none by default', () => {
    assert.equal(resolveBenchOptions({ durationS: 10 }).intervalS, undefined);
    assert.equal(resolveBenchOptions({ durationS: 10, intervalS: 5 }).intervalS, 5);
    assert.equal(resolveBenchOptions({ durationS: 10, intervalS: 0.5 }).intervalS, 0.5);
  });

  for (const [intervalS, why] of [
    [0, 'zero'],
    [-1, 'negative'],
    [Number.NaN, 'not a number'],
    [0.01, 'below the minimum'],
    [6, 'more than half the duration (fewer than two samples)'],
  ] as const) {
    it(`refuses an interval that is ${why}`, () => {
      assert.throws(() => resolveBenchOptions({ durationS: 10, intervalS }), (e: unknown) => e instanceof RangeError && /intervalS/.test(e.message));
    });
  }

  it('ends the last interval at the end of the window, keeping a long remainder and folding a short one', () => {
    assert.deepEqual(sampleTimesS(20, 5), [5, 10, 15, 20]);
    assert.deepEqual(sampleTimesS(3, 1), [1, 2, 3]);
    assert.deepEqual(sampleTimesS(13, 5), [5, 10, 13], 'a remainder of half an interval or more is an interval of its own');
    assert.deepEqual(sampleTimesS(12, 5), [5, 12], 'a shorter remainder joins the last interval');
    assert.deepEqual(sampleTimesS(0.3, 0.1), [0.1, 0.2, 0.3], 'no interval lost to rounding');
  });
});

function assertSane(r: BenchResult): void {
  const where = `P=${r.participants} inflight=${r.inflight}`;
  assert.ok(r.committedPerSec > 0, `${where}: committed something`);
  assert.equal(r.errorsPerSec, 0, `${where}: no call failed (${r.firstError ?? ''})`);
  // Loose on purpose: at a few in flight Verdict answers after one round trip and the echo after
  // two, and on a shared machine the two runs never see the same neighbours.
  assert.ok(r.ceilingRatio !== null && r.ceilingRatio > 0 && r.ceilingRatio < 2, `${where}: ceiling ratio ${r.ceilingRatio} is plausible`);
  assert.ok(r.p50Ms > 0 && r.p50Ms <= r.p95Ms && r.p95Ms <= r.p99Ms, `${where}: percentiles ordered (${r.p50Ms}, ${r.p95Ms}, ${r.p99Ms})`);
  assert.ok(Number.isFinite(r.forcedWritesPerTx), `${where}: coordinator forced writes per tx is a number (${r.forcedWritesPerTx})`);
  assert.ok(Number.isFinite(r.participantForcedWritesPerTx), `${where}: participant forced writes per tx is a number`);
  assert.ok(r.peakRssMb > 0, `${where}: peak RSS reported`);
  // The JSON contract of --json.
  const json = JSON.parse(JSON.stringify(r)) as Record<string, unknown>;
  for (const key of ['participants', 'inflight', 'committedPerSec', 'p50Ms', 'p99Ms', 'ceilingRatio', 'forcedWritesPerTx', 'peakRssMb']) {
    assert.equal(typeof json[key], 'number', `${where}: ${key} is a number in JSON`);
  }
}
