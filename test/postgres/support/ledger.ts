// The PostgreSQL ledger the tests and the crash child share: one `accounts` table whose balances
// may not go negative (a CHECK constraint, so an overdraft is a NO vote from the database), and
// a prepare function that applies one move `{ account, delta }` from the branch payload.

import type pg from 'pg';
import type { PostgresPrepare } from '../../../src/postgres/index.js';

/** The ledger's table. */
export const LEDGER_SCHEMA = 'CREATE TABLE accounts (id text PRIMARY KEY, balance bigint NOT NULL CONSTRAINT accounts_balance_check CHECK (balance >= 0))';

/** One branch's change to one account. */
export interface Move {
  readonly account: string;
  readonly delta: number;
}

/** The payload of a move. */
export function move(account: string, delta: number): string {
  return JSON.stringify({ account, delta } satisfies Move);
}

/** Applies the move in the payload; an unknown account is a NO vote. */
export const ledgerPrepare: PostgresPrepare = async (sql, _txId, payload) => {
  const { account, delta } = JSON.parse(Buffer.from(payload).toString('utf8')) as Move;
  const result = await sql.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [delta, account]);
  if (result.rowCount !== 1) return { vote: 'no', reason: `no account ${account}` };
  return 'yes';
};

/** Creates the ledger in a database and opens accounts with their balances. */
export async function createLedger(connection: pg.PoolConfig, accounts: Record<string, number>, Pool: typeof pg.Pool): Promise<pg.Pool> {
  const pool = new Pool({ ...connection, max: 4 });
  pool.on('error', () => undefined);
  await pool.query(LEDGER_SCHEMA);
  for (const [id, balance] of Object.entries(accounts)) await pool.query('INSERT INTO accounts (id, balance) VALUES ($1, $2)', [id, balance]);
  return pool;
}

/** The balance of `account` now. */
export async function balance(pool: pg.Pool, account: string): Promise<number> {
  const result = await pool.query<{ balance: string }>('SELECT balance FROM accounts WHERE id = $1', [account]);
  return Number(result.rows[0]?.balance);
}
