// Garbage collection of finished transactions: summaries past their retention are dropped, and
// status queries then answer FORGOTTEN (never a presumed abort for a committed transaction).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, TxState } from '../../src/index.js';
import { TestCluster, waitFor } from '../support/cluster.js';

describe('garbage collection', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start();
    await cluster.participant('gc-a');
    await cluster.participant('gc-b');
  });
  after(() => cluster.close());

  it('drops coordinator summaries past the retention and answers FORGOTTEN from then on, also after a restart', async () => {
    const { txId } = await cluster.client.transact([{ participant: 'gc-a' }, { participant: 'gc-b' }], { waitForCompletion: true });
    assert.equal((await cluster.client.get(txId)).outcome, 'committed');

    const dropped = await cluster.coordinator.collectGarbage(Date.now() + 1);
    assert.ok(dropped >= 1, `dropped ${dropped}`);

    const view = await cluster.client.get(txId);
    assert.equal(view.state, TxState.FORGOTTEN);
    assert.equal(view.outcome, undefined, 'a forgotten transaction has no guessed outcome');
    await assert.rejects(cluster.client.commit(txId), (e: { code: string }) => e.code === ErrorCode.WRONG_STATE);

    // A later transaction is unaffected, and never-issued ids stay NOT_FOUND.
    const later = await cluster.client.transact([{ participant: 'gc-a' }, { participant: 'gc-b' }], { waitForCompletion: true });
    assert.equal((await cluster.client.get(later.txId)).outcome, 'committed');
    const [, epoch] = later.txId.split('-');
    await assert.rejects(cluster.client.get(`tx-${epoch}-999999`), (e: { code: string }) => e.code === ErrorCode.TX_NOT_FOUND);

    // The horizon is durable: a restarted coordinator still says FORGOTTEN, not "presumed aborted".
    for (const p of cluster.participants.values()) await p.close();
    await cluster.coordinator.close();
    await cluster.startCoordinator();
    const again = await cluster.client.get(txId);
    assert.equal(again.state, TxState.FORGOTTEN);
    assert.equal((await cluster.client.get(later.txId)).outcome, 'committed', 'summaries inside the retention survive the restart');
  });

  it('drops participant records of finished transactions but never a prepared one', async () => {
    const fresh = await TestCluster.start();
    try {
      const { participant } = await fresh.participant('gc-c');
      await fresh.participant('gc-d');
      await fresh.client.transact([{ participant: 'gc-c' }, { participant: 'gc-d' }], { waitForCompletion: true });
      assert.equal(await participant.collectGarbage(Date.now() - 60_000), 0, 'nothing is older than a minute');
      assert.equal(await participant.collectGarbage(Date.now() + 1), 1);
      assert.equal(await participant.collectGarbage(Date.now() + 1), 0, 'dropped once');
      assert.deepEqual(participant.inDoubt(), []);

      // A transaction held prepared (its other branch never connects) survives GC and a restart.
      const pending = fresh.client.transact([{ participant: 'gc-c' }, { participant: 'gc-never' }], { timeoutMs: 60_000 }).catch((e: unknown) => e);
      const held = await waitFor('gc-c to hold the transaction prepared', () => participant.inDoubt()[0]);
      assert.equal(await participant.collectGarbage(Date.now() + 1), 0);
      await participant.close();
      const { participant: restarted } = await fresh.participant('gc-c');
      assert.deepEqual(restarted.inDoubt().map((t) => t.txId), [held.txId]);
      await fresh.client.abort(held.txId, 'test over');
      assert.equal(((await pending) as { code: string }).code, ErrorCode.TX_ABORTED);
      await waitFor('the abort to reach gc-c', () => restarted.inDoubt().length === 0);
    } finally {
      await fresh.close();
    }
  });
});
