// Interactive transactions: Begin hands out an id and a deadline, services enlist their
// participant with a payload while the transaction is active, and Commit adds any further
// branches. Enlisting is over once Commit started; a transaction never committed aborts at its
// deadline.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { ErrorCode, TransactionAbortedError, VerdictError } from '../../src/errors.js';
import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');

/** The error code a promise rejects with (fails the test when it resolves). */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  const e = await promise.then(
    () => assert.fail('expected a rejection'),
    (x: unknown) => x,
  );
  assert.ok(e instanceof VerdictError, `expected a VerdictError, got ${String(e)}`);
  return e.code;
}

describe('interactive transactions', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start();
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('prepares enlisted participants with their payloads alongside the branches named at Commit', async () => {
    const [enlisted, named] = [uniqueName('enlisted'), uniqueName('named')];
    const pe = await cluster.participant(enlisted);
    const pn = await cluster.participant(named);

    const begun = await cluster.client.begin({ timeoutMs: 10_000 });
    assert.ok(begun.deadline > Date.now(), 'the deadline is an absolute time in the future');
    await pe.participant.enlist(begun, bytes('work of enlisted'));
    const active = cluster.coordinator.describe(begun.txId);
    assert.equal(active?.state, 'active');
    assert.deepEqual(
      active?.branches.map((b) => b.participant),
      [enlisted],
    );
    assert.deepEqual(pe.calls, [], 'nothing is prepared before Commit');

    const result = await cluster.client.commit(begun.txId, [{ participant: named, payload: 'work of named' }], { waitForCompletion: true });
    assert.equal(result.txId, begun.txId);
    assert.deepEqual(pe.calls, [
      { hook: 'prepare', txId: begun.txId, payload: 'work of enlisted' },
      { hook: 'commit', txId: begun.txId },
    ]);
    assert.deepEqual(pn.calls, [
      { hook: 'prepare', txId: begun.txId, payload: 'work of named' },
      { hook: 'commit', txId: begun.txId },
    ]);
    const view = await cluster.client.get(begun.txId);
    assert.equal(view.outcome, 'committed');
    assert.deepEqual(view.branches.map((b) => b.participant).sort(), [enlisted, named].sort());
  });

  it('refuses to enlist once Commit started (WRONG_STATE), and in an id never issued (PERMISSION_DENIED: no capability)', async () => {
    const [a, b, late] = [uniqueName('first'), uniqueName('second'), uniqueName('latecomer')];
    const pa = await cluster.participant(a);
    await cluster.participant(b);
    const pl = await cluster.participant(late);

    const begun = await cluster.client.begin({ timeoutMs: 10_000 });
    const { txId } = begun;
    await pa.participant.enlist(begun);
    await cluster.client.commit(txId, [{ participant: b }]);

    assert.equal(await codeOf(pl.participant.enlist(begun)), ErrorCode.WRONG_STATE);
    assert.equal(await codeOf(pa.participant.enlist(begun, bytes('again'))), ErrorCode.WRONG_STATE);
    // Also once the transaction ended and only the log remembers it.
    await waitFor('the transaction to end', () => cluster.coordinator.describe(txId) === undefined);
    assert.equal(await codeOf(pl.participant.enlist(begun)), ErrorCode.WRONG_STATE);
    assert.deepEqual(pl.calls, [], 'the refused participant took no part');

    // An id never issued has no capability: the session hub refuses before the protocol looks.
    const epoch = cluster.coordinator.epoch;
    assert.equal(await codeOf(pl.participant.enlist({ txId: `tx-${epoch}-999999`, capability: begun.capability })), ErrorCode.PERMISSION_DENIED);
    assert.equal(await codeOf(pl.participant.enlist({ txId: 'not-a-tx', capability: '' })), ErrorCode.INVALID_ARGUMENT);
  });

  it('aborts a begun transaction whose deadline passes before Commit', async () => {
    const name = uniqueName('idle');
    const { participant, calls } = await cluster.participant(name);
    const decided = new Promise<[string, string, string | undefined]>((resolve) => {
      cluster.coordinator.on('decided', (txId, outcome, reason) => resolve([txId, outcome, reason]));
    });

    const begun = await cluster.client.begin({ timeoutMs: 300 });
    const { txId } = begun;
    await participant.enlist(begun, bytes('never prepared'));
    const [decidedId, outcome, reason] = await decided;
    assert.equal(decidedId, txId);
    assert.equal(outcome, 'aborted');
    assert.match(reason ?? '', /deadline before Commit/);

    await assert.rejects(cluster.client.commit(txId), (e: unknown) => {
      assert.ok(e instanceof TransactionAbortedError);
      assert.equal(e.code, ErrorCode.TX_ABORTED);
      assert.match(e.reason ?? '', /passed its deadline before Commit/);
      return true;
    });
    assert.equal(await codeOf(participant.enlist(begun)), ErrorCode.WRONG_STATE);
    const view = await cluster.client.get(txId);
    assert.equal(view.outcome, 'aborted');
    assert.equal(view.presumed, false);
    // Nobody is prepared, but the enlisted participant learns the abort so it can release its work.
    await waitFor('the enlisted participant to learn the abort', () => calls.length > 0);
    assert.deepEqual(calls, [{ hook: 'abort', txId }], 'a transaction aborted before Commit prepares nobody and aborts the enlisted');
  });
});
