// The coordinator state machine's inputs and effects. The machine is driven by a shell (the gRPC
// server with its LevelDB log in production, the simulator in tests) that turns the world into
// inputs and carries out the effects in order.

import type { BranchSpec, Outcome, ProtocolError, Vote } from './types.js';

/** What a coordinator log record states. */
export const CoordinatorRecordKind = {
  /** The commit decision, forced before any commit message leaves. */
  COMMIT: 'commit',
  /** A one-phase commit handed to its single participant. */
  ONE_PHASE: 'one-phase',
  /** The transaction ended: a summary kept for status queries. */
  END: 'end',
} as const;
/** What a coordinator log record states. */
export type CoordinatorRecordKind = (typeof CoordinatorRecordKind)[keyof typeof CoordinatorRecordKind];

/** A record in the coordinator's log, in plain form (the log encodes it as protobuf). */
export interface CoordinatorRecord {
  readonly kind: CoordinatorRecordKind;
  readonly txId: string;
  /** COMMIT: the YES voters that must apply it; ONE_PHASE: the single branch; END: every branch. */
  readonly participants: readonly string[];
  /** END only. */
  readonly outcome?: Outcome;
  /** END of an abort: why. */
  readonly reason?: string;
  /** The identity (URI) of the initiator that began the transaction, when callers are authenticated. */
  readonly owner?: string;
  /** The idempotency key the transaction was started under, scoped to its owner (`scopedIdempotencyKey`). */
  readonly idempotencyKey?: string;
}

/**
 * One write in a persist effect. `open` records are the decided transactions that recovery must
 * re-drive; `done` records are end summaries, looked up on demand and never loaded at start.
 */
export type CoordinatorLogOp =
  | { readonly op: 'put'; readonly space: 'open' | 'done'; readonly record: CoordinatorRecord }
  | { readonly op: 'del'; readonly space: 'open'; readonly txId: string };

/** Messages the coordinator sends to a participant over its session. */
export type CoordinatorMessage =
  | {
      readonly type: 'prepare';
      readonly txId: string;
      readonly payload: Uint8Array;
      readonly deadline: number;
      readonly onePhase: boolean;
    }
  | { readonly type: 'decision'; readonly txId: string; readonly outcome: Outcome }
  /** Tell me the outcome you decided (a one-phase transaction whose vote the coordinator lost). */
  | { readonly type: 'outcome-query'; readonly txId: string }
  | {
      readonly type: 'enlist-result';
      readonly requestId: number;
      readonly error?: ProtocolError;
    };

/** Where a transaction is in its life, as reported to initiators. */
export const TxState = {
  ACTIVE: 'active',
  PREPARING: 'preparing',
  DECIDED: 'decided',
  ENDED: 'ended',
  IN_DOUBT: 'in-doubt',
  FORGOTTEN: 'forgotten',
} as const;
/** Where a transaction is in its life. */
export type TxState = (typeof TxState)[keyof typeof TxState];

/** One branch's progress, as reported to initiators. */
export interface BranchView {
  readonly participant: string;
  readonly vote?: Vote;
  readonly acknowledged: boolean;
  readonly attempts: number;
  readonly lastError?: string;
}

/** What the coordinator knows of a transaction. */
export interface TxView {
  readonly txId: string;
  readonly state: TxState;
  readonly outcome?: Outcome;
  readonly reason?: string;
  /** Absolute deadline in ms, when known. */
  readonly deadline?: number;
  readonly branches: readonly BranchView[];
  /** True when the outcome is presumed (no record), not read from one. */
  readonly presumed: boolean;
  /** True when phase 2 exhausted its retry budget and keeps retrying: an operator should look. */
  readonly needsAttention: boolean;
  /** The identity (URI) of the initiator that began it, when callers are authenticated. */
  readonly owner?: string;
}

/** The coordinator's answer to an initiator request. */
export type CoordinatorReply =
  | { readonly type: 'begun'; readonly txId: string; readonly deadline: number }
  | { readonly type: 'committed'; readonly txId: string }
  | { readonly type: 'aborted'; readonly txId: string }
  | { readonly type: 'transaction'; readonly view: TxView }
  /** Ids `tx-<epoch>-<firstSeq>` to `tx-<epoch>-<firstSeq + count - 1>` are the caller's until `expiresAt`. */
  | { readonly type: 'reserved'; readonly epoch: number; readonly firstSeq: number; readonly count: number; readonly expiresAt: number }
  | { readonly type: 'error'; readonly error: ProtocolError };

/** Requests from initiators; `requestId` correlates the reply. */
export type InitiatorRequest =
  | { readonly type: 'begin'; readonly requestId: number; readonly timeoutMs: number; readonly owner?: string }
  | {
      readonly type: 'commit';
      readonly requestId: number;
      /** Empty for a one-shot transaction. */
      readonly txId: string;
      readonly branches: readonly BranchSpec[];
      readonly timeoutMs: number;
      readonly waitForCompletion: boolean;
      /** For a one-shot transaction: its owner (an existing transaction keeps the one it has). */
      readonly owner?: string;
      /**
       * For a one-shot transaction: the caller's idempotency key. A commit whose key (scoped to
       * `owner`) already names a transaction answers for that one and never starts a second.
       */
      readonly idempotencyKey?: string;
    }
  /** Reserves `count` transaction ids for one-shot commits of `owner` (who then knows an id before it sends). */
  | { readonly type: 'reserve'; readonly requestId: number; readonly count: number; readonly owner?: string }
  | { readonly type: 'abort'; readonly requestId: number; readonly txId: string; readonly reason: string; readonly caller?: string }
  | { readonly type: 'get'; readonly requestId: number; readonly txId: string; readonly caller?: string };

