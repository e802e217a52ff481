// Seeded random faults on real processes: SIGKILLs of random processes (each restarted on its data
// directory after a random downtime) and SIGSTOP/SIGCONT pauses longer than the transaction timeout
// (some longer than a call's deadline), overlapping on different processes, under a workload of
// concurrent transfers; then the cluster is healed and the history checked. One short round here;
// `npm run test:crash -- --rounds N` runs many. VERDICT_CRASH_SEED replays a seed (the fault
// schedule and the transfer plan; the timing of a real machine never replays exactly).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runRandomFaults } from '../../src/faults/crash-run.js';
import { assertClean, crashSeed, exclusiveCrashSuite, runDir } from './crash-support.js';

/** Length of the fault phase of the round run by `npm test`, in ms. */
const FAULT_PHASE_MS = 8_000;

describe('random SIGKILLs and SIGSTOPs of random processes', () => {
  let release: (() => void) | undefined;

  before(async () => {
    release = await exclusiveCrashSuite();
  });

  after(() => release?.());

  it('keeps every transfer all-or-nothing and every answer honest', { timeout: 180_000 }, async (t) => {
    const seed = crashSeed();
    t.diagnostic(`seed ${seed}`);
    const report = await runRandomFaults({ dir: runDir(`random-${seed}`), seed, faultPhaseMs: FAULT_PHASE_MS });
    t.diagnostic(report.faults.map((f) => `${(f.atMs / 1000).toFixed(1)}s ${f.process} ${f.what}`).join('; '));
    assertClean(report);
    assert.ok(report.faults.length > 0, `the schedule of seed ${seed} injected no fault`);
  });
});
