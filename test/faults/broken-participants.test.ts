// The harness catches broken participants in a bounded run and names what is wrong: one that
// applies a commit twice, one that votes YES without persisting, one that forgets its prepared
// state on restart. Faults are aimed at the broken participant (`ledger-a`); a run that happens
// to find nothing is repeated with the next seed, at most MAX_ROUNDS times.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runChaos, type ChaosReport, type FailpointName, type FaultKind, type ViolationKind } from '../../src/testing/index.js';
import { ledgerInvariant, ledgerParticipant, ledgerTransaction, type LedgerVariant } from './broken-participants.js';

const MAX_ROUNDS = 4;
const DURATION_MS = 4_000;

interface CatchOptions {
  readonly failpoints?: FailpointName[];
  /** How long the correct participants' prepare hooks take, in ms. */
  readonly peersPrepareMs?: number;
}

async function catchBroken(variant: LedgerVariant, seed: number, faults: FaultKind[], { failpoints, peersPrepareMs = 0 }: CatchOptions = {}): Promise<ChaosReport> {
  let report: ChaosReport | undefined;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    report = await runChaos({
      participants: [
        ledgerParticipant('ledger-a', variant),
        ledgerParticipant('ledger-b', 'correct', peersPrepareMs),
        ledgerParticipant('ledger-c', 'correct', peersPrepareMs),
      ],
      transaction: ledgerTransaction,
      invariant: ledgerInvariant,
      duration: DURATION_MS,
      seed: seed + round,
      faults,
      targets: ['ledger-a'],
      concurrency: 8,
      settleTimeoutMs: 8_000,
      ...(failpoints ? { failpoints } : {}),
    });
    if (report.violations.length > 0) return report;
    rmSync(report.dir, { recursive: true, force: true });
  }
  return report as ChaosReport;
}

function assertCaught(report: ChaosReport, kinds: ViolationKind[]): void {
  const found = new Set(report.violations.map((v) => v.kind));
  assert.ok(
    kinds.some((k) => found.has(k)),
    `expected one of ${kinds.join(', ')}; found ${[...found].join(', ') || 'nothing'} (seed ${report.seed})`,
  );
  assert.ok(found.has('invariant'), `the ledger invariant should fail too; found ${[...found].join(', ')}`);
  rmSync(report.dir, { recursive: true, force: true });
}

describe('runChaos on broken participants', { timeout: 120_000 }, () => {
  it('catches a participant that applies a commit twice (duplicate-apply)', async () => {
    const report = await catchBroken('applies-commit-twice', 1, ['failpoint', 'kill'], { failpoints: ['participant.after-apply-hook'] });
    assertCaught(report, ['duplicate-apply']);
    assert.match(report.violations.find((v) => v.kind === 'duplicate-apply')?.message ?? '', /ledger-a/);
  });

  it('catches a participant that votes YES without persisting (lost-commit)', async () => {
    // Like the next one, this shows only when a restart finds a commit in doubt (see there).
    const report = await catchBroken('votes-yes-without-persisting', 1, ['kill'], { peersPrepareMs: 30 });
    assertCaught(report, ['lost-commit', 'atomicity']);
  });

  it('catches a participant that forgets its prepared state on restart (lost-commit)', async () => {
    // Only a restart with a commit in doubt shows this bug. With fast peers ledger-a is in doubt
    // for a millisecond or two per transaction, and a kill often lands outside every window (CI
    // once missed it in four rounds). Peers whose prepare takes about 30 ms keep ledger-a's YES
    // branches in doubt that long; only kills, since a delayed link can lose the votes in flight
    // with the connection, and then the transactions abort and nothing is in doubt.
    const report = await catchBroken('forgets-prepared-on-restart', 1, ['kill'], { peersPrepareMs: 30 });
    assertCaught(report, ['lost-commit', 'atomicity']);
  });
});
