// The checker of a chaos run on arbitrary participants (the testing harness): it compares what the
// initiator was told, what the coordinator finally says, what every participant reported and
// durably holds, and — when the application says how to count them — how many times each
// transaction took effect at each participant. Every finding is a named violation.

import type { TxView } from '../protocol/coordinator-events.js';
import type { Violation } from './chaos-report.js';

/** What the initiator saw of one transaction. */
export type InitiatorView = 'committed' | 'aborted' | 'unknown' | 'not-begun';

/** One transaction of the workload. */
export interface ChaosTx {
  readonly seq: number;
  readonly txId: string | undefined;
  readonly participants: readonly string[];
  readonly observed: InitiatorView;
  readonly error: string | undefined;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** A participant's report that a transaction finished there. */
export interface FinishedRecord {
  readonly outcome: string;
  readonly incarnation: number;
  readonly at: number;
}

/** Everything the checker compares. */
export interface ChaosCheckInput {
  readonly txs: readonly ChaosTx[];
  /** The coordinator's final view of every tx id, after healing. */
  readonly views: ReadonlyMap<string, TxView>;
  /** Each participant's durable record state by tx id (`prepared`, `committed`, `aborted`), read after it closed. */
  readonly records: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** Each participant's PREPARED records left after healing. */
  readonly prepared: ReadonlyMap<string, readonly string[]>;
  /** `finished` reports by participant and tx id, across incarnations. */
  readonly finished: ReadonlyMap<string, ReadonlyMap<string, readonly FinishedRecord[]>>;
  /** How many times each tx took effect, by participant (only for participants that can tell). */
  readonly effects: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/** Checks atomicity, no loss, termination, hooks run once and exactly-once effects. */
export function checkChaosHistory(input: ChaosCheckInput): Violation[] {
  const out: Violation[] = [];
  const add = (kind: Violation['kind'], message: string): void => void out.push({ kind, message });
  for (const tx of input.txs) {
    if (tx.txId === undefined) continue;
    const view = input.views.get(tx.txId);
    if (!view || view.state !== 'ended' || view.outcome === undefined) {
      add('termination', `${tx.txId}: ${view ? `still ${view.state}` : 'no final state'} at the coordinator after healing`);
      continue;
    }
    const outcome = view.outcome;
    if (tx.observed === 'committed' && outcome !== 'committed') add('lost-commit', `${tx.txId} was reported COMMITTED to the initiator but ended ${outcome}`);
    if (tx.observed === 'aborted' && outcome === 'committed') add('phantom-commit', `${tx.txId} was reported ABORTED to the initiator but committed`);
    const states = new Map<string, string | undefined>();
    for (const p of tx.participants) states.set(p, input.records.get(p)?.get(tx.txId));
    const committedAt = [...states].filter(([, s]) => s === 'committed').map(([p]) => p);
    const abortedAt = [...states].filter(([, s]) => s === 'aborted').map(([p]) => p);
    if (committedAt.length > 0 && abortedAt.length > 0) add('atomicity', `${tx.txId} committed at ${committedAt.join(', ')} but aborted at ${abortedAt.join(', ')}`);
    // The coordinator's view of an ended transaction may no longer carry votes: a participant
    // counts as a YES voter when the coordinator says so or when it holds a record of the tx.
    const votes = new Map(view.branches.map((b) => [b.participant, b.vote]));
    for (const participant of tx.participants) {
      const state = states.get(participant);
      const votedYes = votes.get(participant) === 'yes' || (state !== undefined && votes.get(participant) !== 'read-only');
      if (outcome === 'committed' && votedYes && state !== 'committed') {
        add(tx.observed === 'committed' ? 'lost-commit' : 'atomicity', `${tx.txId} committed but ${participant}, which voted YES, holds ${state ?? 'no record'}`);
      }
      if (outcome === 'aborted' && state === 'committed') add('atomicity', `${tx.txId} aborted but ${participant} committed it`);
      const effects = input.effects.get(participant);
      if (!effects) continue;
      const n = effects.get(tx.txId) ?? 0;
      if (n > 1) add('duplicate-apply', `${tx.txId} took effect ${n} times at ${participant}`);
      if (outcome === 'committed' && votedYes && n === 0) {
        add(tx.observed === 'committed' ? 'lost-commit' : 'atomicity', `${tx.txId} committed but never took effect at ${participant}`);
      }
      if (outcome === 'aborted' && n > 0) add('atomicity', `${tx.txId} aborted but took effect at ${participant}`);
    }
  }
  for (const [p, list] of input.prepared) {
    if (list.length > 0) add('termination', `${p} still holds ${list.length} PREPARED record(s) after healing: ${list.slice(0, 5).join(', ')}`);
  }
  for (const [p, byTx] of input.finished) {
    for (const [txId, list] of byTx) {
      if (list.length > 1) add('duplicate-hook-call', `${p} finished ${txId} ${list.length} times (incarnations ${list.map((r) => r.incarnation).join(', ')})`);
    }
  }
  return out;
}
