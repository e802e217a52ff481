// The demo's auditor is only worth its "OK" if it says no to broken histories: half-applied
// transfers, money created or lost, an overdraft that committed, an abort that left a trace.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { audit, quantile, type TransferRecord } from '../../src/demo/audit.js';
import type { BankLedger } from '../../src/demo/bank.js';

function ledger(balances: Record<string, number>, applied: Record<string, number> = {}, holds: string[] = []): BankLedger {
  const b = new Map(Object.entries(balances));
  return { balances: b, total: [...b.values()].reduce((x, y) => x + y, 0), applied: new Map(Object.entries(applied)), holds };
}

function transfer(txId: string, amount: number, outcome: TransferRecord['outcome'], overdraft = false): TransferRecord {
  return { from: { bank: 'a', account: '1' }, to: { bank: 'b', account: '1' }, amount, overdraft, outcome, txId, latencyMs: 1 };
}

const before = new Map([
  ['a', ledger({ '1': 100 })],
  ['b', ledger({ '1': 100 })],
]);

describe('demo audit', () => {
  it('accepts a history where each commit is applied at both banks and each abort at neither', () => {
    const after = new Map([
      ['a', ledger({ '1': 70 }, { 'tx-1-1': -30 })],
      ['b', ledger({ '1': 130 }, { 'tx-1-1': 30 })],
    ]);
    assert.deepEqual(audit([transfer('tx-1-1', 30, 'committed'), transfer('tx-1-2', 500, 'aborted', true)], before, after), []);
  });

  it('flags a commit applied at one bank only, and the money it created', () => {
    const after = new Map([
      ['a', ledger({ '1': 100 })],
      ['b', ledger({ '1': 130 }, { 'tx-1-1': 30 })],
    ]);
    const violations = audit([transfer('tx-1-1', 30, 'committed')], before, after);
    assert.ok(violations.some((v) => v.includes('total balance changed from 200 to 230')), violations.join('\n'));
    assert.ok(violations.some((v) => v.includes('tx-1-1 committed but a never applied it')), violations.join('\n'));
    assert.ok(violations.some((v) => v.includes('not as one debit and its credit')), violations.join('\n'));
  });

  it('flags an aborted transfer that was applied, a committed overdraft, a negative balance and a leftover hold', () => {
    const after = new Map([
      ['a', ledger({ '1': -400 }, { 'tx-1-1': -500 }, ['tx-1-2'])],
      ['b', ledger({ '1': 600 }, { 'tx-1-1': 500 })],
    ]);
    const violations = audit([transfer('tx-1-1', 500, 'committed', true), transfer('tx-1-2', 5, 'aborted')], before, after);
    assert.ok(violations.some((v) => v.includes('overdrew')), violations.join('\n'));
    assert.ok(violations.some((v) => v.includes('is overdrawn (-400)')), violations.join('\n'));
    assert.ok(violations.some((v) => v.includes('still holds 1 undecided leg')), violations.join('\n'));

    const abortedButApplied = new Map([
      ['a', ledger({ '1': 95 }, { 'tx-1-2': -5 })],
      ['b', ledger({ '1': 105 }, { 'tx-1-2': 5 })],
    ]);
    const more = audit([transfer('tx-1-2', 5, 'aborted')], before, abortedButApplied);
    assert.ok(more.some((v) => v.includes('tx-1-2 (aborted) was applied at a')), more.join('\n'));
    assert.ok(more.some((v) => v.includes('its committed transfers give 100')), more.join('\n'));
  });

  it('computes nearest-rank quantiles', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(quantile(sorted, 0.5), 50);
    assert.equal(quantile(sorted, 0.99), 99);
    assert.equal(quantile([], 0.5), 0);
  });
});
