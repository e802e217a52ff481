// The commit path end to end over real gRPC and LevelDB: every hook runs once, the staged writes
// land in each participant's store with its outcome, and the initiator's answer comes when the
// decision is durable, or with `waitForCompletion` only once every participant acknowledged.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { ParticipantHooks } from '../../src/participant/index.js';
import { Gate, recordingHooks, TestCluster, uniqueName, waitFor, type HookCall } from '../support/cluster.js';

/** Recording hooks that also stage writes: a hold at prepare, released into `applied/` at commit. */
function storeHooks(name: string, calls: HookCall[], commitGate?: Gate): ParticipantHooks {
  const rec = recordingHooks('yes', calls).hooks;
  return {
    prepare: (txId, payload, ctx) => {
      ctx.batch.put(`hold/${txId}`, Buffer.from(payload).toString('utf8'));
      return rec.prepare(txId, payload, ctx);
    },
    commit: async (txId, ctx) => {
      await rec.commit(txId, ctx);
      await commitGate?.wait(ctx.signal);
      ctx.batch.del(`hold/${txId}`);
      ctx.batch.put(`applied/${txId}`, name);
    },
    abort: (txId, ctx) => {
      ctx.batch.del(`hold/${txId}`);
      return rec.abort(txId, ctx);
    },
  };
}

