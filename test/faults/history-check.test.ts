// The crash suite's checker must see what it is there to see: a clean history passes, and each
// kind of broken one (a lost commit, a phantom, half a transfer, a double application, a PREPARED
// record left, a hook run twice, a transaction that never ended) is named.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BankLedger } from '../../src/demo/bank.js';
import { checkHistory, type HistoryCheckInput } from '../../src/faults/history-check.js';
import type { DurableBank, FinishedReport } from '../../src/faults/process-cluster.js';
import type { TransferAttempt } from '../../src/faults/transfer-workload.js';
import type { TxView } from '../../src/protocol/coordinator-events.js';

const OPENING = 100;
const SEED = { accounts: 2, balance: OPENING };

function attempt(txId: string, observed: TransferAttempt['observed'], amount = 10): TransferAttempt {
  return {
    seq: 0,
    from: { bank: 'bank-1', account: '1' },
    to: { bank: 'bank-2', account: '1' },
    amount,
    overdraft: false,
    txId,
    observed,
    error: undefined,
    startedAt: 0,
    endedAt: 1,
  };
}

function ended(txId: string, outcome: 'committed' | 'aborted'): TxView {
  return { txId, state: 'ended', outcome, branches: [], presumed: false, needsAttention: false };
}

/** A bank whose account 1 moved by `delta` under the applied records `applied`. */
function bank(delta: number, applied: [string, number][] = [], prepared: string[] = []): DurableBank {
  const balances = new Map([
    ['1', OPENING + delta],
    ['2', OPENING],
  ]);
  const ledger: BankLedger = { balances, total: 2 * OPENING + delta, applied: new Map(applied), holds: [] };
  return { ledger, seed: SEED, prepared };
}

/** One committed transfer of 10 from bank-1 to bank-2, done right. */
function clean(): {
  attempts: TransferAttempt[];
  finalViews: Map<string, TxView>;
  banks: Map<string, DurableBank>;
  finished: Map<string, Map<string, FinishedReport[]>>;
} {
  return {
    attempts: [attempt('tx-1-1', 'committed'), attempt('tx-1-2', 'aborted')],
    finalViews: new Map([
      ['tx-1-1', ended('tx-1-1', 'committed')],
      ['tx-1-2', ended('tx-1-2', 'aborted')],
    ]),
    banks: new Map([
      ['bank-1', bank(-10, [['tx-1-1', -10]])],
      ['bank-2', bank(10, [['tx-1-1', 10]])],
    ]),
    finished: new Map([
      ['bank-1', new Map([['tx-1-1', [{ incarnation: 1, outcome: 'committed' }]]])],
      ['bank-2', new Map([['tx-1-1', [{ incarnation: 1, outcome: 'committed' }]]])],
    ]),
  };
}

function violations(input: HistoryCheckInput): string {
  return checkHistory(input).violations.join('\n');
}

describe('the crash history checker', () => {
  it('passes a clean history and counts it', () => {
    const result = checkHistory(clean());
    assert.deepEqual(result.violations, []);
    assert.equal(result.summary.committed, 1);
    assert.equal(result.summary.aborted, 1);
  });

  it('names a commit the initiator was told about and that ended aborted (lost)', () => {
    const input = clean();
    input.finalViews.set('tx-1-1', ended('tx-1-1', 'aborted'));
    input.banks.set('bank-1', bank(0));
    input.banks.set('bank-2', bank(0));
    input.finished.clear();
    assert.match(violations(input), /LOST: tx-1-1/);
  });

  it('names an abort the initiator was told about and that committed (phantom)', () => {
    const input = clean();
    input.finalViews.set('tx-1-2', ended('tx-1-2', 'committed'));
    assert.match(violations(input), /PHANTOM: tx-1-2/);
  });

  it('names a transfer applied at one bank only', () => {
    const input = clean();
    input.banks.set('bank-2', bank(0));
    assert.match(violations(input), /tx-1-1 committed but bank-2 never applied it/);
  });

  it('names money moved twice under one applied record', () => {
    const input = clean();
    input.banks.set('bank-2', bank(20, [['tx-1-1', 10]]));
    assert.match(violations(input), /bank-2 account 1 holds 120 but its opening balance and applied records give 110/);
  });

  it('names a PREPARED record left after healing', () => {
    const input = clean();
    input.banks.set('bank-1', bank(-10, [['tx-1-1', -10]], ['tx-1-3']));
    assert.match(violations(input), /bank-1 still holds 1 PREPARED record/);
  });

  it('names a transaction finished twice at a bank (a hook ran again)', () => {
    const input = clean();
    input.finished.get('bank-2')?.set('tx-1-1', [
      { incarnation: 1, outcome: 'committed' },
      { incarnation: 2, outcome: 'committed' },
    ]);
    assert.match(violations(input), /bank-2 finished tx-1-1 2 times \(incarnations 1, 2\)/);
  });

  it('names a transaction the coordinator never ended', () => {
    const input = clean();
    input.finalViews.set('tx-1-2', { ...ended('tx-1-2', 'aborted'), state: 'decided' });
    assert.match(violations(input), /tx-1-2: still decided at the coordinator after healing/);
  });
});
