// What atomicity across two PostgreSQL databases costs: the same two writes (one UPDATE in each
// of two databases) done as one Verdict transaction with two PostgreSQL branches (PREPARE
// TRANSACTION, a durable decision, COMMIT PREPARED), and as two plain local transactions without
// 2PC, in the same run, at the same number in flight. Prints tx/s and p50/p99 latency.
//
//   npm run bench:postgres -- [--duration S] [--inflight N] [--accounts N]
//
// Everything runs on this machine: a throwaway PostgreSQL cluster (as in the tests), a
// coordinator and both participants in this process. Not a test: no pass/fail.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { VerdictClient } from '../src/client/index.js';
import { Coordinator } from '../src/coordinator/index.js';
import { PostgresParticipant, type PostgresPrepare } from '../src/postgres/index.js';
import { PgServer } from '../test/postgres/support/pg-server.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    inflight: { type: 'string', default: '64' },
    accounts: { type: 'string', default: '10000' },
    warmup: { type: 'string', default: '2' },
  },
});
const DURATION_MS = Number(values.duration) * 1000;
const WARMUP_MS = Number(values.warmup) * 1000;
const IN_FLIGHT = Number(values.inflight);
const ACCOUNTS = Number(values.accounts);
/** Connections per database, the same for both paths. */
const POOL_SIZE = 16;

interface Result {
  readonly name: string;
  readonly txs: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p99: number;
  readonly failed: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `one` with IN_FLIGHT callers for the warm-up plus DURATION_MS; measures after the warm-up. */
async function measure(name: string, one: () => Promise<void>): Promise<Result> {
  const latencies: number[] = [];
  let failed = 0;
  const start = performance.now();
  const measureFrom = start + WARMUP_MS;
  const end = measureFrom + DURATION_MS;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await one();
        if (t0 >= measureFrom) latencies.push(performance.now() - t0);
      } catch {
        if (t0 >= measureFrom) failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  latencies.sort((a, b) => a - b);
  return { name, txs: latencies.length, seconds: DURATION_MS / 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99), failed };
}

const pick = (): string => `a${Math.floor(Math.random() * ACCOUNTS)}`;

async function main(): Promise<void> {
  const quiet = pino({ level: 'silent' });
  const server = await PgServer.start({ maxPreparedTransactions: IN_FLIGHT * 2 + 16 });
  const dir = mkdtempSync(join(tmpdir(), 'verdict-bench-pg-'));
  const pools: pg.Pool[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    for (const db of ['bank_a', 'bank_b']) {
      const pool = new pg.Pool({ ...(await server.createDatabase(db)), max: POOL_SIZE });
      pool.on('error', () => undefined);
      pools.push(pool);
      await pool.query('CREATE TABLE accounts (id text PRIMARY KEY, balance bigint NOT NULL)');
      await pool.query(`INSERT INTO accounts SELECT 'a' || g, 1000000 FROM generate_series(0, ${ACCOUNTS - 1}) g`);
    }
    const [poolA, poolB] = pools as [pg.Pool, pg.Pool];

    const coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: join(dir, 'coordinator'), logger: quiet });
    closers.push(() => coordinator.close());
    const prepare: PostgresPrepare = async (sql, _txId, payload) => {
      const { account, delta } = JSON.parse(Buffer.from(payload).toString()) as { account: string; delta: number };
      await sql.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [delta, account]);
    };
    const participants: PostgresParticipant[] = [];
    for (const [name, db] of [['pg-a', 'bank_a'], ['pg-b', 'bank_b']] as const) {
      const p = await PostgresParticipant.start({
        name,
        coordinator: coordinator.address,
        dataDir: join(dir, name),
        connection: { ...server.connection(db), max: POOL_SIZE },
        prepare,
        logger: quiet,
      });
      participants.push(p);
      closers.unshift(() => p.close());
      await p.ready();
    }
    const client = new VerdictClient(coordinator.address, { streamCommits: true });
    closers.unshift(async () => client.close());

    const twoPhase = await measure('Verdict: 2 PostgreSQL branches (2PC)', async () => {
      await client.transact([
        { participant: 'pg-a', payload: JSON.stringify({ account: pick(), delta: -1 }) },
        { participant: 'pg-b', payload: JSON.stringify({ account: pick(), delta: 1 }) },
      ]);
    });
    const local = await measure('2 plain local transactions (no 2PC, not atomic)', async () => {
      await Promise.all([
        poolA.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [-1, pick()]),
        poolB.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [1, pick()]),
      ]);
    });

    console.log(`\n${IN_FLIGHT} in flight, ${DURATION_MS / 1000} s each after ${WARMUP_MS / 1000} s warm-up, ${ACCOUNTS} accounts per database, pools of ${POOL_SIZE}\n`);
    console.log('| path | tx/s | p50 ms | p99 ms | failed |');
    console.log('|---|---|---|---|---|');
    for (const r of [twoPhase, local]) {
      console.log(`| ${r.name} | ${Math.round(r.txs / r.seconds)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.failed} |`);
    }
    console.log(`\n2PC throughput is ${((twoPhase.txs / local.txs) * 100).toFixed(0)} % of the local transactions'.`);
  } finally {
    for (const close of closers) await close().catch(() => undefined);
    for (const pool of pools) await pool.end().catch(() => undefined);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
