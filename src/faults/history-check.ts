// The checker of a crash run: compares what the initiator was told, what the coordinator finally
// says, what every bank reported while it ran, and what every bank durably holds once stopped.
// Run it at quiescence, after healing; it returns every violation it finds (empty when all hold).

import { audit, type TransferRecord } from '../demo/audit.js';
import type { BankLedger } from '../demo/bank.js';
import type { TxView } from '../protocol/coordinator-events.js';
import type { DurableBank, FinishedReport } from './process-cluster.js';
import type { TransferAttempt } from './transfer-workload.js';

/** Everything the checker compares. */
export interface HistoryCheckInput {
  /** Every attempt of the workload. */
  readonly attempts: readonly TransferAttempt[];
  /** The coordinator's final view of every tx id the workload got, after healing. */
  readonly finalViews: ReadonlyMap<string, TxView>;
  /** Every bank's durable state, read after it exited. */
  readonly banks: ReadonlyMap<string, DurableBank>;
  /** The transactions every bank reported finished while it ran, across incarnations. */
  readonly finished: ReadonlyMap<string, ReadonlyMap<string, readonly FinishedReport[]>>;
}

/** Counts of a history, for reports. */
export interface HistorySummary {
  readonly attempts: number;
  /** What the initiator saw. */
  readonly observed: Readonly<Record<TransferAttempt['observed'], number>>;
  /** Unknown outcomes, as the coordinator resolved them. */
  readonly unknownResolved: { readonly committed: number; readonly aborted: number; readonly unresolved: number };
  /** Final outcomes of every tx id. */
  readonly committed: number;
  readonly aborted: number;
  /** Error codes of failed calls, with how often each came. */
  readonly errors: Readonly<Record<string, number>>;
}

/** What the checker found. */
export interface HistoryCheckResult {
  readonly violations: string[];
  readonly summary: HistorySummary;
}

