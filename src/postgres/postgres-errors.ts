// Errors of the PostgreSQL participant: values with a stable `code` (match on it, never on the
// message), whether a retry may help, and the transaction concerned. Each start-up check has its
// own code so that an operator reads one line and knows what to change on the server.

/** Codes of `PostgresParticipantError`. */
export const PostgresErrorCode = {
  /** An option is malformed (cluster id, table name, a gid that would be too long). */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** The server could not be reached or refused the connection. */
  PG_UNAVAILABLE: 'PG_UNAVAILABLE',
  /** The server is older than this package supports. */
  PG_UNSUPPORTED_VERSION: 'PG_UNSUPPORTED_VERSION',
  /** `max_prepared_transactions` is 0: `PREPARE TRANSACTION` is disabled on the server. */
  PG_PREPARED_TRANSACTIONS_DISABLED: 'PG_PREPARED_TRANSACTIONS_DISABLED',
  /** The role lacks a privilege the participant needs (named in the message). */
  PG_PERMISSION_DENIED: 'PG_PERMISSION_DENIED',
  /**
   * A prepared transaction was resolved by someone else, against the coordinator's outcome (for
   * example an operator ran `ROLLBACK PREPARED` on a transaction that committed). Atomicity is
   * broken for that transaction; the participant never acknowledges it and logs it as an error.
   */
  PG_HEURISTIC_OUTCOME: 'PG_HEURISTIC_OUTCOME',
} as const;
/** A code of `PostgresParticipantError`. */
export type PostgresErrorCode = (typeof PostgresErrorCode)[keyof typeof PostgresErrorCode];

const RETRYABLE: ReadonlySet<PostgresErrorCode> = new Set([PostgresErrorCode.PG_UNAVAILABLE]);

/** Context of a `PostgresParticipantError`. */
export interface PostgresErrorOptions {
  readonly cause?: unknown;
  readonly txId?: string;
  readonly participant?: string;
}

/** An error of the PostgreSQL participant. */
export class PostgresParticipantError extends Error {
  override readonly name = 'PostgresParticipantError';
  /** Stable, machine-readable code. */
  readonly code: PostgresErrorCode;
  /** Whether the same call may succeed if tried again. */
  readonly retryable: boolean;
  /** The transaction concerned, when there is one. */
  readonly txId: string | undefined;
  /** The participant concerned, when there is one. */
  readonly participant: string | undefined;

  constructor(code: PostgresErrorCode, message: string, options: PostgresErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = RETRYABLE.has(code);
    this.txId = options.txId;
    this.participant = options.participant;
  }
}

/** A PostgreSQL error as the `pg` driver reports it: SQLSTATE `code` and the server's message. */
export interface DatabaseErrorLike {
  readonly code: string;
  readonly message: string;
  readonly severity?: string;
}

/** Whether `e` came from the server (it carries a five-character SQLSTATE). */
export function isDatabaseError(e: unknown): e is DatabaseErrorLike {
  if (typeof e !== 'object' || e === null) return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof message === 'string';
}

/** SQLSTATE of "prepared transaction with identifier … does not exist" (undefined_object). */
export const SQLSTATE_UNDEFINED_OBJECT = '42704';
