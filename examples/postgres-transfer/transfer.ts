// A transfer between two PostgreSQL databases, atomic through Verdict: an embedded coordinator,
// one PostgreSQL participant per database, and transfers of which some overdraw on purpose (the
// database's CHECK constraint refuses them, so both sides abort). At the end the total is
// unchanged and nothing stays prepared.
//
//   PG_URL_A=postgres://user@127.0.0.1:5432/bank_a PG_URL_B=postgres://user@127.0.0.1:5432/bank_b \
//     node --import tsx examples/postgres-transfer/transfer.ts
//
// Each database needs max_prepared_transactions > 0. Without PG_URL_A/B the example starts a
// throwaway PostgreSQL cluster itself (the test harness's, which needs PostgreSQL installed).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { Coordinator, ErrorCode, VerdictClient, type VerdictError } from '../../src/index.js';
import { PostgresParticipant, type PostgresPrepare } from '../../src/postgres/index.js';
import { PgServer } from '../../test/postgres/support/pg-server.js';

const TRANSFERS = 50;
const SCHEMA = `CREATE TABLE IF NOT EXISTS accounts (id text PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))`;

/** The branch's SQL: the participant opens the transaction, prepares and finishes it. */
const applyMove: PostgresPrepare = async (sql, _txId, payload) => {
  const { account, delta } = JSON.parse(Buffer.from(payload).toString()) as { account: string; delta: number };
  const { rowCount } = await sql.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [delta, account]);
  if (rowCount !== 1) return { vote: 'no', reason: `no account ${account}` };
};

async function main(): Promise<void> {
  const logger = pino({ level: 'warn' });
  const dir = mkdtempSync(join(tmpdir(), 'verdict-postgres-transfer-'));
  let server: PgServer | undefined;
  let urls = [process.env.PG_URL_A, process.env.PG_URL_B];
  if (!urls[0] || !urls[1]) {
    server = await PgServer.start();
    const a = await server.createDatabase('bank_a');
    const b = await server.createDatabase('bank_b');
    urls = [`postgres://${a.user}@${a.host}:${a.port}/bank_a`, `postgres://${b.user}@${b.host}:${b.port}/bank_b`];
  }
  const pools = urls.map((url) => new pg.Pool({ connectionString: url }));
  for (const pool of pools) {
    pool.on('error', () => undefined);
    await pool.query(SCHEMA);
    await pool.query(`INSERT INTO accounts VALUES ('alice', 100), ('bob', 100) ON CONFLICT (id) DO NOTHING`);
  }
  const total = async (): Promise<number> => {
    let sum = 0;
    for (const pool of pools) sum += Number((await pool.query<{ s: string }>('SELECT coalesce(sum(balance), 0) AS s FROM accounts')).rows[0]?.s);
    return sum;
  };
  const before = await total();

  const coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: join(dir, 'coordinator'), logger });
  const banks = await Promise.all(
    ['bank-a', 'bank-b'].map((name, i) =>
      PostgresParticipant.start({ name, coordinator: coordinator.address, dataDir: join(dir, name), pool: pools[i]!, prepare: applyMove, logger }),
    ),
  );
  await Promise.all(banks.map((b) => b.ready()));
  const client = new VerdictClient(coordinator.address);

  let committed = 0;
  let refused = 0;
  for (let i = 0; i < TRANSFERS; i++) {
    // Every fifth transfer asks for more than the account holds, and once it runs dry every
    // transfer does: PostgreSQL refuses (CHECK constraint), so both databases abort.
    const amount = i % 5 === 4 ? 1_000 : 1 + (i % 7);
    try {
      await client.transact([
        { participant: 'bank-a', payload: JSON.stringify({ account: 'alice', delta: -amount }) },
        { participant: 'bank-b', payload: JSON.stringify({ account: 'bob', delta: amount }) },
      ]);
      committed++;
    } catch (e) {
      if ((e as VerdictError).code !== ErrorCode.TX_ABORTED) throw e;
      refused++;
      if (refused === 1) console.log(`refused: ${(e as VerdictError).reason}`);
    }
  }

  client.close();
  for (const b of banks) await b.close();
  await coordinator.close();
  const after = await total();
  const leftover = (await pools[0]!.query(`SELECT count(*)::int AS n FROM pg_prepared_xacts WHERE gid LIKE 'verdict1:%'`)).rows[0]?.n;
  console.log(`${committed} committed, ${refused} refused; total before ${before}, after ${after}; prepared left: ${leftover}`);
  for (const pool of pools) await pool.end();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
  if (after !== before || leftover !== 0) process.exitCode = 1;
}

await main();
