// The verdict/testing chaos harness on a PostgreSQL-backed ledger: two PostgresParticipants, each
// on a database of its own, moving money between them under every kind of fault (the
// coordinator SIGKILLed, SIGSTOPped and crashed at failpoints; the participants killed — closed
// mid-flight with their prepared transactions left prepared — paused, partitioned, delayed, cut
// and reset), with mutual TLS on every connection. The invariant is checked in SQL: money is
// conserved across the two databases, and each balance is its opening plus its entries (one
// entry row per committed branch, its primary key the tx id). At the end no prepared
// transaction of ours is left in pg_prepared_xacts.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresParticipant, type PostgresPrepare } from '../../src/postgres/index.js';
import { assertNoViolations, runChaos, type ChaosParticipant } from '../../src/testing/index.js';
import { PgServer } from './support/pg-server.js';

/** Opening balance of each database's one account. */
const OPENING = 1_000;
const DATABASES = { 'pg-a': 'harness_a', 'pg-b': 'harness_b' } as const;
type LedgerName = keyof typeof DATABASES;

const SCHEMA = [
  'CREATE TABLE accounts (id text PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))',
  'CREATE TABLE entries (tx_id text PRIMARY KEY, delta bigint NOT NULL)',
  `INSERT INTO accounts (id, balance) VALUES ('main', ${OPENING})`,
];

/** The branch's SQL: move `delta` on the account and record the entry (an overdraft fails the CHECK: a NO). */
const prepare: PostgresPrepare = async (sql, txId, payload) => {
  const { delta } = JSON.parse(Buffer.from(payload).toString('utf8')) as { delta: number };
  await sql.query("UPDATE accounts SET balance = balance + $1 WHERE id = 'main'", [delta]);
  await sql.query('INSERT INTO entries (tx_id, delta) VALUES ($1, $2)', [txId, delta]);
};

describe('verdict/testing on a PostgreSQL-backed ledger', () => {
  let server: PgServer;
  const pools = new Map<LedgerName, pg.Pool>();

  before(async () => {
    server = await PgServer.start();
    for (const [name, database] of Object.entries(DATABASES) as [LedgerName, string][]) {
      const pool = new pg.Pool({ ...(await server.createDatabase(database)), max: 4 });
      pool.on('error', () => undefined);
      for (const statement of SCHEMA) await pool.query(statement);
      pools.set(name, pool);
    }
  });

  after(async () => {
    for (const pool of pools.values()) await pool.end();
    await server?.stop();
  });

  const ledger = (name: LedgerName): ChaosParticipant => ({
    name,
    start: (ctx) =>
      PostgresParticipant.start({
        name: ctx.name,
        coordinator: ctx.coordinator,
        dataDir: ctx.dataDir,
        protocol: ctx.protocol,
        logger: ctx.logger,
        ...ctx.security,
        connection: { ...server.connection(DATABASES[name]), max: 4 },
        prepare,
      }),
    // How many times each transaction took effect here, read from PostgreSQL.
    effects: async () => {
      const { rows } = await (pools.get(name) as pg.Pool).query<{ tx_id: string; n: string }>('SELECT tx_id, count(*) AS n FROM entries GROUP BY tx_id');
      return new Map(rows.map((r) => [r.tx_id, Number(r.n)]));
    },
  });

  it('keeps the books in SQL under every kind of fault, with mutual TLS, and leaves nothing prepared', { timeout: 150_000 }, async (t) => {
    const report = await runChaos({
      participants: [ledger('pg-a'), ledger('pg-b')],
      // Each transaction moves 1–400 one way or the other: some overdraw, and the CHECK votes NO.
      transaction: ({ rng, participants: [a, b] }) => {
        const amount = rng.int(1, 400) * (rng.chance(0.5) ? 1 : -1);
        return [
          { participant: a!, payload: JSON.stringify({ delta: -amount }) },
          { participant: b!, payload: JSON.stringify({ delta: amount }) },
        ];
      },
      invariant: async ({ history }) => {
        const problems: string[] = [];
        let total = 0;
        for (const [name, pool] of pools) {
          // In SQL: the balance is the opening plus every entry, and never negative.
          const { rows } = await pool.query<{ balance: string; entries: string; consistent: boolean }>(
            `SELECT a.balance, coalesce(sum(e.delta), 0) AS entries, a.balance = $1 + coalesce(sum(e.delta), 0) AND a.balance >= 0 AS consistent
               FROM accounts a LEFT JOIN entries e ON true WHERE a.id = 'main' GROUP BY a.balance`,
            [OPENING],
          );
          const row = rows[0];
          if (!row?.consistent) problems.push(`${name}: balance ${row?.balance} is not ${OPENING} + its entries (${row?.entries})`);
          total += Number(row?.balance);
          // Exactly the transactions that committed left an entry here.
          const { rows: entries } = await pool.query<{ tx_id: string }>('SELECT tx_id FROM entries');
          const committed = new Set(history.filter((t) => t.outcome === 'committed').map((t) => t.txId));
          for (const e of entries) if (!committed.has(e.tx_id)) problems.push(`${name}: entry of ${e.tx_id}, which did not commit`);
          if (entries.length !== committed.size) problems.push(`${name}: ${entries.length} entries for ${committed.size} committed transactions`);
        }
        if (total !== OPENING * pools.size) problems.push(`the balances sum to ${total}, not ${OPENING * pools.size}`);
        return problems;
      },
      duration: 6_000,
      seed: 21,
      tls: true,
    });
    t.diagnostic(report.faults.map((f) => `${f.kind} ${f.target} ${f.status}`).join('; '));
    assertNoViolations(report);
    assert.equal(report.tls, true);
    assert.ok(report.txs.finalCommitted > 0, 'transactions committed');
    assert.ok(report.txs.finalAborted > 0, 'transactions aborted (overdrafts, faults)');
    // Seed 21 kills the pg-b participant (and arms a crash failpoint on the coordinator, which a
    // slow run may not reach in its window).
    assert.ok(report.faults.some((f) => f.kind === 'kill' && f.target === 'pg-b' && f.status === 'injected'), 'pg-b was killed');
    assert.ok(report.recoveries > 0, `killed processes came back: ${report.recoveries}`);
    // Every participant is closed and every transaction ended: nothing of ours stays prepared.
    assert.deepEqual(await server.prepared('verdict1:'), []);
    rmSync(report.dir, { recursive: true, force: true });
  });
});
