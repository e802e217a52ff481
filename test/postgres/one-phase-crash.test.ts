// SIGKILL of a PostgreSQL participant's process in a one-phase transaction (its branch is the
// only one, so the participant decides and its COMMITTED record is the decision): after PREPARE
// TRANSACTION with no COMMITTED record yet, after that record but before the vote that answers
// it, after the vote, and after COMMIT PREPARED but before its bookkeeping (the commit-pending
// key and the marker) is cleared. The process is restarted on its data directory; each time the
// coordinator's outcome, the balance in PostgreSQL and the recovery report agree, the marker table
// is empty, and nothing of ours stays prepared. (The two-phase points are in participant-crash.)

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import type { FailpointName } from '../../src/common/failpoints.js';
import type { ManagedProcess } from '../../src/faults/managed-process.js';
import { Outcome } from '../../src/protocol/types.js';
import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';
import { balance, createLedger, move } from './support/ledger.js';
import { lastRecovery, pgParticipantChild } from './support/pg-participant-child.js';
import { PgServer } from './support/pg-server.js';

/**
 * The transaction's timeout, in ms. A one-phase branch whose participant went away is asked for
 * its outcome once this deadline passes (only the participant knows whether it committed).
 */
const TX_TIMEOUT_MS = 5_000;
/** How long the commit call and the checks may wait for the outcome, in ms. */
const OUTCOME_TIMEOUT_MS = 30_000;

interface Case {
  readonly failpoint: FailpointName;
  /** What the crash leaves between PostgreSQL and the SDK's log. */
  readonly between: string;
  readonly outcome: Outcome;
  /** Still prepared in PostgreSQL right after the crash. */
  readonly preparedAfterCrash: boolean;
  /** What the restart's recovery reports for the transaction. */
  readonly recovery: 'rolledBack' | 'committed' | 'none';
}

const CASES: readonly Case[] = [
  {
    failpoint: 'participant.after-apply-hook',
    between: 'PREPARE TRANSACTION done, commit staged, no COMMITTED record, no vote',
    outcome: Outcome.ABORTED,
    preparedAfterCrash: true,
    recovery: 'rolledBack',
  },
  {
    failpoint: 'participant.after-one-phase-commit-record',
    between: 'COMMITTED record durable, vote not sent, COMMIT PREPARED not run',
    outcome: Outcome.COMMITTED,
    preparedAfterCrash: true,
    recovery: 'committed',
  },
  {
    failpoint: 'participant.after-vote-sent',
    between: 'the YES vote handed to the session after the COMMITTED record',
    outcome: Outcome.COMMITTED,
    // COMMIT PREPARED may or may not have run before the process died.
    preparedAfterCrash: false,
    recovery: 'none',
  },
  {
    failpoint: 'postgres.after-one-phase-commit-prepared',
    between: 'COMMIT PREPARED done, commit-pending key and marker left',
    outcome: Outcome.COMMITTED,
    preparedAfterCrash: false,
    recovery: 'none',
  },
];

describe('a PostgreSQL participant killed in a one-phase transaction', () => {
  let server: PgServer;
  let cluster: TestCluster;
  let pool: pg.Pool;
  let child: ManagedProcess;
  const name = uniqueName('pg-1pc');
  const gid = (txId: string): string => `verdict1:default:${name}:${txId}`;

  before(async () => {
    server = await PgServer.start();
    pool = await createLedger(await server.createDatabase('bank_1pc'), { alice: 1_000 }, pg.Pool);
    cluster = await TestCluster.start({ protocol: { retryInitialMs: 50, retryMaxMs: 500 } });
    const config = { name, coordinator: cluster.coordinator.address, dataDir: join(cluster.dir.path, name), connection: server.connection('bank_1pc'), inquiryIntervalMs: 300 };
    child = pgParticipantChild(config, cluster.dir.path);
  });

  afterEach(async () => {
    if (child.alive) await child.kill();
    assert.deepEqual(await server.prepared('verdict1:'), [], 'nothing of ours stays prepared');
  });

  after(async () => {
    if (child?.alive) await child.stop();
    await cluster?.close();
    await pool?.end();
    await server?.stop();
  });

  for (const c of CASES) {
    it(`${c.failpoint}: ${c.between}`, { timeout: 90_000 }, async () => {
      const start = await balance(pool, 'alice');
      const amount = 10;
      await child.start({ failpoints: `${c.failpoint}=crash` });

      // One branch: the coordinator hands the decision to the participant (one phase).
      const { txId } = await cluster.client.begin({ timeoutMs: TX_TIMEOUT_MS });
      const commit = cluster.client.commit(txId, [{ participant: name, payload: move('alice', -amount) }], { callTimeoutMs: OUTCOME_TIMEOUT_MS }).then(
        () => Outcome.COMMITTED,
        (e: VerdictError) => (e.code === ErrorCode.TX_ABORTED ? Outcome.ABORTED : Promise.reject(e)),
      );
      const exit = await child.waitExit(20_000);
      assert.equal(exit.cause, 'failpoint', `the participant died at ${c.failpoint}`);

      const preparedNow = (await server.prepared(gid(txId))).length > 0;
      if (c.preparedAfterCrash) assert.ok(preparedNow, 'the prepared transaction outlived the process');
      if (c.failpoint === 'postgres.after-one-phase-commit-prepared') {
        assert.ok(!preparedNow, 'COMMIT PREPARED ran');
        assert.equal((await pool.query('SELECT 1 FROM verdict_committed WHERE gid = $1', [gid(txId)])).rowCount, 1, 'its marker is visible');
      }

      await child.start();
      const recovery = lastRecovery(child);
      assert.deepEqual(recovery.inDoubt, [], 'a one-phase branch is never held in doubt');
      assert.deepEqual(recovery.rolledBack, c.recovery === 'rolledBack' ? [txId] : []);
      if (c.recovery === 'committed') assert.deepEqual(recovery.committed, [txId]);

      // The coordinator learns the participant's decision (it asks it after the reconnect).
      assert.equal(await commit, c.outcome);
      await waitFor('the transaction to end at the coordinator', async () => (await cluster.client.get(txId)).state === 'ended', OUTCOME_TIMEOUT_MS);
      assert.equal((await cluster.client.get(txId)).outcome, c.outcome);
      assert.deepEqual(await server.prepared('verdict1:'), []);
      assert.equal(await balance(pool, 'alice'), start - (c.outcome === Outcome.COMMITTED ? amount : 0));
      await waitFor('the commit markers are cleared', async () => (await pool.query('SELECT 1 FROM verdict_committed')).rowCount === 0);
      await child.stop();
    });
  }
});
