// SIGKILL of a PostgreSQL participant's process at each step between PostgreSQL and the SDK's
// log: between PREPARE TRANSACTION and the PREPARED record (the vote never left), after the
// PREPARED record, after the vote, after COMMIT PREPARED but before the COMMITTED record, and
// after that record but before the ack. The participant is restarted on its data directory;
// each time the outcome is the same in both databases and at the LevelDB participant, money is
// conserved, and nothing of ours stays prepared.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { VerdictError } from '../../src/errors.js';
import type { FailpointName } from '../../src/common/failpoints.js';
import type { ManagedProcess } from '../../src/faults/managed-process.js';
import { PostgresParticipant } from '../../src/postgres/index.js';
import { Outcome } from '../../src/protocol/types.js';
import { TestCluster, testLogger, uniqueName, waitFor } from '../support/cluster.js';
import { balance, createLedger, ledgerPrepare, move } from './support/ledger.js';
import { lastRecovery, pgParticipantChild } from './support/pg-participant-child.js';
import { PgServer } from './support/pg-server.js';

/** The transaction's deadline: short, so that a vote that never comes aborts it quickly. */
const TX_TIMEOUT_MS = 2_000;

interface Case {
  readonly failpoint: FailpointName;
  /** What the crash leaves between the two stores. */
  readonly between: string;
  /** The outcome it must lead to, when only one is possible. */
  readonly outcome?: Outcome;
}

const CASES: readonly Case[] = [
  { failpoint: 'participant.before-prepared-record', between: 'PREPARE TRANSACTION done, no PREPARED record, no vote', outcome: Outcome.ABORTED },
  { failpoint: 'participant.after-prepared-record', between: 'PREPARED record durable, vote not sent', outcome: Outcome.ABORTED },
  { failpoint: 'participant.after-vote-sent', between: 'the YES vote handed to the session' },
  { failpoint: 'participant.after-apply-hook', between: 'COMMIT PREPARED done, no COMMITTED record, no ack', outcome: Outcome.COMMITTED },
  { failpoint: 'participant.before-ack', between: 'COMMITTED record durable, no ack', outcome: Outcome.COMMITTED },
];

describe('a PostgreSQL participant killed between PostgreSQL and its log', () => {
  let server: PgServer;
  let cluster: TestCluster;
  let poolA: pg.Pool;
  let poolB: pg.Pool;
  let pgB: PostgresParticipant;
  let ledger: string;
  let child: ManagedProcess;
  const nameA = uniqueName('pg-a');

  before(async () => {
    server = await PgServer.start();
    poolA = await createLedger(await server.createDatabase('bank_a'), { alice: 1_000 }, pg.Pool);
    poolB = await createLedger(await server.createDatabase('bank_b'), { bob: 1_000 }, pg.Pool);
    cluster = await TestCluster.start({ protocol: { retryInitialMs: 50, retryMaxMs: 500 } });
    pgB = await PostgresParticipant.start({
      name: uniqueName('pg-b'),
      coordinator: cluster.coordinator.address,
      dataDir: join(cluster.dir.path, 'pg-b'),
      connection: server.connection('bank_b'),
      prepare: ledgerPrepare,
      protocol: { inquiryIntervalMs: 300 },
      logger: testLogger,
    });
    await pgB.ready();
    ledger = uniqueName('ledger');
    await cluster.participant(ledger, 'yes', { protocol: { inquiryIntervalMs: 300 } });
    const config = {
      name: nameA,
      coordinator: cluster.coordinator.address,
      dataDir: join(cluster.dir.path, nameA),
      connection: server.connection('bank_a'),
      inquiryIntervalMs: 300,
    };
    child = pgParticipantChild(config, cluster.dir.path);
  });

  afterEach(async () => {
    await waitFor('no prepared transaction of ours', async () => (await server.prepared('verdict1:')).length === 0, 20_000);
  });

  after(async () => {
    if (child?.alive) await child.stop();
    await pgB?.close();
    await cluster?.close();
    await poolA?.end();
    await poolB?.end();
    await server?.stop();
  });

  for (const c of CASES) {
    it(`${c.failpoint}: ${c.between}`, { timeout: 60_000 }, async () => {
      const startA = await balance(poolA, 'alice');
      const startB = await balance(poolB, 'bob');
      const amount = 10;
      await child.start({ failpoints: `${c.failpoint}=crash` });
      const gid = (txId: string): string => `verdict1:default:${nameA}:${txId}`;

      const { txId } = await cluster.client.begin({ timeoutMs: TX_TIMEOUT_MS });
      const commit = cluster.client
        .commit(txId, [
          { participant: nameA, payload: move('alice', -amount) },
          { participant: pgB.name, payload: move('bob', amount) },
          { participant: ledger, payload: 'note' },
        ])
        .then(
          () => Outcome.COMMITTED,
          (e: VerdictError) => (e.code === 'TX_ABORTED' ? Outcome.ABORTED : Promise.reject(e)),
        );
      const exit = await child.waitExit(20_000);
      assert.equal(exit.cause, 'failpoint', `the participant died at ${c.failpoint}`);
      const outcome = await commit;
      if (c.outcome) assert.equal(outcome, c.outcome);

      // What the crash left between the two stores.
      const preparedNow = (await server.prepared(gid(txId))).length > 0;
      const marker = (await poolA.query('SELECT 1 FROM verdict_committed WHERE gid = $1', [gid(txId)])).rowCount === 1;
      if (c.failpoint === 'participant.before-prepared-record' || c.failpoint === 'participant.after-prepared-record') {
        assert.ok(preparedNow, 'the prepared transaction outlived the process');
      }
      if (c.failpoint === 'participant.after-apply-hook') {
        assert.ok(!preparedNow && marker, 'COMMIT PREPARED ran and its marker is visible');
      }

      await child.start();
      const recovery = lastRecovery(child);
      if (c.failpoint === 'participant.before-prepared-record') assert.deepEqual(recovery.rolledBack, [txId], 'the orphan is rolled back at start');
      if (c.failpoint === 'participant.after-prepared-record') assert.deepEqual(recovery.inDoubt, [txId], 'a voted branch is held for the coordinator');

      // Every branch ends with the coordinator's outcome.
      await waitFor('no prepared transaction left', async () => (await server.prepared('verdict1:')).length === 0, 20_000);
      const view = await cluster.client.get(txId);
      assert.equal(view.outcome, outcome);
      const moved = outcome === Outcome.COMMITTED ? amount : 0;
      assert.equal(await balance(poolA, 'alice'), startA - moved);
      assert.equal(await balance(poolB, 'bob'), startB + moved);
      await waitFor('the LevelDB participant applied the outcome', () =>
        cluster.callsOf(ledger).some((h) => h.txId === txId && h.hook === (outcome === Outcome.COMMITTED ? 'commit' : 'abort')),
      );
      if (outcome === Outcome.COMMITTED) {
        await waitFor('every branch acknowledged', async () => (await cluster.client.get(txId)).branches.every((b) => b.acknowledged), 20_000);
        await waitFor('the commit marker is dropped', async () => (await poolA.query('SELECT 1 FROM verdict_committed')).rowCount === 0);
      }
      await child.stop();
    });
  }
});
