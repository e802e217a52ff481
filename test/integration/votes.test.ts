// Votes decide: one NO (or a prepare hook that throws) aborts the transaction for everyone. The
// initiator gets TX_ABORTED naming the refusing participant; YES voters are told to abort exactly
// once; the NO voter ran its own abort already; no commit hook runs anywhere.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { ErrorCode, TransactionAbortedError } from '../../src/errors.js';
import { TestCluster, uniqueName, waitFor, type HookCall } from '../support/cluster.js';

const hooksOf = (calls: readonly HookCall[] | undefined): string[] => (calls ?? []).map((c) => c.hook);

describe('votes', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start();
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('aborts on a NO vote: TX_ABORTED naming the voter, abort once at every YES voter, no commit', async () => {
    const [a, b, c] = [uniqueName('yes-a'), uniqueName('refuser'), uniqueName('yes-c')];
    await cluster.participant(a);
    await cluster.participant(c);
    let txId = '';
    // b answers only once a and c voted YES, so that both are prepared when the abort comes.
    await cluster.participant(b, async (id) => {
      txId = id;
      await waitFor('a and c to vote YES', () => cluster.coordinator.describe(id)?.branches.filter((x) => x.vote === 'yes').length === 2);
      return { vote: 'no', reason: 'insufficient funds' };
    });

    await assert.rejects(
      cluster.client.transact([{ participant: a }, { participant: b }, { participant: c }]),
      (e: unknown) => {
        assert.ok(e instanceof TransactionAbortedError, `expected TransactionAbortedError, got ${String(e)}`);
        assert.equal(e.code, ErrorCode.TX_ABORTED);
        assert.equal(e.retryable, false);
        assert.equal(e.txId, txId);
        assert.match(e.reason ?? '', new RegExp(`participant ${b} voted NO: insufficient funds`));
        return true;
      },
    );

    // The abort is final once both YES voters acknowledged it: nothing more is delivered after.
    await waitFor('the aborted transaction to end', async () => (await cluster.client.get(txId)).state === 'ended');
    const view = await cluster.client.get(txId);
    assert.equal(view.outcome, 'aborted');
    assert.equal(view.presumed, false);
    assert.match(view.reason ?? '', new RegExp(`${b} voted NO`));

    assert.deepEqual(hooksOf(cluster.calls.get(a)), ['prepare', 'abort']);
    assert.deepEqual(hooksOf(cluster.calls.get(c)), ['prepare', 'abort']);
    assert.deepEqual(hooksOf(cluster.calls.get(b)), ['prepare', 'abort']);
    for (const name of [a, b, c]) assert.deepEqual(cluster.participants.get(name)?.inDoubt(), []);
  });

  it('counts a prepare hook that throws as a NO, with the error in the reason', async () => {
    const [a, b] = [uniqueName('steady'), uniqueName('thrower')];
    await cluster.participant(a);
    await cluster.participant(b, () => {
      throw new Error('disk full');
    });

    const aborted = await cluster.client.transact([{ participant: a }, { participant: b }]).then(
      () => assert.fail('the transaction committed'),
      (e: unknown) => e,
    );
    assert.ok(aborted instanceof TransactionAbortedError);
    assert.match(aborted.reason ?? '', new RegExp(`participant ${b} voted NO: prepare hook failed: disk full`));
    // Both learn the abort (a possibly before it voted); only then is "no commit" final.
    await waitFor('a and b to run their abort hooks', () => [a, b].every((n) => cluster.calls.get(n)?.some((x) => x.hook === 'abort')));
    assert.ok(!cluster.calls.get(a)?.some((x) => x.hook === 'commit'), 'a committed an aborted transaction');
    assert.ok(!cluster.calls.get(b)?.some((x) => x.hook === 'commit'), 'b committed an aborted transaction');
  });

  it('counts an answer that is not a vote as a NO', async () => {
    const [a, b] = [uniqueName('plain'), uniqueName('garbled')];
    await cluster.participant(a);
    await cluster.participant(b, () => 'maybe' as never);

    await assert.rejects(cluster.client.transact([{ participant: a }, { participant: b }]), (e: unknown) => {
      assert.ok(e instanceof TransactionAbortedError);
      assert.match(e.reason ?? '', /which is not a vote/);
      return true;
    });
  });
});
