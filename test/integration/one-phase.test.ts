// One-phase commit: a transaction with a single branch hands the decision to that participant,
// which prepares and commits in one step. Its prepare hook is told so; a NO aborts as usual.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { ErrorCode, TransactionAbortedError } from '../../src/errors.js';
import type { ParticipantHooks } from '../../src/participant/index.js';
import { recordingHooks, TestCluster, uniqueName, waitFor, type HookCall } from '../support/cluster.js';

/** Recording hooks that remember whether prepare ran in one phase and stage a write per step. */
function onePhaseHooks(calls: HookCall[], onePhaseSeen: boolean[], vote: 'yes' | 'no'): ParticipantHooks {
  const rec = recordingHooks(vote === 'no' ? { vote: 'no', reason: 'out of stock' } : 'yes', calls).hooks;
  return {
    prepare: (txId, payload, ctx) => {
      onePhaseSeen.push(ctx.onePhase);
      ctx.batch.put(`reserved/${txId}`, true);
      return rec.prepare(txId, payload, ctx);
    },
    commit: (txId, ctx) => {
      ctx.batch.put(`sold/${txId}`, true);
      return rec.commit(txId, ctx);
    },
    abort: (txId, ctx) => rec.abort(txId, ctx),
  };
}

describe('one-phase commit', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start();
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('commits a single branch with one prepare and one commit, logged before it is handed over', async () => {
    const name = uniqueName('solo');
    const onePhase: boolean[] = [];
    const { participant, calls } = await cluster.participant(name, 'yes', { hooks: onePhaseHooks(cluster.callsOf(name), onePhase, 'yes') });
    const syncedBefore = cluster.coordinator.stats.log.syncedBatches;

    const { txId, outcome } = await cluster.client.transact([{ participant: name, payload: 'one' }], { waitForCompletion: true });
    assert.equal(outcome, 'committed');
    assert.deepEqual(calls, [
      { hook: 'prepare', txId, payload: 'one' },
      { hook: 'commit', txId },
    ]);
    assert.deepEqual(onePhase, [true]);
    // The coordinator forced its ONE_PHASE record: after a crash it asks, never presumes abort.
    assert.ok(cluster.coordinator.stats.log.syncedBatches > syncedBefore, 'the ONE_PHASE record was not forced');
    assert.equal(await participant.store.get(`reserved/${txId}`), true);
    assert.equal(await participant.store.get(`sold/${txId}`), true);
    assert.deepEqual(participant.inDoubt(), []);

    const view = await cluster.client.get(txId);
    assert.equal(view.state, 'ended');
    assert.equal(view.outcome, 'committed');
    assert.deepEqual(
      view.branches.map((b) => [b.participant, b.acknowledged]),
      [[name, true]],
    );
  });

  it('aborts a single branch that votes NO with TX_ABORTED, running its abort hook once', async () => {
    const name = uniqueName('solo-no');
    const onePhase: boolean[] = [];
    const { participant, calls } = await cluster.participant(name, 'yes', { hooks: onePhaseHooks(cluster.callsOf(name), onePhase, 'no') });

    const error = await cluster.client.transact([{ participant: name }]).then(
      () => assert.fail('a NO vote committed'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof TransactionAbortedError, `expected TransactionAbortedError, got ${String(error)}`);
    assert.equal(error.code, ErrorCode.TX_ABORTED);
    assert.match(error.reason ?? '', new RegExp(`participant ${name} aborted the one-phase commit: out of stock`));
    const txId = error.txId ?? '';
    assert.deepEqual(calls, [
      { hook: 'prepare', txId, payload: '' },
      { hook: 'abort', txId },
    ]);
    assert.deepEqual(onePhase, [true]);
    // What a refused prepare staged is dropped.
    assert.equal(await participant.store.get(`reserved/${txId}`), undefined);

    const view = await waitFor('the transaction to end', async () => {
      const v = await cluster.client.get(txId);
      return v.state === 'ended' ? v : undefined;
    });
    assert.equal(view.outcome, 'aborted');
    assert.equal(view.presumed, false);
  });
});
