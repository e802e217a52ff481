// Translation between the generated wire types and the protocol's plain types. Enum values that
// are not exactly one known member translate to `undefined`: never guessed, never "success".

import { Outcome as WireOutcome, Vote as WireVote } from '../gen/verdict/v1/common.js';
import { TransactionState as WireState, type Transaction as WireTransaction } from '../gen/verdict/v1/transaction.js';
import { TxState, type TxView } from '../protocol/coordinator-events.js';
import { Outcome, Vote } from '../protocol/types.js';

/** Wire outcome → plain; `undefined` for UNSPECIFIED or unknown numbers. */
export function outcomeFromWire(o: number): Outcome | undefined {
  return o === WireOutcome.OUTCOME_COMMITTED ? Outcome.COMMITTED : o === WireOutcome.OUTCOME_ABORTED ? Outcome.ABORTED : undefined;
}

/** Plain outcome → wire. */
export function outcomeToWire(o: Outcome | undefined): WireOutcome {
  return o === Outcome.COMMITTED ? WireOutcome.OUTCOME_COMMITTED : o === Outcome.ABORTED ? WireOutcome.OUTCOME_ABORTED : WireOutcome.OUTCOME_UNSPECIFIED;
}

/** Wire vote → plain; `undefined` for UNSPECIFIED or unknown numbers. */
export function voteFromWire(v: number): Vote | undefined {
  switch (v) {
    case WireVote.VOTE_YES:
      return Vote.YES;
    case WireVote.VOTE_NO:
      return Vote.NO;
    case WireVote.VOTE_READ_ONLY:
      return Vote.READ_ONLY;
    default:
      return undefined;
  }
}

/** Plain vote → wire. */
export function voteToWire(v: Vote | undefined): WireVote {
  switch (v) {
    case Vote.YES:
      return WireVote.VOTE_YES;
    case Vote.NO:
      return WireVote.VOTE_NO;
    case Vote.READ_ONLY:
      return WireVote.VOTE_READ_ONLY;
    default:
      return WireVote.VOTE_UNSPECIFIED;
  }
}

const STATE_TO_WIRE: Record<TxState, WireState> = {
  active: WireState.TRANSACTION_STATE_ACTIVE,
  preparing: WireState.TRANSACTION_STATE_PREPARING,
  decided: WireState.TRANSACTION_STATE_DECIDED,
  ended: WireState.TRANSACTION_STATE_ENDED,
  'in-doubt': WireState.TRANSACTION_STATE_IN_DOUBT,
  forgotten: WireState.TRANSACTION_STATE_FORGOTTEN,
};

/** A transaction view → the wire message. */
export function viewToWire(view: TxView): WireTransaction {
  return {
    txId: view.txId,
    state: STATE_TO_WIRE[view.state],
    outcome: outcomeToWire(view.outcome),
    reason: view.reason ?? '',
    deadlineUnixMs: view.deadline ?? 0,
    presumed: view.presumed,
    needsAttention: view.needsAttention,
    owner: view.owner ?? '',
    branches: view.branches.map((b) => ({
      participant: b.participant,
      vote: voteToWire(b.vote),
      acknowledged: b.acknowledged,
      attempts: b.attempts,
      lastError: b.lastError ?? '',
    })),
  };
}

/** The wire message → a transaction view; `undefined` when its state is not a known one. */
export function viewFromWire(t: WireTransaction): TxView | undefined {
  const state = (Object.keys(STATE_TO_WIRE) as TxState[]).find((k) => STATE_TO_WIRE[k] === t.state);
  if (!state) return undefined;
  const outcome = outcomeFromWire(t.outcome);
  return {
    txId: t.txId,
    state,
    ...(outcome ? { outcome } : {}),
    ...(t.reason ? { reason: t.reason } : {}),
    ...(t.deadlineUnixMs ? { deadline: t.deadlineUnixMs } : {}),
    presumed: t.presumed,
    needsAttention: t.needsAttention,
    ...(t.owner ? { owner: t.owner } : {}),
    branches: t.branches.map((b) => {
      const vote = voteFromWire(b.vote);
      return {
        participant: b.participant,
        ...(vote ? { vote } : {}),
        acknowledged: b.acknowledged,
        attempts: b.attempts,
        ...(b.lastError ? { lastError: b.lastError } : {}),
      };
    }),
  };
}
