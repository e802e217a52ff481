// The crash suite with mutual TLS on every connection (throwaway certificates): random SIGKILLs
// and SIGSTOPs of the coordinator and the banks, each restart a fresh TLS handshake under the
// same certificates, then the history checked like every other crash run. And one failpoint
// crash of the coordinator (after its COMMIT record), re-driven to the banks over TLS.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runFailpointCrash, runRandomFaults, type CrashRunReport } from '../../src/faults/crash-run.js';
import { assertClean, crashSeed, exclusiveCrashSuite, runDir } from './crash-support.js';

/** Length of the fault phase, in ms. */
const FAULT_PHASE_MS = 6_000;

/** How every incarnation of the coordinator served, from its log (read before the run's directory goes). */
function coordinatorTlsModes(report: CrashRunReport): string[] {
  return readFileSync(join(report.dir, 'coordinator.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"coordinator started"'))
    .map((l) => (JSON.parse(l) as { tls: string }).tls);
}

describe('the crash suite with mutual TLS', () => {
  let release: (() => void) | undefined;

  before(async () => {
    release = await exclusiveCrashSuite();
  });

  after(() => release?.());

  it('keeps every transfer all-or-nothing under random SIGKILLs and SIGSTOPs', { timeout: 180_000 }, async (t) => {
    const seed = crashSeed();
    t.diagnostic(`seed ${seed}`);
    const report = await runRandomFaults({ dir: runDir(`tls-random-${seed}`), seed, faultPhaseMs: FAULT_PHASE_MS, tls: true });
    t.diagnostic(report.faults.map((f) => `${(f.atMs / 1000).toFixed(1)}s ${f.process} ${f.what}`).join('; '));
    const modes = coordinatorTlsModes(report);
    assertClean(report);
    assert.ok(report.faults.length > 0, `the schedule of seed ${seed} injected no fault`);
    assert.ok(modes.length > 0 && modes.every((m) => m === 'mutual'), `every coordinator incarnation served mutual TLS: ${modes.join(', ')}`);
    assert.ok((report.summary?.observed.committed ?? 0) > 0, 'transfers committed over TLS');
  });

  it('re-drives a durable COMMIT to the banks over TLS after the coordinator dies right after writing it', { timeout: 180_000 }, async (t) => {
    const seed = crashSeed();
    t.diagnostic(`seed ${seed}`);
    const report = await runFailpointCrash({ dir: runDir(`tls-after-commit-${seed}`), seed, process: 'coordinator', failpoint: 'coordinator.after-commit-record', tls: true });
    const modes = coordinatorTlsModes(report);
    assertClean(report);
    assert.ok(report.exits.some((e) => e.process === 'coordinator' && e.cause === 'failpoint'), 'the coordinator died at its failpoint');
    assert.ok(modes.length >= 2 && modes.every((m) => m === 'mutual'), `both incarnations served mutual TLS: ${modes.join(', ')}`);
  });
});