/** Checks atomicity, no loss, no phantom, nothing in doubt, exactly-once and conservation of money. */
export function checkHistory(input: HistoryCheckInput): HistoryCheckResult {
  const violations: string[] = [];
  const { attempts, finalViews, banks } = input;
  const withTx = attempts.filter((a): a is TransferAttempt & { txId: string } => a.txId !== undefined);

  // 1. Termination: every transaction ended at the coordinator, with an outcome.
  const resolved = new Map<string, 'committed' | 'aborted'>();
  for (const a of withTx) {
    const view = finalViews.get(a.txId);
    if (!view) violations.push(`${a.txId}: the coordinator gave no final state after healing`);
    else if (view.state !== 'ended' || view.outcome === undefined) violations.push(`${a.txId}: still ${view.state} at the coordinator after healing`);
    else resolved.set(a.txId, view.outcome);
  }

  // 2. No loss, no phantom: a definite answer to the initiator is the final outcome (P8, P13).
  for (const a of withTx) {
    const outcome = resolved.get(a.txId);
    if (outcome === undefined) continue;
    if (a.observed === 'committed' && outcome !== 'committed') violations.push(`LOST: ${a.txId} was reported COMMITTED to the initiator but ended ${outcome}`);
    if (a.observed === 'aborted' && outcome !== 'aborted') violations.push(`PHANTOM: ${a.txId} was reported ABORTED to the initiator but ended ${outcome}`);
    if (a.overdraft && outcome === 'committed') violations.push(`${a.txId} overdrew on purpose and still committed`);
  }

  // 3. Atomicity and money, judged against the final outcomes by the demo's auditor: applied at
  //    both banks or at neither, never applied when aborted, no stranger, no hold left, every
  //    balance its opening balance plus its committed transfers, the total unchanged.
  const records: TransferRecord[] = withTx.map((a) => ({
    from: a.from,
    to: a.to,
    amount: a.amount,
    overdraft: a.overdraft,
    outcome: resolved.get(a.txId) ?? 'unknown',
    txId: a.txId,
    latencyMs: a.endedAt - a.startedAt,
  }));
  const before = new Map<string, BankLedger>();
  const after = new Map<string, BankLedger>();
  for (const [name, bank] of banks) {
    if (!bank.seed) {
      violations.push(`${name} was never seeded: its store has no opening balances`);
      continue;
    }
    before.set(name, openingLedger(bank.seed));
    after.set(name, bank.ledger);
  }
  violations.push(...audit(records, before, after));

  // 4. Nothing in doubt: no PREPARED record left in any participant log (P10).
  for (const [name, bank] of banks) {
    if (bank.prepared.length > 0) violations.push(`${name} still holds ${bank.prepared.length} PREPARED record(s) after healing: ${bank.prepared.slice(0, 5).join(', ')}`);
  }

  // 5. Exactly once: every balance is its opening balance plus the deltas of the applied records,
  //    so no commit moved money without its record or twice with one (P8).
  const legs = new Map<string, { bank: string; account: string }[]>();
  for (const a of withTx) legs.set(a.txId, [a.from, a.to]);
  for (const [name, bank] of banks) {
    if (!bank.seed) continue;
    const expected = new Map<string, number>();
    for (const account of bank.ledger.balances.keys()) expected.set(account, bank.seed.balance);
    for (const [txId, delta] of bank.ledger.applied) {
      const leg = legs.get(txId)?.find((l) => l.bank === name);
      if (!leg) continue; // A stranger: the auditor reports it.
      expected.set(leg.account, (expected.get(leg.account) ?? 0) + delta);
    }
    for (const [account, balance] of bank.ledger.balances) {
      const want = expected.get(account);
      if (balance !== want) violations.push(`${name} account ${account} holds ${balance} but its opening balance and applied records give ${want}`);
    }
  }

  // 6. Hooks ran once: a transaction finishes at a bank once, ever, with its final outcome.
  for (const [name, reports] of input.finished) {
    for (const [txId, list] of reports) {
      if (list.length > 1) {
        violations.push(`${name} finished ${txId} ${list.length} times (incarnations ${list.map((r) => r.incarnation).join(', ')}): a hook ran twice`);
      }
      const outcome = resolved.get(txId);
      for (const r of list) {
        if (outcome !== undefined && r.outcome !== undefined && r.outcome !== outcome) {
          violations.push(`${name} finished ${txId} as ${r.outcome} but it ended ${outcome}`);
        }
      }
    }
  }

  return { violations, summary: summarize(attempts, resolved) };
}

function openingLedger(seed: { readonly accounts: number; readonly balance: number }): BankLedger {
  const balances = new Map<string, number>();
  for (let i = 1; i <= seed.accounts; i++) balances.set(String(i), seed.balance);
  return { balances, total: seed.accounts * seed.balance, applied: new Map(), holds: [] };
}

function summarize(attempts: readonly TransferAttempt[], resolved: ReadonlyMap<string, 'committed' | 'aborted'>): HistorySummary {
  const observed = { committed: 0, aborted: 0, unknown: 0, 'not-begun': 0 };
  const unknownResolved = { committed: 0, aborted: 0, unresolved: 0 };
  const errors: Record<string, number> = {};
  for (const a of attempts) {
    observed[a.observed]++;
    if (a.observed === 'unknown') {
      const outcome = a.txId === undefined ? undefined : resolved.get(a.txId);
      unknownResolved[outcome ?? 'unresolved']++;
    }
    if (a.error !== undefined && a.observed !== 'aborted') {
      const colon = a.error.indexOf(':');
      const code = colon < 0 ? a.error : a.error.slice(0, colon);
      errors[code] = (errors[code] ?? 0) + 1;
    }
  }
  let committed = 0;
  for (const outcome of resolved.values()) if (outcome === 'committed') committed++;
  return { attempts: attempts.length, observed, unknownResolved, committed, aborted: resolved.size - committed, errors };
}