/** Messages from a participant session. */
export type ParticipantMessage =
  | { readonly type: 'vote'; readonly txId: string; readonly vote: Vote; readonly reason: string }
  | { readonly type: 'ack'; readonly txId: string; readonly outcome: Outcome }
  | { readonly type: 'inquiry'; readonly txId: string }
  | {
      readonly type: 'enlist';
      readonly requestId: number;
      readonly txId: string;
      readonly payload: Uint8Array;
      /** The capability Begin returned; the session hub checks it before the protocol sees the enlist. */
      readonly capability?: string;
    };

/** Identifies a persist effect so the shell can report its completion. */
export interface PersistToken {
  /** `commit`: a COMMIT record; `one-phase`: a one-phase intent; `read-only`: the forced END of an all-read-only commit. */
  readonly kind: 'commit' | 'one-phase' | 'read-only';
  readonly txId: string;
}

/** Inputs to the coordinator state machine. */
export type CoordinatorInput =
  | InitiatorRequest
  | { readonly type: 'message'; readonly from: string; readonly message: ParticipantMessage }
  | { readonly type: 'connected'; readonly participant: string }
  | { readonly type: 'disconnected'; readonly participant: string }
  /** A persist effect with a token is durable. */
  | { readonly type: 'persisted'; readonly token: PersistToken }
  /**
   * A persist effect with a token failed. The record may or may not have landed (a synced write
   * that fails can still be in the log after a restart), so the outcome is unknown: the machine
   * answers the transaction's waiters OUTCOME_UNKNOWN and decides nothing; the shell stops
   * serving and recovery decides from what the log holds. `assumeNotWritten` restores the old,
   * wrong reading (not written, so abort); only the `abort-on-failed-commit-write` mutant sets it.
   */
  | { readonly type: 'persist-failed'; readonly token: PersistToken; readonly message: string; readonly assumeNotWritten?: boolean }
  | { readonly type: 'timer'; readonly key: string }
  /** The answer to a lookup effect: the END summary of `txId`, if the log has one. */
  | {
      readonly type: 'lookup-result';
      readonly txId: string;
      readonly record: CoordinatorRecord | undefined;
      readonly pending: CoordinatorInput;
    }
  /**
   * The shell is about to drop END summaries up to this id (garbage collection): from now on, an
   * id at or below it without a record is answered FORGOTTEN, never presumed aborted. Must be
   * handled before the summaries are deleted.
   */
  | { readonly type: 'gc-horizon'; readonly txId: string }
  /** The answer to a `lookup-key` effect: the transaction the scoped key names in the log, if any. */
  | { readonly type: 'key-lookup-result'; readonly key: string; readonly txId: string | undefined; readonly pending: CoordinatorInput };

/** Why an input was ignored; the shell counts these. */
export type IgnoredReason =
  | 'unknown-tx'
  | 'not-a-branch'
  | 'duplicate'
  | 'conflicting-vote'
  | 'late'
  | 'outcome-mismatch'
  | 'never-issued';

/** Effects the shell must carry out, in order. */
export type CoordinatorEffect =
  | { readonly type: 'send'; readonly to: string; readonly message: CoordinatorMessage }
  /**
   * Write `ops` atomically. `force` means durable before completion (fsync); several forced
   * persists may share one synced batch (group commit). With a token, report `persisted`.
   */
  | {
      readonly type: 'persist';
      readonly ops: readonly CoordinatorLogOp[];
      readonly force: boolean;
      readonly token?: PersistToken;
    }
  | { readonly type: 'reply'; readonly requestId: number; readonly reply: CoordinatorReply }
  /** Fire `timer` with `key` at absolute time `at` plus a random delay up to `jitterMs`. */
  | { readonly type: 'set-timer'; readonly key: string; readonly at: number; readonly jitterMs: number }
  | { readonly type: 'cancel-timer'; readonly key: string }
  /** Read the END summary of `txId` and answer with `lookup-result` carrying `pending`. */
  | { readonly type: 'lookup'; readonly txId: string; readonly pending: CoordinatorInput }
  /** Read which transaction the scoped idempotency `key` names and answer with `key-lookup-result` carrying `pending`. */
  | { readonly type: 'lookup-key'; readonly key: string; readonly pending: CoordinatorInput }
  /** The outcome of `txId` is decided (durably, or presumed): for listeners and metrics. */
  | { readonly type: 'decided'; readonly txId: string; readonly outcome: Outcome; readonly reason?: string }
  /** Every participant acknowledged; the transaction is finished. */
  | { readonly type: 'ended'; readonly txId: string; readonly outcome: Outcome }
  | {
      readonly type: 'ignored';
      readonly why: IgnoredReason;
      readonly what: string;
      readonly txId?: string;
      readonly participant?: string;
    };
