// The participant state machine's inputs and effects. The SDK (or the simulator) runs the hooks,
// the log and the session, and feeds what happened back in as inputs.

import type { CoordinatorMessage, ParticipantMessage } from './coordinator-events.js';
import type { Outcome, Vote } from './types.js';

/** A participant's durable knowledge of one transaction. */
export const ParticipantRecordState = {
  PREPARED: 'prepared',
  COMMITTED: 'committed',
  ABORTED: 'aborted',
} as const;
/** A participant's durable knowledge of one transaction. */
export type ParticipantRecordState = (typeof ParticipantRecordState)[keyof typeof ParticipantRecordState];

/** A record in the participant's log, in plain form. */
export interface ParticipantRecord {
  readonly txId: string;
  readonly state: ParticipantRecordState;
  /** Committed (or aborted) in one phase: the coordinator may ask for the outcome. */
  readonly onePhase: boolean;
  /** The branch payload, kept with PREPARED records. */
  readonly payload?: Uint8Array;
  /** The locks held while prepared, kept with PREPARED records (the machine never reads them). */
  readonly locks?: readonly RecordedLock[];
}

/** A lock a prepared transaction holds on an application key, as its PREPARED record keeps it. */
export interface RecordedLock {
  readonly key: string;
  readonly mode: 'shared' | 'exclusive';
}

/** Identifies a persist effect so the shell can report its completion. */
export interface ParticipantPersistToken {
  readonly kind: 'prepared' | 'outcome';
  readonly txId: string;
}

/** Which application hook to run. */
export type HookName = 'prepare' | 'commit' | 'abort';

/** Inputs to the participant state machine. */
export type ParticipantInput =
  | { readonly type: 'message'; readonly message: Exclude<CoordinatorMessage, { type: 'enlist-result' }> }
  /** The coordinator accepted this participant into an active transaction. */
  | { readonly type: 'enlisted'; readonly txId: string }
  | { readonly type: 'prepare-done'; readonly txId: string; readonly vote: Vote; readonly reason: string }
  | { readonly type: 'apply-done'; readonly txId: string }
  | { readonly type: 'apply-failed'; readonly txId: string; readonly message: string }
  | { readonly type: 'persisted'; readonly token: ParticipantPersistToken }
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected' }
  | { readonly type: 'timer'; readonly key: string }
  /** The answer to a lookup effect: this participant's record of `txId`, if any. */
  | {
      readonly type: 'lookup-result';
      readonly txId: string;
      readonly record: ParticipantRecord | undefined;
      readonly pending: ParticipantInput;
    };

/** Why an input was ignored; the shell counts these. */
export type ParticipantIgnoredReason = 'duplicate' | 'premature-commit' | 'commit-unknown-tx' | 'conflicting-decision' | 'query-for-two-phase';

/** Effects the shell must carry out, in order. */
export type ParticipantEffect =
  | { readonly type: 'send'; readonly message: ParticipantMessage }
  /** Run the application's prepare hook; report `prepare-done` (a throw is a NO vote). */
  | {
      readonly type: 'run-prepare';
      readonly txId: string;
      readonly payload: Uint8Array;
      readonly deadline: number;
      readonly onePhase: boolean;
    }
  /** Run the commit or abort hook; report `apply-done` or `apply-failed`. */
  | { readonly type: 'run-apply'; readonly txId: string; readonly outcome: Outcome }
  /**
   * Write `record` together with whatever the hooks staged for this transaction, atomically.
   * `force` means durable (fsync) before `persisted` is reported.
   */
  | {
      readonly type: 'persist';
      readonly record: ParticipantRecord;
      readonly force: boolean;
      readonly token: ParticipantPersistToken;
    }
  | { readonly type: 'lookup'; readonly txId: string; readonly pending: ParticipantInput }
  | { readonly type: 'set-timer'; readonly key: string; readonly at: number; readonly jitterMs: number }
  | { readonly type: 'cancel-timer'; readonly key: string }
  /** The transaction is finished at this participant with `outcome` (undefined: read-only). */
  | { readonly type: 'finished'; readonly txId: string; readonly outcome: Outcome | undefined }
  | { readonly type: 'ignored'; readonly why: ParticipantIgnoredReason; readonly what: string; readonly txId: string };
