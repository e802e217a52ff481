// A branch whose participant has no session: the coordinator cannot send it Prepare, so it waits
// for it until the deadline and then aborts with `participant X unavailable`. A participant that
// connects before the deadline is prepared on connect and the transaction commits.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { ErrorCode, TransactionAbortedError } from '../../src/errors.js';
import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';

describe('participant not connected', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start();
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('aborts at the deadline with "participant X unavailable" when X never connects', async () => {
    const [present, ghost] = [uniqueName('present'), uniqueName('ghost')];
    await cluster.participant(present);

    const startedAt = Date.now();
    const error = await cluster.client.transact([{ participant: present }, { participant: ghost }], { timeoutMs: 300 }).then(
      () => assert.fail('committed without the missing participant'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof TransactionAbortedError, `expected TransactionAbortedError, got ${String(error)}`);
    assert.equal(error.code, ErrorCode.TX_ABORTED);
    assert.equal(error.reason, `participant ${ghost} unavailable`);
    assert.ok(Date.now() - startedAt >= 280, 'aborted before the deadline');

    // The connected participant had voted YES and is told to abort.
    await waitFor('the present participant to abort', () => cluster.calls.get(present)?.some((c) => c.hook === 'abort'));
    assert.deepEqual(
      cluster.calls.get(present)?.map((c) => c.hook),
      ['prepare', 'abort'],
    );
    const view = await waitFor('the transaction to end', async () => {
      const v = await cluster.client.get(error.txId ?? '');
      return v.state === 'ended' ? v : undefined;
    });
    assert.equal(view.outcome, 'aborted');
    assert.equal(view.reason, `participant ${ghost} unavailable`);
  });

  it('prepares a participant that connects before the deadline, and commits', async () => {
    const [early, late] = [uniqueName('early'), uniqueName('late')];
    const { calls: earlyCalls } = await cluster.participant(early);

    const commit = cluster.client.transact([{ participant: early, payload: 'e' }, { participant: late, payload: 'l' }], { timeoutMs: 10_000 });
    await waitFor('early to be asked to prepare', () => earlyCalls.length > 0);
    const txId = earlyCalls[0]?.txId ?? '';
    // The coordinator holds the transaction open, knowing it could not reach `late`.
    const waiting = await waitFor('the coordinator to note that late is missing', () => {
      const view = cluster.coordinator.describe(txId);
      return view?.branches.find((b) => b.participant === early)?.vote === 'yes' ? view : undefined;
    });
    assert.equal(waiting.state, 'preparing');
    assert.equal(waiting.branches.find((b) => b.participant === late)?.lastError, `participant ${late} is not connected`);

    const { calls: lateCalls } = await cluster.participant(late);
    const result = await commit;
    assert.equal(result.outcome, 'committed');
    assert.equal(result.txId, txId);
    await waitFor('late to commit', () => lateCalls.some((c) => c.hook === 'commit'));
    assert.deepEqual(lateCalls, [
      { hook: 'prepare', txId, payload: 'l' },
      { hook: 'commit', txId },
    ]);
    await waitFor('early to commit', () => earlyCalls.some((c) => c.hook === 'commit'));
    assert.deepEqual(
      earlyCalls.map((c) => c.hook),
      ['prepare', 'commit'],
    );
  });
});
