// Plain protocol vocabulary shared by the coordinator and participant state machines. These are
// deliberately not the generated wire types: the edges (gRPC, LevelDB, the simulator) translate.

/** A transaction's decision. */
export const Outcome = {
  COMMITTED: 'committed',
  ABORTED: 'aborted',
} as const;
/** A transaction's decision. */
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** A participant's answer to Prepare. */
export const Vote = {
  YES: 'yes',
  NO: 'no',
  READ_ONLY: 'read-only',
} as const;
/** A participant's answer to Prepare. */
export type Vote = (typeof Vote)[keyof typeof Vote];

/**
 * Stable error codes. They are part of the public API: match on them, never on messages. The
 * gRPC edge maps each to a status code (see `grpcStatusFor` in the coordinator).
 */
export const ErrorCode = {
  /** A malformed request: a bad id, an empty field, a value out of range. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** The transaction was never issued by this coordinator. */
  TX_NOT_FOUND: 'TX_NOT_FOUND',
  /** The transaction aborted; `reason` says why. */
  TX_ABORTED: 'TX_ABORTED',
  /** The request does not fit the transaction's state (e.g. aborting a committed transaction). */
  WRONG_STATE: 'WRONG_STATE',
  /** The call's deadline passed before the outcome was known: the outcome is unknown, ask later. */
  OUTCOME_UNKNOWN: 'OUTCOME_UNKNOWN',
  /** A configured limit was hit (payload size, in-flight transactions). */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  /** The coordinator cannot be reached or is shutting down: retry. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** A participant with this name already holds a live session. */
  ALREADY_CONNECTED: 'ALREADY_CONNECTED',
  /** A participant's lock on a key is held by another transaction (no-wait: the prepare votes NO). */
  LOCK_CONFLICT: 'LOCK_CONFLICT',
  /** A data directory is held by another process. */
  DATA_DIR_LOCKED: 'DATA_DIR_LOCKED',
  /** A log could not be read: the process refuses to start rather than guess. */
  LOG_CORRUPT: 'LOG_CORRUPT',
  /** Something that should not happen happened. */
  INTERNAL: 'INTERNAL',
  /** The caller has no valid identity: no client certificate naming one, or a bad bearer token. */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The caller's identity may not do this (another initiator's transaction, another participant's name, no capability). */
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  /**
   * This member of a coordinator group does not lead (status UNAVAILABLE; metadata
   * `verdict-leader: host:port` names the leader when it knows one). It promises that nothing of
   * the call or stream was run: the SDKs send it again to the leader.
   */
  NOT_LEADER: 'NOT_LEADER',
} as const;
/** A stable error code. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** One participant's part of a transaction. */
export interface BranchSpec {
  readonly participant: string;
  readonly payload: Uint8Array;
}

/** An error answer from a state machine, translated to a typed error or a gRPC status at the edge. */
export interface ProtocolError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly txId?: string;
  /** For TX_ABORTED: why the transaction aborted. */
  readonly reason?: string;
}

/** Computes the un-jittered retry delay for the given attempt (1-based): capped exponential. */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number): number {
  const exp = Math.min(30, Math.max(0, attempt - 1));
  return Math.min(maxMs, initialMs * 2 ** exp);
}