describe('commit with three participants', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start();
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('runs prepare and commit once at each participant and applies their staged writes', async () => {
    const names = [uniqueName('alpha'), uniqueName('beta'), uniqueName('gamma')];
    const started = [];
    for (const name of names) {
      const { participant, calls } = await cluster.participant(name, 'yes', { hooks: storeHooks(name, cluster.callsOf(name)) });
      started.push({ name, participant, calls });
    }

    const result = await cluster.client.transact(
      names.map((participant) => ({ participant, payload: `payload of ${participant}` })),
      { waitForCompletion: true },
    );
    assert.equal(result.outcome, 'committed');
    const { txId } = result;

    for (const { name, participant, calls } of started) {
      assert.deepEqual(calls, [
        { hook: 'prepare', txId, payload: `payload of ${name}` },
        { hook: 'commit', txId },
      ]);
      assert.equal(await participant.store.get(`applied/${txId}`), name, `${name} applied its commit writes`);
      assert.equal(await participant.store.get(`hold/${txId}`), undefined, `${name} released its prepare hold`);
      assert.deepEqual(participant.inDoubt(), []);
    }

    // Every ack is in: the coordinator has forgotten the live transaction and answers from its log.
    assert.equal(cluster.coordinator.describe(txId), undefined);
    const view = await cluster.client.get(txId);
    assert.equal(view.state, 'ended');
    assert.equal(view.outcome, 'committed');
    assert.equal(view.presumed, false);
    assert.deepEqual(
      view.branches.map((b) => [b.participant, b.acknowledged]).sort(),
      names.map((n) => [n, true]).sort(),
    );
  });

  it('writes what prepare staged with PREPARED, and what commit staged with the outcome', async () => {
    const [a, b] = [uniqueName('hold-a'), uniqueName('hold-b')];
    const gate = new Gate();
    const callsA = cluster.callsOf(a);
    const pa = await cluster.participant(a, 'yes', { hooks: storeHooks(a, callsA, gate) });
    await cluster.participant(b);

    const { txId } = await cluster.client.transact([{ participant: a, payload: 'reserved' }, { participant: b }]);
    await waitFor('the commit hook of a to start', () => callsA.some((c) => c.hook === 'commit'));
    // PREPARED and the hold were written in one batch; the commit's writes wait for its record.
    assert.equal(await pa.participant.store.get(`hold/${txId}`), 'reserved');
    assert.equal(await pa.participant.store.get(`applied/${txId}`), undefined);

    gate.open();
    await waitFor('the commit writes of a', async () => (await pa.participant.store.get(`applied/${txId}`)) === a);
    assert.equal(await pa.participant.store.get(`hold/${txId}`), undefined);
  });

  it('answers waitForCompletion only after every participant acknowledged', async () => {
    const [a, b, c] = [uniqueName('ack-a'), uniqueName('ack-b'), uniqueName('ack-c')];
    const gate = new Gate();
    const callsC = cluster.callsOf(c);
    await cluster.participant(a);
    await cluster.participant(b);
    await cluster.participant(c, 'yes', { hooks: storeHooks(c, callsC, gate) });

    let settled = false;
    const commit = cluster.client.transact([{ participant: a }, { participant: b }, { participant: c }], { waitForCompletion: true });
    void commit.then(
      () => (settled = true),
      () => (settled = true),
    );

    await waitFor('the commit hook of c to start', () => callsC.some((x) => x.hook === 'commit'));
    const txId = callsC[0]?.txId ?? '';
    await waitFor('a and b to acknowledge', () => {
      const view = cluster.coordinator.describe(txId);
      return view?.branches.filter((x) => x.acknowledged).length === 2;
    });
    const view = cluster.coordinator.describe(txId);
    assert.equal(view?.state, 'decided');
    assert.equal(view?.outcome, 'committed');
    assert.deepEqual(
      view?.branches.map((x) => [x.participant, x.acknowledged]).sort(),
      [
        [a, true],
        [b, true],
        [c, false],
      ].sort(),
    );
    // A round trip on the same connection: an early answer would have arrived by now.
    const remote = await cluster.client.get(txId);
    assert.equal(remote.state, 'decided');
    assert.equal(settled, false, 'waitForCompletion answered before c acknowledged');

    gate.open();
    const result = await commit;
    assert.equal(result.txId, txId);
    assert.equal(cluster.coordinator.describe(txId), undefined, 'the transaction ended before the answer');
    const ended = await cluster.client.get(txId);
    assert.equal(ended.state, 'ended');
    assert.ok(ended.branches.every((x) => x.acknowledged));
  });

  it('answers without waitForCompletion as soon as the decision is durable', async () => {
    const [a, b] = [uniqueName('fast-a'), uniqueName('fast-b')];
    const gate = new Gate();
    const callsB = cluster.callsOf(b);
    await cluster.participant(a);
    await cluster.participant(b, 'yes', { hooks: storeHooks(b, callsB, gate) });

    const { txId } = await cluster.client.transact([{ participant: a }, { participant: b }]);
    // b cannot have acknowledged: its commit hook is held shut.
    assert.equal(gate.isOpen, false);
    const view = await cluster.client.get(txId);
    assert.equal(view.state, 'decided');
    assert.equal(view.outcome, 'committed');
    assert.equal(view.branches.find((x) => x.participant === b)?.acknowledged, false);

    gate.open();
    await waitFor('the transaction to end', async () => (await cluster.client.get(txId)).state === 'ended');
    assert.deepEqual(
      callsB.map((x) => x.hook),
      ['prepare', 'commit'],
    );
  });

  it('never reads a just-ended commit as a presumed abort, even under concurrent load', async () => {
    // Regression: the END summary is written lazily after the machine forgets the transaction;
    // a GetTransaction or a retried Commit racing that write used to answer "aborted, presumed".
    const [a, b] = [uniqueName('load-a'), uniqueName('load-b')];
    await cluster.participant(a);
    await cluster.participant(b);
    const wrong: string[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = 0; i < 15; i++) {
          const { txId } = await cluster.client.transact([{ participant: a }, { participant: b }], { waitForCompletion: true });
          const view = await cluster.client.get(txId);
          if (view.outcome !== 'committed') wrong.push(`${txId}: ${view.state} ${view.outcome ?? '-'} (${view.reason ?? ''})`);
        }
      }),
    );
    assert.deepEqual(wrong, []);
    assert.equal(cluster.calls.get(a)?.filter((c) => c.hook === 'commit').length, 300);
  });
});
