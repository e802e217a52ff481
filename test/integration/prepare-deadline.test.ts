// A participant that does not vote in time: the coordinator aborts the transaction at its
// deadline (it never waits for a vote forever), and the slow participant's prepare hook sees its
// signal abort at the same deadline so it can stop working.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { ErrorCode, TransactionAbortedError } from '../../src/errors.js';
import type { ParticipantHooks } from '../../src/participant/index.js';
import { TestCluster, uniqueName, waitFor, type HookCall } from '../support/cluster.js';

const TIMEOUT_MS = 300;

/** A prepare hook that never answers by itself: it rejects only when its signal aborts. */
function stuckHooks(calls: HookCall[], seen: { aborted?: unknown; deadline?: number }): ParticipantHooks {
  return {
    prepare: (txId, payload, { signal, deadline }) => {
      calls.push({ hook: 'prepare', txId, payload: Buffer.from(payload).toString('utf8') });
      seen.deadline = deadline;
      return new Promise((_, reject) => {
        signal.addEventListener('abort', () => {
          seen.aborted = signal.reason;
          reject(signal.reason);
        });
      });
    },
    commit: (txId) => void calls.push({ hook: 'commit', txId }),
    abort: (txId) => void calls.push({ hook: 'abort', txId }),
  };
}

describe('prepare deadline', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start();
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('aborts at the deadline when a participant never votes, and says so in the reason', async () => {
    const [fast, slow] = [uniqueName('prompt'), uniqueName('stuck')];
    const seen: { aborted?: unknown; deadline?: number } = {};
    await cluster.participant(fast);
    await cluster.participant(slow, 'yes', { hooks: stuckHooks(cluster.callsOf(slow), seen) });

    const startedAt = Date.now();
    const error = await cluster.client.transact([{ participant: fast }, { participant: slow }], { timeoutMs: TIMEOUT_MS }).then(
      () => assert.fail('the transaction committed without a vote from the stuck participant'),
      (e: unknown) => e,
    );
    const elapsed = Date.now() - startedAt;

    assert.ok(error instanceof TransactionAbortedError, `expected TransactionAbortedError, got ${String(error)}`);
    assert.equal(error.code, ErrorCode.TX_ABORTED);
    assert.match(error.reason ?? '', new RegExp(`prepare deadline exceeded waiting for ${slow}`));
    assert.doesNotMatch(error.reason ?? '', new RegExp(fast), 'the participant that voted is not blamed');
    assert.ok(elapsed >= TIMEOUT_MS - 20, `aborted after ${elapsed} ms, before the ${TIMEOUT_MS} ms deadline`);
    assert.ok(elapsed < TIMEOUT_MS + 2_000, `aborted only after ${elapsed} ms`);

    const txId = error.txId ?? '';
    // The prepare hook got the transaction's deadline and saw its signal abort.
    const deadline = seen.deadline ?? 0;
    assert.ok(deadline >= startedAt + TIMEOUT_MS && deadline <= Date.now(), `deadline ${deadline - startedAt} ms after the start`);
    await waitFor('the stuck prepare hook to see its signal abort', () => seen.aborted !== undefined);
    await waitFor('both participants to abort', () =>
      [fast, slow].every((n) => cluster.calls.get(n)?.some((c) => c.hook === 'abort' && c.txId === txId)),
    );
    assert.deepEqual(
      cluster.calls.get(fast)?.map((c) => c.hook),
      ['prepare', 'abort'],
    );
    assert.deepEqual(
      cluster.calls.get(slow)?.map((c) => c.hook),
      ['prepare', 'abort'],
    );

    const view = await waitFor('the transaction to end', async () => {
      const v = await cluster.client.get(txId);
      return v.state === 'ended' ? v : undefined;
    });
    assert.equal(view.outcome, 'aborted');
    assert.match(view.reason ?? '', /prepare deadline exceeded/);
  });

  it('lets a transaction commit when the slowest vote still arrives before the deadline', async () => {
    const [a, b] = [uniqueName('quick'), uniqueName('unhurried')];
    await cluster.participant(a);
    await cluster.participant(b, async (txId) => {
      await waitFor('a to vote', () => cluster.coordinator.describe(txId)?.branches.some((x) => x.vote === 'yes'));
      return 'yes' as const;
    });
    const { outcome } = await cluster.client.transact([{ participant: a }, { participant: b }], { timeoutMs: 5_000 });
    assert.equal(outcome, 'committed');
  });
});
