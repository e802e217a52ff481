// PostgreSQL participants in real transactions: two databases as two participants plus a LevelDB
// participant, committed and aborted together; NO votes from the database (a constraint
// violation, a serialization failure) with its error in the reason; one-phase commits. After
// every test, no prepared transaction of ours is left on the server.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { PostgresParticipant, type PostgresParticipantOptions } from '../../src/postgres/index.js';
import { TestCluster, testLogger, uniqueName, waitFor } from '../support/cluster.js';
import { balance, createLedger, ledgerPrepare, move } from './support/ledger.js';
import { PgServer } from './support/pg-server.js';

describe('PostgreSQL participants', () => {
  let server: PgServer;
  let cluster: TestCluster;
  let poolA: pg.Pool;
  let poolB: pg.Pool;
  let pgA: PostgresParticipant;
  let pgB: PostgresParticipant;
  let ledger: string;
  const started: PostgresParticipant[] = [];

  const startPg = async (name: string, database: string, options: Partial<PostgresParticipantOptions> = {}): Promise<PostgresParticipant> => {
    const p = await PostgresParticipant.start({
      name,
      coordinator: cluster.coordinator.address,
      dataDir: join(cluster.dir.path, name),
      connection: server.connection(database),
      prepare: ledgerPrepare,
      logger: testLogger,
      ...options,
    });
    started.push(p);
    await p.ready();
    return p;
  };

  before(async () => {
    server = await PgServer.start();
    poolA = await createLedger(await server.createDatabase('bank_a'), { alice: 100 }, pg.Pool);
    poolB = await createLedger(await server.createDatabase('bank_b'), { bob: 100 }, pg.Pool);
    cluster = await TestCluster.start();
    pgA = await startPg(uniqueName('pg-a'), 'bank_a');
    pgB = await startPg(uniqueName('pg-b'), 'bank_b');
    ledger = uniqueName('ledger');
    await cluster.participant(ledger, 'yes');
  });

  afterEach(async () => {
    // Nothing of ours stays prepared once every transaction has finished.
    await waitFor('no prepared transaction of ours', async () => (await server.prepared('verdict1:')).length === 0);
  });

  after(async () => {
    for (const p of started.reverse()) await p.close();
    await cluster?.close();
    await poolA?.end();
    await poolB?.end();
    await server?.stop();
  });

  it('commits two databases and a LevelDB participant together', async () => {
    const { txId } = await cluster.client.transact(
      [
        { participant: pgA.name, payload: move('alice', -30) },
        { participant: pgB.name, payload: move('bob', 30) },
        { participant: ledger, payload: 'note' },
      ],
      { waitForCompletion: true },
    );
    assert.equal(await balance(poolA, 'alice'), 70);
    assert.equal(await balance(poolB, 'bob'), 130);
    assert.ok(cluster.callsOf(ledger).some((c) => c.hook === 'commit' && c.txId === txId));
    // The commit markers are dropped once the SDK's COMMITTED record is durable.
    await waitFor('markers deleted', async () => (await poolA.query('SELECT 1 FROM verdict_committed')).rowCount === 0);
    await waitFor('markers deleted', async () => (await poolB.query('SELECT 1 FROM verdict_committed')).rowCount === 0);
  });

  it('aborts everywhere on a constraint violation, with the database error as the reason', async () => {
    const before = [await balance(poolA, 'alice'), await balance(poolB, 'bob')];
    await assert.rejects(
      cluster.client.transact([
        { participant: pgA.name, payload: move('alice', -1_000) },
        { participant: pgB.name, payload: move('bob', 1_000) },
        { participant: ledger, payload: 'note' },
      ]),
      (e: VerdictError) => {
        assert.equal(e.code, ErrorCode.TX_ABORTED);
        // The SQLSTATE and the server's own message, naming the constraint.
        assert.match(e.reason ?? e.message, /PostgreSQL 23514: new row for relation "accounts" violates check constraint "accounts_balance_check"/);
        return true;
      },
    );
    assert.deepEqual([await balance(poolA, 'alice'), await balance(poolB, 'bob')], before);
    await waitFor('the LevelDB participant aborted', () => cluster.callsOf(ledger).at(-1)?.hook === 'abort');
  });

  it('votes NO on a serialization failure, with SQLSTATE 40001 in the reason', async () => {
    const name = uniqueName('pg-rr');
    const other = new pg.Pool({ ...server.connection('bank_a'), max: 1 });
    other.on('error', () => undefined);
    try {
      const rr = await startPg(name, 'bank_a', {
        isolationLevel: 'repeatable read',
        prepare: async (sql) => {
          await sql.query("SELECT balance FROM accounts WHERE id = 'alice'"); // takes the snapshot
          await other.query("UPDATE accounts SET balance = balance + 1 WHERE id = 'alice'"); // a concurrent commit
          await sql.query("UPDATE accounts SET balance = balance - 1 WHERE id = 'alice'");
        },
      });
      const start = await balance(poolA, 'alice');
      const bob = await balance(poolB, 'bob');
      await assert.rejects(
        cluster.client.transact([
          { participant: rr.name, payload: '' },
          { participant: pgB.name, payload: move('bob', 1) },
        ]),
        (e: VerdictError) => {
          assert.equal(e.code, ErrorCode.TX_ABORTED);
          // The SQLSTATE and the server's own message, as PostgreSQL said it.
          assert.match(e.reason ?? e.message, /PostgreSQL 40001: could not serialize access due to concurrent update/);
          return true;
        },
      );
      // Only the concurrent update landed; the other database's branch was rolled back.
      assert.equal(await balance(poolA, 'alice'), start + 1);
      assert.equal(await balance(poolB, 'bob'), bob);
    } finally {
      await other.end();
    }
  });

  it('aborts prepared databases when another participant votes NO', async () => {
    const start = [await balance(poolA, 'alice'), await balance(poolB, 'bob')];
    await assert.rejects(
      cluster.client.transact([
        { participant: pgA.name, payload: move('alice', -5) },
        { participant: pgB.name, payload: move('nobody', 5) },
      ]),
      (e: VerdictError) => e.code === ErrorCode.TX_ABORTED && /no account nobody/.test(e.reason ?? ''),
    );
    assert.deepEqual([await balance(poolA, 'alice'), await balance(poolB, 'bob')], start);
  });

  it('commits a single PostgreSQL branch in one phase', async () => {
    const start = await balance(poolA, 'alice');
    await cluster.client.transact([{ participant: pgA.name, payload: move('alice', 7) }]);
    // The COMMIT PREPARED follows the SDK's durable COMMITTED record.
    await waitFor('the one-phase commit applied', async () => (await balance(poolA, 'alice')) === start + 7);
    await waitFor('no pending one-phase key', async () => {
      for await (const _ of pgA.participant.store.keys()) return false;
      return true;
    });
  });

  it('holds its own gids only: verdict1:<cluster>:<participant>:<txId>', async () => {
    assert.equal(pgA.gidPrefix, `verdict1:default:${pgA.name}:`);
    assert.equal(pgA.gidOf('tx-3-17'), `verdict1:default:${pgA.name}:tx-3-17`);
    assert.throws(() => pgA.gidOf("tx-1-1'; DROP TABLE accounts; --"), { code: 'INVALID_ARGUMENT' });
  });
});
