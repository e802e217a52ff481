// Typed errors: every error Verdict throws is a VerdictError with a stable `code` (match on it,
// never on the message), whether it is worth retrying, and the transaction it concerns.

import { ErrorCode } from './protocol/types.js';

export { ErrorCode };

/** Context carried by a VerdictError. */
export interface VerdictErrorOptions {
  readonly cause?: unknown;
  readonly txId?: string;
  readonly participant?: string;
  /** For TX_ABORTED: why the transaction aborted. */
  readonly reason?: string;
}

const RETRYABLE: ReadonlySet<ErrorCode> = new Set([ErrorCode.UNAVAILABLE, ErrorCode.OUTCOME_UNKNOWN, ErrorCode.LIMIT_EXCEEDED, ErrorCode.NOT_LEADER]);

/** The base of every error Verdict throws. */
export class VerdictError extends Error {
  override readonly name: string = 'VerdictError';
  /** Stable, machine-readable code. */
  readonly code: ErrorCode;
  /** Whether the same call may succeed if tried again. */
  readonly retryable: boolean;
  /** The transaction concerned, when there is one. */
  readonly txId: string | undefined;
  /** The participant concerned, when there is one. */
  readonly participant: string | undefined;
  /** For TX_ABORTED: why the transaction aborted. */
  readonly reason: string | undefined;

  constructor(code: ErrorCode, message: string, options: VerdictErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = RETRYABLE.has(code);
    this.txId = options.txId;
    this.participant = options.participant;
    this.reason = options.reason;
  }
}

/** The transaction aborted; `reason` says why. Thrown by `commit` when the outcome is an abort. */
export class TransactionAbortedError extends VerdictError {
  override readonly name = 'TransactionAbortedError';

  constructor(message: string, options: VerdictErrorOptions = {}) {
    super(ErrorCode.TX_ABORTED, message, options);
  }
}

/**
 * The call ended before its outcome was known (deadline, lost connection). The transaction may
 * still commit or abort: ask with `get(txId)` later. Never read this as a failure.
 */
export class OutcomeUnknownError extends VerdictError {
  override readonly name = 'OutcomeUnknownError';

  constructor(message: string, options: VerdictErrorOptions = {}) {
    super(ErrorCode.OUTCOME_UNKNOWN, message, options);
  }
}

/** Builds the most specific error class for `code`. */
export function verdictError(code: ErrorCode, message: string, options: VerdictErrorOptions = {}): VerdictError {
  if (code === ErrorCode.TX_ABORTED) return new TransactionAbortedError(message, options);
  if (code === ErrorCode.OUTCOME_UNKNOWN) return new OutcomeUnknownError(message, options);
  return new VerdictError(code, message, options);
}
