/**
 * PostgreSQL participants (`verdict/postgres`): a branch is a real PostgreSQL transaction,
 * prepared with PREPARE TRANSACTION before the YES vote and finished with COMMIT PREPARED or
 * ROLLBACK PREPARED. Needs the `pg` package (an optional peer dependency).
 *
 * ```ts
 * import { PostgresParticipant } from 'verdict/postgres';
 *
 * const accounts = await PostgresParticipant.start({
 *   name: 'accounts',
 *   coordinator: '127.0.0.1:7070',
 *   dataDir: './data/accounts',
 *   connection: { host: '127.0.0.1', port: 5432, database: 'bank' },
 *   async prepare(sql, txId, payload) {
 *     const { account, delta } = JSON.parse(Buffer.from(payload).toString());
 *     await sql.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [delta, account]);
 *   },
 * });
 * ```
 *
 * @module
 */

export { PostgresParticipant, type PostgresRecoveryReport } from './postgres-participant.js';
export {
  DEFAULT_CLUSTER_ID,
  DEFAULT_MARKER_TABLE,
  IsolationLevel,
  type PostgresParticipantOptions,
  type PostgresPrepare,
  type PostgresTransaction,
} from './postgres-participant-options.js';
export { PostgresErrorCode, PostgresParticipantError } from './postgres-errors.js';
export { GID_PREFIX, MAX_GID_BYTES, formatGid, gidPrefix, txIdOfGid } from './gid.js';
