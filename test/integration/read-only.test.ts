// READ_ONLY votes: a participant that changed nothing leaves phase 2 out. When every branch is
// read-only the transaction commits with nothing forced to the decision log and no hook after
// prepare; mixed with YES voters, only those hear the commit.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';

describe('read-only votes', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start();
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('commits when every branch is read-only, forcing only its END summary and running no commit or abort hook', async () => {
    const [a, b] = [uniqueName('reader-a'), uniqueName('reader-b')];
    const pa = await cluster.participant(a, 'read-only');
    const pb = await cluster.participant(b, 'read-only');
    const finished: (string | undefined)[] = [];
    pa.participant.on('finished', (_txId, outcome) => finished.push(outcome));
    const syncedBefore = cluster.coordinator.stats.log.syncedBatches;

    const { txId, outcome } = await cluster.client.transact([{ participant: a }, { participant: b }], { waitForCompletion: true });
    assert.equal(outcome, 'committed');
    // One forced write: the END summary, so that COMMITTED still reads COMMITTED after a power loss.
    assert.equal(cluster.coordinator.stats.log.syncedBatches, syncedBefore + 1, 'an all-read-only transaction must force exactly its END summary');

    const view = await cluster.client.get(txId);
    assert.equal(view.state, 'ended');
    assert.equal(view.outcome, 'committed');
    assert.deepEqual(pa.calls, [{ hook: 'prepare', txId, payload: '' }]);
    assert.deepEqual(pb.calls, [{ hook: 'prepare', txId, payload: '' }]);
    assert.deepEqual(finished, [undefined], 'a read-only branch finishes with no outcome');
  });

  it('sends the commit only to the YES voter when mixed with a read-only one', async () => {
    const [reader, writer] = [uniqueName('reader'), uniqueName('writer')];
    const pr = await cluster.participant(reader, 'read-only');
    const pw = await cluster.participant(writer, 'yes');

    const { txId } = await cluster.client.transact([{ participant: reader }, { participant: writer }], { waitForCompletion: true });
    // waitForCompletion waited for the writer's ack only: the reader owes none.
    assert.deepEqual(pw.calls, [
      { hook: 'prepare', txId, payload: '' },
      { hook: 'commit', txId },
    ]);
    assert.deepEqual(pr.calls, [{ hook: 'prepare', txId, payload: '' }]);
    assert.ok(cluster.coordinator.stats.log.syncedBatches >= 1, 'the COMMIT record for the YES voter was forced');
    const view = await waitFor('the transaction to end', async () => {
      const v = await cluster.client.get(txId);
      return v.state === 'ended' ? v : undefined;
    });
    assert.equal(view.outcome, 'committed');
  });
});
