// Options of the PostgreSQL participant, and the one thing a user writes: the prepare function
// that runs a branch's SQL inside the transaction the participant opened for it.

import type pg from 'pg';
import type { Logger } from '../common/logger.js';
import type { ParticipantOptions, PrepareContext, PrepareResult } from '../participant/participant-options.js';

/** The cluster id used when none is given. */
export const DEFAULT_CLUSTER_ID = 'default';
/** The table of commit markers used when none is given (created at start if missing). */
export const DEFAULT_MARKER_TABLE = 'verdict_committed';
/** The oldest PostgreSQL release supported (`server_version_num`). */
export const MIN_SERVER_VERSION_NUM = 110000;
/** First delay before retrying a failed PostgreSQL step done after the outcome (one-phase commit), in ms. */
export const FINISH_RETRY_INITIAL_MS = 100;
/** Longest such delay, in ms. */
export const FINISH_RETRY_MAX_MS = 5_000;
/** Connections of a pool the participant creates from `connection`. */
export const DEFAULT_POOL_SIZE = 10;

/** Isolation level of a branch's transaction. */
export const IsolationLevel = {
  READ_COMMITTED: 'read committed',
  REPEATABLE_READ: 'repeatable read',
  SERIALIZABLE: 'serializable',
} as const;
/** Isolation level of a branch's transaction. */
export type IsolationLevel = (typeof IsolationLevel)[keyof typeof IsolationLevel];

/**
 * The open PostgreSQL transaction of one branch. Run the branch's statements through `query`;
 * never `COMMIT`, `ROLLBACK` or `PREPARE TRANSACTION` yourself: the participant does that.
 */
export interface PostgresTransaction {
  /** Runs one statement in the branch's transaction (parameters as `$1`, `$2`, …). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** The transaction id. */
  readonly txId: string;
  /** The gid the transaction will be prepared under. */
  readonly gid: string;
}

/**
 * Runs a branch's SQL. Returning nothing (or `'yes'`) prepares the transaction and votes YES;
 * `'read-only'` rolls it back and votes READ_ONLY; `{ vote: 'no', reason }` rolls it back and
 * votes NO. A database error (a constraint violation, a serialization failure, a lock or
 * statement timeout) rolls back and votes NO with the SQLSTATE and the server's message as the
 * reason; any other throw is a NO too.
 */
export type PostgresPrepare = (
  sql: PostgresTransaction,
  txId: string,
  payload: Uint8Array,
  ctx: Omit<PrepareContext, 'batch' | 'get' | 'lock'>,
) => void | PrepareResult | Promise<void | PrepareResult>;

/** Options of `PostgresParticipant.start`. */
export interface PostgresParticipantOptions extends Pick<ParticipantOptions, 'name' | 'coordinator' | 'dataDir' | 'protocol' | 'retentionMs' | 'logger' | 'tls' | 'token'> {
  /**
   * A pool to run on (it stays yours: `close()` does not end it, and you handle its `error`
   * events). Give either `pool` or `connection`.
   */
  readonly pool?: pg.Pool;
  /** Settings of a pool the participant creates, owns and ends on `close()`. */
  readonly connection?: pg.PoolConfig;
  /** The branch's SQL. */
  readonly prepare: PostgresPrepare;
  /**
   * Names the Verdict cluster (the coordinator) in every gid, so that participants of two
   * clusters with the same names can share a database. Default `'default'`.
   */
  readonly cluster?: string;
  /** Isolation level of every branch transaction (default read committed). */
  readonly isolationLevel?: IsolationLevel;
  /**
   * The table of commit markers, optionally schema-qualified (default `verdict_committed` in the
   * search path). Each prepared transaction inserts its gid there, so a commit marker exists if
   * and only if the transaction committed: that is what proves "already done" after a crash.
   */
  readonly markerTable?: string;
  /** Logger; defaults to pino at VERDICT_LOG_LEVEL (warn). */
  readonly logger?: Logger;
}
