// The benchmark harness end to end on a tiny configuration: real child processes, the echo
// ceiling, and results whose fields are sane. Performance itself is never asserted: this machine
// is shared and noisy, and a benchmark is read by people, not by CI.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { formatTable, runBench, type BenchResult } from '../../src/bench/index.js';

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
