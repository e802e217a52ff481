// What the server must offer before the participant takes any work: prepared transactions
// enabled, a supported release, and the privileges on the marker table. Each missing piece is
// its own error with one line that says what to change; nothing is written before they pass.

import type pg from 'pg';
import { isDatabaseError, PostgresErrorCode, PostgresParticipantError } from './postgres-errors.js';
import { MIN_SERVER_VERSION_NUM } from './postgres-participant-options.js';

const TABLE_NAME_PATTERN = /^(?:[a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/;

/** Explains why `table` is not an acceptable marker table name, or returns undefined. */
export function markerTableProblem(table: string): string | undefined {
  if (!TABLE_NAME_PATTERN.test(table)) {
    return `marker table ${JSON.stringify(table.slice(0, 140))} is invalid (an unquoted lowercase identifier, optionally schema-qualified)`;
  }
  return undefined;
}

/** What the check found, for logs. */
export interface ServerFacts {
  readonly serverVersionNum: number;
  readonly maxPreparedTransactions: number;
  readonly database: string;
  readonly role: string;
}

/**
 * Checks the server and creates the marker table when it is missing. Throws
 * `PostgresParticipantError` with PG_UNAVAILABLE, PG_UNSUPPORTED_VERSION,
 * PG_PREPARED_TRANSACTIONS_DISABLED or PG_PERMISSION_DENIED.
 */
export async function checkServer(pool: pg.Pool, markerTable: string, participant: string): Promise<ServerFacts> {
  const where = (facts: { database: string; role: string }): string => `database ${facts.database} as role ${facts.role}`;
  let row: { v: string; mpt: string; db: string; role: string } | undefined;
  try {
    const result = await pool.query<{ v: string; mpt: string; db: string; role: string }>(
      `SELECT current_setting('server_version_num') AS v, current_setting('max_prepared_transactions') AS mpt,
              current_database() AS db, current_user AS role`,
    );
    row = result.rows[0];
  } catch (e) {
    throw new PostgresParticipantError(PostgresErrorCode.PG_UNAVAILABLE, `cannot reach PostgreSQL: ${describe(e)}`, { cause: e, participant });
  }
  if (!row) throw new PostgresParticipantError(PostgresErrorCode.PG_UNAVAILABLE, 'PostgreSQL answered no row to a settings query', { participant });
  const facts: ServerFacts = {
    serverVersionNum: Number(row.v),
    maxPreparedTransactions: Number(row.mpt),
    database: row.db,
    role: row.role,
  };
  if (!(facts.serverVersionNum >= MIN_SERVER_VERSION_NUM)) {
    throw new PostgresParticipantError(
      PostgresErrorCode.PG_UNSUPPORTED_VERSION,
      `PostgreSQL ${row.v} is too old for verdict/postgres (needs ${MIN_SERVER_VERSION_NUM} or later)`,
      { participant },
    );
  }
  if (!(facts.maxPreparedTransactions > 0)) {
    throw new PostgresParticipantError(
      PostgresErrorCode.PG_PREPARED_TRANSACTIONS_DISABLED,
      `max_prepared_transactions is ${row.mpt} on ${where(facts)}: set it above 0 (at least the transactions you keep in flight, e.g. max_prepared_transactions = 100 in postgresql.conf) and restart PostgreSQL`,
      { participant },
    );
  }
  const schema = markerTable.includes('.') ? markerTable.slice(0, markerTable.indexOf('.')) : undefined;
  const exists = await pool.query<{ oid: string | null }>('SELECT to_regclass($1)::oid::text AS oid', [markerTable]);
  if (exists.rows[0]?.oid == null) {
    const canCreate = await pool.query<{ ok: boolean }>(
      schema === undefined
        ? `SELECT has_schema_privilege(current_schema(), 'CREATE') AS ok`
        : `SELECT has_schema_privilege($1, 'CREATE') AS ok`,
      schema === undefined ? [] : [schema],
    );
    if (!canCreate.rows[0]?.ok) {
      throw new PostgresParticipantError(
        PostgresErrorCode.PG_PERMISSION_DENIED,
        `role ${facts.role} may not create the marker table ${markerTable} on ${where(facts)}: create it (CREATE TABLE ${markerTable} (gid text PRIMARY KEY, committed_at timestamptz NOT NULL DEFAULT now())) or GRANT CREATE ON SCHEMA ${schema ?? 'public'} TO ${facts.role}`,
        { participant },
      );
    }
    await pool.query(`CREATE TABLE IF NOT EXISTS ${markerTable} (gid text PRIMARY KEY, committed_at timestamptz NOT NULL DEFAULT now())`);
  }
  const privileges = await pool.query<{ p: string; ok: boolean }>(
    `SELECT p, has_table_privilege($1, p) AS ok FROM unnest(ARRAY['SELECT', 'INSERT', 'DELETE']) AS p`,
    [markerTable],
  );
  const missing = privileges.rows.filter((r) => !r.ok).map((r) => r.p);
  if (missing.length > 0) {
    throw new PostgresParticipantError(
      PostgresErrorCode.PG_PERMISSION_DENIED,
      `role ${facts.role} lacks ${missing.join(', ')} on the marker table ${markerTable} on ${where(facts)}: GRANT ${missing.join(', ')} ON ${markerTable} TO ${facts.role}`,
      { participant },
    );
  }
  return facts;
}

/** One line for an error from the driver or the server. */
export function describe(e: unknown): string {
  if (isDatabaseError(e)) return `${e.code} ${e.message}`;
  return (e as Error)?.message ?? String(e);
}
