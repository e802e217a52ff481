// PostgreSQL itself restarted while a transaction is prepared in two databases: prepared
// transactions survive a fast shutdown and an immediate one (a crash, recovered from the WAL),
// and the participants finish them once the coordinator decides, also when the decision comes
// while the server is down (the commit hooks are retried until it is back). Also the start-up checks:
// prepared transactions disabled, and each missing privilege, each with its own error.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { PostgresErrorCode, PostgresParticipant, PostgresParticipantError, type PostgresParticipantOptions } from '../../src/postgres/index.js';
import { Gate, TestCluster, testLogger, uniqueName, waitFor } from '../support/cluster.js';
import { balance, createLedger, ledgerPrepare, move } from './support/ledger.js';
import { PgServer } from './support/pg-server.js';

describe('PostgreSQL restarted while transactions are prepared', () => {
  let server: PgServer;
  let cluster: TestCluster;
  let poolA: pg.Pool;
  let poolB: pg.Pool;
  const started: PostgresParticipant[] = [];

  const startPg = async (name: string, database: string, extra: Partial<PostgresParticipantOptions> = {}): Promise<PostgresParticipant> => {
    const p = await PostgresParticipant.start({
      name,
      coordinator: cluster.coordinator.address,
      dataDir: join(cluster.dir.path, name),
      connection: server.connection(database),
      prepare: ledgerPrepare,
      protocol: { hookRetryInitialMs: 50, hookRetryMaxMs: 300 },
      logger: testLogger,
      ...extra,
    });
    started.push(p);
    return p;
  };

  before(async () => {
    server = await PgServer.start();
    poolA = await createLedger(await server.createDatabase('bank_a'), { alice: 100 }, pg.Pool);
    poolB = await createLedger(await server.createDatabase('bank_b'), { bob: 100 }, pg.Pool);
    cluster = await TestCluster.start();
  });

  afterEach(async () => {
    await waitFor('no prepared transaction of ours', async () => (await server.prepared('verdict1:')).length === 0);
  });

  after(async () => {
    for (const p of started.reverse()) await p.close();
    await cluster?.close();
    await poolA?.end();
    await poolB?.end();
    await server?.stop();
  });

  it('finishes prepared transactions after a fast and an immediate restart', { timeout: 60_000 }, async () => {
    const pgA = await startPg(uniqueName('pg-a'), 'bank_a');
    const pgB = await startPg(uniqueName('pg-b'), 'bank_b');
    // A third branch holds its vote until the server has been restarted twice.
    const gate = new Gate();
    const holder = uniqueName('holder');
    await cluster.participant(holder, () => gate.wait().then(() => 'yes' as const));
    await Promise.all([pgA.ready(), pgB.ready()]);

    const { txId } = await cluster.client.begin({ timeoutMs: 60_000 });
    const commit = cluster.client.commit(txId, [
      { participant: pgA.name, payload: move('alice', -25) },
      { participant: pgB.name, payload: move('bob', 25) },
      { participant: holder, payload: '' },
    ]);
    const ours = [pgA.gidOf(txId), pgB.gidOf(txId)].sort();
    const preparedGids = async (): Promise<string[]> => (await server.prepared('verdict1:')).map((r) => r.gid).sort();
    await waitFor('both databases prepared', async () => (await preparedGids()).length === 2);
    assert.deepEqual(await preparedGids(), ours);

    await server.restart('fast');
    assert.deepEqual(await preparedGids(), ours, 'prepared transactions survive a fast shutdown');
    await server.restart('immediate');
    assert.deepEqual(await preparedGids(), ours, 'prepared transactions survive an immediate shutdown');
    // The prepared rows are still locked: a plain update waits, and gives up at its timeout.
    const probe = new pg.Client(server.connection('bank_a'));
    await probe.connect();
    try {
      await probe.query("SET lock_timeout = '200ms'");
      await assert.rejects(probe.query("UPDATE accounts SET balance = balance WHERE id = 'alice'"), { code: '55P03' });
    } finally {
      await probe.end();
    }

    gate.open();
    await commit;
    await waitFor('both branches committed', async () => (await preparedGids()).length === 0, 20_000);
    assert.equal(await balance(poolA, 'alice'), 75);
    assert.equal(await balance(poolB, 'bob'), 125);
  });

  it('finishes a decision that arrives while PostgreSQL is down: the commit hooks fail and are retried until it is back', { timeout: 90_000 }, async () => {
    // Every log line of both participants, to see their commit hooks fail while the server is down.
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const pgA = await startPg(uniqueName('pg-a'), 'bank_a', { logger });
    const pgB = await startPg(uniqueName('pg-b'), 'bank_b', { logger });
    const gate = new Gate();
    const holder = uniqueName('holder');
    await cluster.participant(holder, () => gate.wait().then(() => 'yes' as const));
    await Promise.all([pgA.ready(), pgB.ready()]);
    const [alice, bob] = [await balance(poolA, 'alice'), await balance(poolB, 'bob')];

    const { txId } = await cluster.client.begin({ timeoutMs: 60_000 });
    const commit = cluster.client.commit(txId, [
      { participant: pgA.name, payload: move('alice', -5) },
      { participant: pgB.name, payload: move('bob', 5) },
      { participant: holder, payload: '' },
    ]);
    const ours = [pgA.gidOf(txId), pgB.gidOf(txId)].sort();
    await waitFor('both databases prepared', async () => (await server.prepared('verdict1:')).length === 2);

    await server.halt('immediate');
    gate.open();
    // The decision is durable at the coordinator while PostgreSQL is down.
    await commit;
    const failed = (name: string): boolean => lines.some((l) => l.includes('hook threw') && l.includes(txId) && l.includes(name));
    await waitFor('both commit hooks to fail against the stopped server', () => failed(pgA.name) && failed(pgB.name), 30_000);
    const view = await cluster.client.get(txId);
    // (The holder's own ack is not waited for: it may still be on its way.)
    assert.deepEqual(view.branches.filter((b) => b.acknowledged && b.participant !== holder).map((b) => b.participant), [], 'no PostgreSQL branch acknowledged while the server is down');

    await server.resume();
    // The retried hooks may finish the moment the server is back, so the prepared list is not
    // read here (it raced them: one branch was seen committed already). What shows the prepared
    // state survived the immediate shutdown: nothing else of ours is prepared, and the balance
    // changes, which existed only inside the two prepared transactions, arrive.
    const after = (await server.prepared('verdict1:')).map((r) => r.gid);
    assert.ok(after.every((gid) => ours.includes(gid)), `only our two transactions are prepared (${after.join(', ')})`);
    await waitFor('both branches committed and acknowledged', async () => (await server.prepared('verdict1:')).length === 0 && (await cluster.client.get(txId)).branches.every((b) => b.acknowledged), 30_000);
    assert.equal(await balance(poolA, 'alice'), alice - 5);
    assert.equal(await balance(poolB, 'bob'), bob + 5);
  });

  it('refuses to start without the privileges it needs, naming the missing one', async () => {
    await poolA.query('CREATE ROLE app_user LOGIN');
    const asApp = { ...server.connection('bank_a'), user: 'app_user' };
    const start = (markerTable: string): Promise<PostgresParticipant> =>
      PostgresParticipant.start({
        name: uniqueName('pg-app'),
        coordinator: cluster.coordinator.address,
        dataDir: join(cluster.dir.path, uniqueName('pg-app')),
        connection: asApp,
        prepare: ledgerPrepare,
        markerTable,
        logger: testLogger,
      });
    // PostgreSQL 15 grants no CREATE on the public schema to other roles.
    await assert.rejects(start('app_markers'), (e: PostgresParticipantError) => {
      assert.equal(e.code, PostgresErrorCode.PG_PERMISSION_DENIED);
      assert.match(e.message, /may not create the marker table app_markers/);
      return true;
    });
    await poolA.query('CREATE TABLE app_markers (gid text PRIMARY KEY, committed_at timestamptz NOT NULL DEFAULT now())');
    await poolA.query('GRANT SELECT ON app_markers TO app_user');
    await assert.rejects(start('app_markers'), (e: PostgresParticipantError) => {
      assert.equal(e.code, PostgresErrorCode.PG_PERMISSION_DENIED);
      assert.match(e.message, /lacks INSERT, DELETE on the marker table app_markers/);
      return true;
    });
    await poolA.query('GRANT INSERT, DELETE ON app_markers TO app_user');
    const ok = await start('app_markers');
    started.push(ok);
    assert.equal(ok.recovery.rolledBack.length, 0);
  });
});

