// Coordinator restart on the same data directory (and the same port, so that running participants
// reconnect by themselves): the epoch goes up, every durable COMMIT without END is re-driven to
// the participants that still owe an ack, and a transaction that never got a COMMIT record is
// aborted for good (presumed abort), whoever asks.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { CoordinatorOptions } from '../../src/coordinator/index.js';
import { ErrorCode, TransactionAbortedError, VerdictError } from '../../src/errors.js';
import { parseTxId } from '../../src/protocol/ids.js';
import { freePort, Gate, TestCluster, uniqueName, waitFor } from '../support/cluster.js';

describe('coordinator restart', () => {
  let cluster: TestCluster;
  let options: Partial<CoordinatorOptions>;

  beforeEach(async () => {
    options = { listen: `127.0.0.1:${await freePort()}`, protocol: { retryInitialMs: 20, retryMaxMs: 200 } };
    cluster = await TestCluster.start(options);
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('re-drives a durable commit after a restart, and delivers it to a participant that was away', async () => {
    const [holder, flaky] = [uniqueName('steady'), uniqueName('away')];
    const gate = new Gate();
    const { participant: steady } = await cluster.participant(holder, async () => {
      await gate.wait();
      return 'yes' as const;
    });
    const first = await cluster.participant(flaky);
    const commit = cluster.client.transact([{ participant: holder }, { participant: flaky, payload: 'p' }], { timeoutMs: 10_000 });
    const txId = (await waitFor('flaky to be in doubt', () => first.participant.inDoubt()[0])).txId;
    await waitFor('the YES of flaky to arrive', () =>
      cluster.coordinator.describe(txId)?.branches.some((b) => b.participant === flaky && b.vote === 'yes'),
    );
    await first.participant.close();
    gate.open();
    assert.equal((await commit).outcome, 'committed');
    await waitFor('steady to acknowledge', () => cluster.coordinator.describe(txId)?.branches.find((b) => b.participant === holder)?.acknowledged);

    const oldEpoch = cluster.coordinator.epoch;
    await cluster.coordinator.close();
    const coordinator = await cluster.startCoordinator(options);
    assert.equal(coordinator.epoch, oldEpoch + 1);

    // Recovered from the log: decided, committed, still owed an ack by flaky.
    const recovered = coordinator.describe(txId);
    assert.equal(recovered?.state, 'decided');
    assert.equal(recovered?.outcome, 'committed');
    assert.equal(recovered?.branches.find((b) => b.participant === flaky)?.acknowledged, false);

    // steady reconnects by itself; flaky comes back from its log.
    await waitFor('steady to reconnect to the new coordinator', () => steady.coordinatorEpoch === coordinator.epoch);
    const { participant: again, calls } = await cluster.participant(flaky);
    await waitFor('the transaction to end at the new coordinator', () => coordinator.describe(txId) === undefined);

    assert.deepEqual(calls, [
      { hook: 'prepare', txId, payload: 'p' },
      { hook: 'commit', txId },
    ]);
    assert.deepEqual(again.inDoubt(), []);
    // steady had applied the commit before the restart: the re-sent decision is absorbed.
    assert.deepEqual(
      cluster.calls.get(holder)?.map((c) => c.hook),
      ['prepare', 'commit'],
    );

    const view = await cluster.client.get(txId);
    assert.equal(view.state, 'ended');
    assert.equal(view.outcome, 'committed');
    assert.equal(view.presumed, false);
    assert.deepEqual((await cluster.client.commit(txId)).outcome, 'committed', 'a retried Commit reads the logged outcome');

    // New ids carry the new epoch; an old-epoch id this log never decided reads as a presumed abort.
    const { txId: fresh } = await cluster.client.begin({ timeoutMs: 1_000 });
    assert.equal(parseTxId(fresh)?.epoch, coordinator.epoch);
    const unknown = await cluster.client.get(`tx-${oldEpoch}-999`);
    assert.equal(unknown.state, 'ended');
    assert.equal(unknown.outcome, 'aborted');
    assert.equal(unknown.presumed, true);
  });

  it('aborts, after a restart, a transaction that was still collecting votes when the coordinator stopped', async () => {
    const [slow, prepared] = [uniqueName('undecided'), uniqueName('prepared')];
    const gate = new Gate();
    await cluster.participant(slow, 'yes', {
      hooks: {
        prepare: async (txId, _payload, { signal }) => {
          cluster.callsOf(slow).push({ hook: 'prepare', txId });
          await gate.wait(signal);
          return 'yes' as const;
        },
        commit: (txId) => void cluster.callsOf(slow).push({ hook: 'commit', txId }),
        abort: (txId) => void cluster.callsOf(slow).push({ hook: 'abort', txId }),
      },
    });
    const { participant, calls } = await cluster.participant(prepared);
    const commit = cluster.client.transact([{ participant: slow }, { participant: prepared }], { timeoutMs: 10_000 }).then(
      () => assert.fail('committed without the vote of the slow participant'),
      (e: unknown) => e,
    );
    const txId = (await waitFor('prepared to be in doubt', () => participant.inDoubt()[0])).txId;

    await cluster.coordinator.close();
    // The initiator cannot know the outcome: it is told to retry, never that the tx aborted.
    const error = await commit;
    assert.ok(error instanceof VerdictError, `expected a VerdictError, got ${String(error)}`);
    assert.ok(error.retryable, `expected a retryable error, got ${error.code}`);
    assert.notEqual(error.code, ErrorCode.TX_ABORTED);
    // A participant never decides on its own: it keeps the transaction in doubt meanwhile.
    assert.deepEqual(
      participant.inDoubt().map((t) => t.txId),
      [txId],
    );

    const coordinator = await cluster.startCoordinator(options);
    await waitFor('prepared to learn the presumed abort', () => calls.some((c) => c.hook === 'abort'));
    assert.deepEqual(
      calls.map((c) => c.hook),
      ['prepare', 'abort'],
    );
    assert.deepEqual(participant.inDoubt(), []);
    assert.equal(participant.coordinatorEpoch, coordinator.epoch);

    // Whoever asks later gets the same answer.
    await assert.rejects(cluster.client.commit(txId), (e: unknown) => {
      assert.ok(e instanceof TransactionAbortedError);
      assert.match(e.reason ?? '', /presumed abort/);
      return true;
    });
    const view = await cluster.client.get(txId);
    assert.equal(view.outcome, 'aborted');
    assert.equal(view.presumed, true);
    gate.open();
  });

  it('resolves a one-phase commit after a restart by asking its participant, never presuming abort', async () => {
    const name = uniqueName('sole');
    const gate = new Gate();
    const { participant, calls } = await cluster.participant(name, async () => {
      await gate.wait();
      return 'yes' as const;
    });
    const commit = cluster.client.transact([{ participant: name }], { timeoutMs: 10_000 }).then(
      () => 'answered',
      (e: unknown) => e,
    );
    await waitFor('the participant to be asked to prepare', () => calls.length === 1);
    const txId = calls[0]?.txId ?? '';

    // The coordinator stops after handing over the decision; the participant commits on its own
    // while no session is up, so the coordinator never hears its answer.
    await cluster.coordinator.close();
    const error = await commit;
    assert.ok(error instanceof VerdictError && error.retryable, `expected a retryable error, got ${String(error)}`);
    const finished = new Promise((resolve) => participant.once('finished', (_id, outcome) => resolve(outcome)));
    gate.open();
    assert.equal(await finished, 'committed');

    const coordinator = await cluster.startCoordinator(options);
    // Only the participant knows: the recovered transaction is in doubt, not presumed aborted.
    assert.equal(coordinator.describe(txId)?.state, 'in-doubt');
    await waitFor('the coordinator to learn the outcome from the participant', () => coordinator.describe(txId) === undefined);

    const view = await cluster.client.get(txId);
    assert.equal(view.state, 'ended');
    assert.equal(view.outcome, 'committed');
    assert.equal(view.presumed, false);
    assert.equal((await cluster.client.commit(txId)).outcome, 'committed');
    assert.deepEqual(
      calls.map((c) => c.hook),
      ['prepare', 'commit'],
    );
  });
});
