// A participant that voted YES and then lost its session before the decision reached it: it
// restarts from its log (same name, same data directory) still holding the transaction in doubt,
// asks the coordinator, and applies the commit exactly once across both incarnations.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { ErrorCode } from '../../src/errors.js';
import type { PrepareResult } from '../../src/participant/index.js';
import { Gate, TestCluster, uniqueName, waitFor } from '../support/cluster.js';

describe('participant reconnect in phase 2', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start({ protocol: { retryInitialMs: 20, retryMaxMs: 200 } });
  });

  afterEach(async () => {
    await cluster.close();
  });

  /**
   * Brings `flaky` to a durable YES while `holder` waits at `gate` to vote `holderVote`, then
   * closes `flaky`: the decision can only be taken once it is gone.
   */
  async function yesThenGone(
    holder: string,
    holderVote: PrepareResult,
    flaky: string,
    gate: Gate,
  ): Promise<{ txId: string; outcome: Promise<string | undefined> }> {
    await cluster.participant(holder, async () => {
      await gate.wait();
      return holderVote;
    });
    const first = await cluster.participant(flaky);
    const outcome = cluster.client.transact([{ participant: holder }, { participant: flaky, payload: 'in doubt' }], { timeoutMs: 10_000 }).then(
      (r) => r.outcome,
      (e: unknown) => (e as { code?: string }).code,
    );
    const txId = (await waitFor('flaky to be in doubt', () => first.participant.inDoubt()[0])).txId;
    // Its YES must reach the coordinator before it goes, so that the decision is taken in its absence.
    await waitFor('the coordinator to count the YES of flaky', () =>
      cluster.coordinator.describe(txId)?.branches.some((b) => b.participant === flaky && b.vote === 'yes'),
    );
    await first.participant.close();
    return { txId, outcome };
  }

  it('delivers the commit exactly once to a participant that restarts after voting YES', async () => {
    const [holder, flaky] = [uniqueName('holder'), uniqueName('flaky')];
    const gate = new Gate();
    const { txId, outcome } = await yesThenGone(holder, 'yes', flaky, gate);

    // The decision is taken and made durable while flaky is away.
    gate.open();
    assert.equal(await outcome, 'committed');
    const decided = await waitFor('the coordinator to try and fail to reach flaky', () => {
      const view = cluster.coordinator.describe(txId);
      const branch = view?.branches.find((b) => b.participant === flaky);
      return branch?.lastError === `participant ${flaky} is not connected` ? view : undefined;
    });
    assert.equal(decided.state, 'decided');
    assert.equal(decided.outcome, 'committed');
    assert.equal(decided.branches.find((b) => b.participant === flaky)?.acknowledged, false);
    assert.deepEqual(
      cluster.calls.get(flaky)?.map((c) => c.hook),
      ['prepare'],
      'the first incarnation never saw the decision',
    );

    // The second incarnation recovers the transaction in doubt from its log, before it connects.
    const { participant: again, calls } = await cluster.participant(flaky, 'yes', {}, { ready: false });
    assert.deepEqual(
      again.inDoubt().map((t) => [t.txId, Buffer.from(t.payload).toString('utf8')]),
      [[txId, 'in doubt']],
    );
    await again.ready();
    await waitFor('flaky to apply the commit', () => calls.some((c) => c.hook === 'commit'));
    await waitFor('the transaction to end at the coordinator', () => cluster.coordinator.describe(txId) === undefined);

    assert.deepEqual(calls, [
      { hook: 'prepare', txId, payload: 'in doubt' },
      { hook: 'commit', txId },
    ]);
    assert.deepEqual(again.inDoubt(), []);
    const view = await cluster.client.get(txId);
    assert.equal(view.state, 'ended');
    assert.equal(view.outcome, 'committed');
    assert.ok(view.branches.every((b) => b.acknowledged));
    assert.deepEqual(
      cluster.calls.get(holder)?.map((c) => c.hook),
      ['prepare', 'commit'],
    );
  });

  it('delivers the abort to a participant that restarts after voting YES when another refused', async () => {
    const [holder, flaky] = [uniqueName('refuser'), uniqueName('flaky-abort')];
    const gate = new Gate();
    const { txId, outcome } = await yesThenGone(holder, { vote: 'no', reason: 'changed my mind' }, flaky, gate);
    gate.open();
    assert.equal(await outcome, ErrorCode.TX_ABORTED);

    const { participant: again, calls } = await cluster.participant(flaky);
    await waitFor('flaky to apply the abort', () => calls.some((c) => c.hook === 'abort'));
    await waitFor('the transaction to end', () => cluster.coordinator.describe(txId) === undefined);
    assert.deepEqual(
      calls.map((c) => c.hook),
      ['prepare', 'abort'],
    );
    assert.deepEqual(again.inDoubt(), []);
  });
});
