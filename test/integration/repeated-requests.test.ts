// Initiator requests repeated after the outcome: a decision never changes and a transaction
// never runs twice. Commit on a committed transaction answers committed again without re-running
// a hook; Abort on it is refused with WRONG_STATE; Commit on an aborted one answers TX_ABORTED
// with the original reason, both while the outcome is being delivered and after it ended.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { ErrorCode, TransactionAbortedError } from '../../src/errors.js';
import type { ParticipantHooks } from '../../src/participant/index.js';
import { Gate, recordingHooks, TestCluster, uniqueName, waitFor, type HookCall } from '../support/cluster.js';
import { rejection } from '../support/rejection.js';

const hooksOf = (calls: readonly HookCall[] | undefined): string[] => (calls ?? []).map((c) => c.hook);

/** Recording hooks whose commit waits at `gate`: the transaction stays decided but not ended. */
function heldCommit(calls: HookCall[], gate: Gate): ParticipantHooks {
  const rec = recordingHooks('yes', calls).hooks;
  return {
    ...rec,
    commit: async (txId, ctx) => {
      await rec.commit(txId, ctx);
      await gate.wait(ctx.signal);
    },
  };
}

describe('repeated requests after the outcome', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start();
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('answers a repeated Commit on a committed transaction with committed, never running a hook again', async () => {
    const [a, b] = [uniqueName('once-a'), uniqueName('once-b')];
    const gate = new Gate();
    await cluster.participant(a);
    await cluster.participant(b, 'yes', { hooks: heldCommit(cluster.callsOf(b), gate) });

    const { txId } = await cluster.client.transact([{ participant: a }, { participant: b }]);
    assert.equal(cluster.coordinator.describe(txId)?.state, 'decided');
    // While the outcome is still being delivered.
    assert.equal((await cluster.client.commit(txId)).outcome, 'committed');
    assert.equal((await cluster.client.commit(txId, [{ participant: a }, { participant: b }])).outcome, 'committed');

    gate.open();
    assert.equal((await cluster.client.commit(txId, [], { waitForCompletion: true })).outcome, 'committed');
    assert.equal(cluster.coordinator.describe(txId), undefined);
    // After it ended, from the log.
    assert.equal((await cluster.client.commit(txId)).outcome, 'committed');
    assert.equal((await cluster.client.commit(txId, [], { waitForCompletion: true })).outcome, 'committed');

    assert.deepEqual(hooksOf(cluster.calls.get(a)), ['prepare', 'commit']);
    assert.deepEqual(hooksOf(cluster.calls.get(b)), ['prepare', 'commit']);
  });

  it('joins a Commit repeated while the first is still preparing: one prepare, one commit', async () => {
    const [a, b] = [uniqueName('join-a'), uniqueName('join-b')];
    const gate = new Gate();
    await cluster.participant(a, async () => {
      await gate.wait();
      return 'yes' as const;
    });
    await cluster.participant(b);
    const { txId } = await cluster.client.begin({ timeoutMs: 10_000 });
    const branches = [{ participant: a }, { participant: b }];

    const first = cluster.client.commit(txId, branches);
    await waitFor('a to be asked to prepare', () => cluster.calls.get(a)?.length === 1);
    const second = cluster.client.commit(txId, branches);
    // A later request on the same connection: the repeated Commit has reached the coordinator.
    assert.equal((await cluster.client.get(txId)).state, 'preparing');
    gate.open();

    assert.deepEqual(
      (await Promise.all([first, second])).map((r) => r.outcome),
      ['committed', 'committed'],
    );
    await waitFor('the transaction to end', () => cluster.coordinator.describe(txId) === undefined);
    assert.deepEqual(hooksOf(cluster.calls.get(a)), ['prepare', 'commit']);
    assert.deepEqual(hooksOf(cluster.calls.get(b)), ['prepare', 'commit']);
  });

  it('refuses to abort a committed transaction with WRONG_STATE, and the outcome stays committed', async () => {
    const [a, b] = [uniqueName('kept-a'), uniqueName('kept-b')];
    const gate = new Gate();
    await cluster.participant(a);
    await cluster.participant(b, 'yes', { hooks: heldCommit(cluster.callsOf(b), gate) });
    const { txId } = await cluster.client.transact([{ participant: a }, { participant: b }]);

    const live = await rejection(cluster.client.abort(txId, 'too late'));
    assert.equal(live.code, ErrorCode.WRONG_STATE);
    assert.equal(live.txId, txId);
    assert.equal(live.retryable, false);

    gate.open();
    await waitFor('the transaction to end', () => cluster.coordinator.describe(txId) === undefined);
    assert.equal((await rejection(cluster.client.abort(txId))).code, ErrorCode.WRONG_STATE);

    const view = await cluster.client.get(txId);
    assert.equal(view.outcome, 'committed');
    assert.deepEqual(hooksOf(cluster.calls.get(a)), ['prepare', 'commit']);
    assert.deepEqual(hooksOf(cluster.calls.get(b)), ['prepare', 'commit']);
  });

  it('answers Commit on an aborted transaction with TX_ABORTED and the original reason', async () => {
    const [a, b] = [uniqueName('willing'), uniqueName('unwilling')];
    await cluster.participant(a);
    await cluster.participant(b, { vote: 'no', reason: 'account frozen' });

    const first = await rejection(cluster.client.transact([{ participant: a }, { participant: b }]));
    assert.ok(first instanceof TransactionAbortedError);
    const txId = first.txId ?? '';
    const reason = `participant ${b} voted NO: account frozen`;
    assert.equal(first.reason, reason);

    const again = await rejection(cluster.client.commit(txId));
    assert.equal(again.code, ErrorCode.TX_ABORTED);
    assert.equal(again.reason, reason);
    // Aborting it again is harmless.
    await cluster.client.abort(txId);

    await waitFor('the transaction to end', () => cluster.coordinator.describe(txId) === undefined);
    const logged = await rejection(cluster.client.commit(txId, [], { waitForCompletion: true }));
    assert.equal(logged.code, ErrorCode.TX_ABORTED);
    assert.equal(logged.reason, reason, 'the END summary keeps the reason');
    assert.ok(!cluster.calls.get(a)?.some((c) => c.hook === 'commit'));
  });

  it('answers Commit after an initiator Abort with TX_ABORTED carrying the initiator reason', async () => {
    const name = uniqueName('abandoned');
    const { participant, calls } = await cluster.participant(name);
    const begun = await cluster.client.begin({ timeoutMs: 10_000 });
    const { txId } = begun;
    await participant.enlist(begun);

    await cluster.client.abort(txId, 'changed plans');
    await cluster.client.abort(txId, 'changed plans');
    const error = await rejection(cluster.client.commit(txId));
    assert.equal(error.code, ErrorCode.TX_ABORTED);
    assert.equal(error.reason, 'aborted by the initiator: changed plans');
    const view = await cluster.client.get(txId);
    assert.equal(view.outcome, 'aborted');
    assert.equal(view.reason, 'aborted by the initiator: changed plans');
    // The enlisted participant is told once (two Abort calls, one abort hook) and never prepared.
    await waitFor('the enlisted participant to learn the abort', () => calls.length > 0);
    assert.deepEqual(calls, [{ hook: 'abort', txId }]);
  });
});