describe('PostgreSQL without prepared transactions', () => {
  let server: PgServer;

  before(async () => {
    server = await PgServer.start({ maxPreparedTransactions: 0 });
  });

  after(async () => {
    await server?.stop();
  });

  it('refuses to start with max_prepared_transactions = 0, in one clear error', async () => {
    await assert.rejects(
      PostgresParticipant.start({
        name: 'pg-off',
        coordinator: '127.0.0.1:1',
        dataDir: '/nonexistent-never-opened',
        connection: server.connection('postgres'),
        prepare: ledgerPrepare,
        logger: testLogger,
      }),
      (e: PostgresParticipantError) => {
        assert.equal(e.code, PostgresErrorCode.PG_PREPARED_TRANSACTIONS_DISABLED);
        assert.match(e.message, /^max_prepared_transactions is 0 on database postgres as role verdict: set it above 0/);
        return true;
      },
    );
  });

  it('refuses a pool that cannot reach the server as PG_UNAVAILABLE', async () => {
    await assert.rejects(
      PostgresParticipant.start({
        name: 'pg-gone',
        coordinator: '127.0.0.1:1',
        dataDir: '/nonexistent-never-opened',
        connection: { ...server.connection('postgres'), port: 1, connectionTimeoutMillis: 2_000 },
        prepare: ledgerPrepare,
        logger: testLogger,
      }),
      { code: PostgresErrorCode.PG_UNAVAILABLE },
    );
  });
});
