// The demo's auditor: compares what the initiator was told with what every bank durably holds.
// Money is conserved, no account is overdrawn, and every transfer is all-or-nothing: applied at
// both of its banks if it committed, at neither if it aborted.

import type { BankLedger } from './bank.js';

/** Where one leg of a transfer goes. */
export interface AccountRef {
  readonly bank: string;
  readonly account: string;
}

/** What the initiator learnt of a transfer. */
export type TransferOutcome = 'committed' | 'aborted' | 'unknown';

/** A transfer the demo ran, and what it was told. */
export interface TransferRecord {
  readonly from: AccountRef;
  readonly to: AccountRef;
  readonly amount: number;
  /** Asked for more than any account can hold: it must abort. */
  readonly overdraft: boolean;
  readonly outcome: TransferOutcome;
  /** Known for every committed or aborted transfer. */
  readonly txId: string | undefined;
  readonly latencyMs: number;
}

/** Checks every invariant; returns the violations found (empty when all hold). */
export function audit(
  transfers: readonly TransferRecord[],
  before: ReadonlyMap<string, BankLedger>,
  after: ReadonlyMap<string, BankLedger>,
): string[] {
  const violations: string[] = [];
  const totalBefore = sum([...before.values()].map((l) => l.total));
  const totalAfter = sum([...after.values()].map((l) => l.total));
  if (totalAfter !== totalBefore) violations.push(`the total balance changed from ${totalBefore} to ${totalAfter}`);

  for (const [bank, ledger] of after) {
    for (const [account, balance] of ledger.balances) {
      if (balance < 0) violations.push(`account ${account} at ${bank} is overdrawn (${balance})`);
    }
    if (ledger.holds.length > 0) violations.push(`${bank} still holds ${ledger.holds.length} undecided leg(s), e.g. ${ledger.holds[0]}`);
  }

  const known = new Set<string>();
  for (const t of transfers) {
    if (t.txId === undefined) continue;
    known.add(t.txId);
    if (t.outcome === 'committed') {
      if (t.overdraft) violations.push(`${t.txId} overdrew ${t.from.account} at ${t.from.bank} by design and still committed`);
      expectApplied(violations, after, t.txId, t.from.bank, -t.amount);
      expectApplied(violations, after, t.txId, t.to.bank, t.amount);
    }
    for (const [bank, ledger] of after) {
      const involved = bank === t.from.bank || bank === t.to.bank;
      if (ledger.applied.has(t.txId) && (t.outcome === 'aborted' || !involved)) {
        violations.push(`${t.txId} (${t.outcome}) was applied at ${bank}`);
      }
    }
  }

  // Every applied transaction, including those whose outcome the initiator never learnt, must
  // be one debit and one equal credit.
  const unknownOutcomes = transfers.filter((t) => t.outcome === 'unknown').length;
  const legs = new Map<string, number[]>();
  for (const ledger of after.values()) {
    for (const [txId, delta] of ledger.applied) legs.set(txId, [...(legs.get(txId) ?? []), delta]);
  }
  let strangers = 0;
  for (const [txId, deltas] of legs) {
    if (deltas.length !== 2 || sum(deltas) !== 0) violations.push(`${txId} was applied as [${deltas.join(', ')}], not as one debit and its credit`);
    if (!known.has(txId)) strangers++;
  }
  if (strangers > unknownOutcomes) violations.push(`${strangers} applied transaction(s) were never run by this demo (only ${unknownOutcomes} outcome(s) unknown)`);

  // With every outcome known, each balance is its opening balance plus its committed deltas.
  if (unknownOutcomes === 0) {
    const expected = new Map<string, number>();
    for (const [bank, ledger] of before) for (const [account, balance] of ledger.balances) expected.set(`${bank}/${account}`, balance);
    for (const t of transfers) {
      if (t.outcome !== 'committed') continue;
      const from = `${t.from.bank}/${t.from.account}`;
      const to = `${t.to.bank}/${t.to.account}`;
      expected.set(from, (expected.get(from) ?? 0) - t.amount);
      expected.set(to, (expected.get(to) ?? 0) + t.amount);
    }
    for (const [bank, ledger] of after) {
      for (const [account, balance] of ledger.balances) {
        const want = expected.get(`${bank}/${account}`);
        if (want !== balance) violations.push(`account ${account} at ${bank} holds ${balance}, its committed transfers give ${want}`);
      }
    }
  }
  return violations;
}

function expectApplied(violations: string[], after: ReadonlyMap<string, BankLedger>, txId: string, bank: string, delta: number): void {
  const applied = after.get(bank)?.applied.get(txId);
  if (applied === undefined) violations.push(`${txId} committed but ${bank} never applied it`);
  else if (applied !== delta) violations.push(`${txId} applied ${applied} at ${bank} instead of ${delta}`);
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** The value at quantile `q` (0…1) of `sorted` (nearest rank); 0 when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? 0;
}
