// Hostile input never stops a process or starves the others: each reproduction of issue 12 as a
// test. One bad call fails that call; one bad staged value fails that hook; a burst of large
// prepares is split into frames under the message limit instead of resetting the session; and a
// branch naming a participant that never registered aborts after a short grace, not the timeout.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';

import { VerdictClient } from '../../src/client/client.js';
import { toStatus } from '../../src/common/grpc-errors.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import type { ParticipantHooks } from '../../src/participant/index.js';
import { freePort, TestCluster, uniqueName, waitFor } from '../support/cluster.js';
import { expectStatus, metadataText, RawTransactions } from '../support/raw-grpc.js';

const HOSTILE_IDS = ['tx-1-1\u0000', 'tx-1-1\n', 'tx-1-1\r\nx-injected: 1', 'tx-1-\u007f', '\u0000'];

describe('hostile input', () => {
  let cluster: TestCluster;
  let raw: RawTransactions;

  before(async () => {
    cluster = await TestCluster.start({ protocol: { unregisteredGraceMs: 300 } });
    raw = new RawTransactions(cluster.coordinator.address);
  });

  after(async () => {
    raw?.close();
    await cluster?.close();
  });

  it('never puts an id with control characters into response metadata (grpc-js would throw while answering)', () => {
    for (const txId of HOSTILE_IDS) {
      const status = toStatus({ code: ErrorCode.INVALID_ARGUMENT, message: 'malformed', txId });
      assert.equal(status.code, Status.INVALID_ARGUMENT);
      assert.deepEqual(status.metadata?.get('verdict-tx-id'), [], `${JSON.stringify(txId)} reached the metadata`);
    }
    assert.deepEqual(toStatus({ code: ErrorCode.TX_ABORTED, message: 'x', txId: 'tx-1-2' }).metadata?.get('verdict-tx-id'), ['tx-1-2']);
  });

  it('answers Commit, Abort and GetTransaction with hostile ids INVALID_ARGUMENT, and keeps serving', async () => {
    const [a, b] = [uniqueName('alpha'), uniqueName('beta')];
    await cluster.participant(a);
    await cluster.participant(b);
    for (const txId of HOSTILE_IDS) {
      for (const call of [() => raw.commit({ txId, branches: [{ participant: a, payload: Buffer.from('x') }] }), () => raw.abort({ txId, reason: 'x' }), () => raw.get(txId)]) {
        const e = await expectStatus(call(), Status.INVALID_ARGUMENT, /tx id .* is malformed/);
        assert.equal(metadataText(e, 'verdict-code'), 'INVALID_ARGUMENT');
      }
    }
    assert.equal(cluster.coordinator.state, 'running');
    const { outcome } = await cluster.client.transact([{ participant: a }, { participant: b }]);
    assert.equal(outcome, 'committed');
  });

  it('fails only the hook that stages a value the store cannot take; the participant keeps serving', async () => {
    const name = uniqueName('stager');
    const other = uniqueName('other');
    let commits = 0;
    const errors: string[] = [];
    const hooks: ParticipantHooks = {
      prepare: (_txId, payload, { batch }) => {
        if (Buffer.from(payload).toString() === 'bad-prepare') batch.put('k', undefined);
        return 'yes';
      },
      commit: (txId, { batch }) => {
        // The first run stages null (cannot be stored): that run fails and is retried; the second is right.
        if (++commits === 1) batch.put(`balance/${txId}`, null);
        else batch.put(`balance/${txId}`, 1);
      },
      abort: () => undefined,
    };
    const { participant } = await cluster.participant(name, 'yes', { hooks, protocol: { hookRetryInitialMs: 10, hookRetryMaxMs: 50 } });
    await cluster.participant(other);
    participant.on('error', (e) => errors.push(e.message));

    const { txId, outcome } = await cluster.client.transact([{ participant: name }, { participant: other }], { waitForCompletion: true });
    assert.equal(outcome, 'committed');
    assert.equal(commits, 2, 'the commit hook must be retried once');
    assert.equal(await participant.store.get(`balance/${txId}`), 1);
    assert.equal(participant.state, 'connected');

    // In prepare, an unstorable value is a NO vote naming the key, never a stopped participant.
    const refused = await cluster.client.transact([{ participant: name, payload: 'bad-prepare' }, { participant: other }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(refused instanceof VerdictError && refused.code === ErrorCode.TX_ABORTED, `expected TX_ABORTED, got ${String(refused)}`);
    assert.match(refused.reason ?? refused.message, /cannot stage key k/);
    assert.equal(participant.state, 'connected');
    assert.deepEqual(errors, []);
  });

  it('splits the prepares re-sent on reconnect into frames under the message limit: no reset, every transaction commits', async () => {
    const name = uniqueName('big');
    const first = await cluster.participant(name);
    // Registered, then gone: the coordinator holds its prepares until it is back.
    await first.participant.close();
    const payload = 'p'.repeat(1024 * 1024 - 64);
    const pending = Array.from({ length: 5 }, () => cluster.client.transact([{ participant: name, payload }], { timeoutMs: 60_000 }));
    await waitFor('the five transactions to wait for their participant', () => cluster.coordinator.stats.live >= 5);
    // On reconnect the five 1 MiB prepares are re-sent in one turn: 5 MiB, over the 4 MiB limit as one frame.
    const { participant } = await cluster.participant(name);
    let disconnects = 0;
    participant.on('disconnected', () => disconnects++);
    const results = await Promise.all(pending);
    assert.deepEqual(
      results.map((r) => r.outcome),
      ['committed', 'committed', 'committed', 'committed', 'committed'],
    );
    assert.equal(disconnects, 0, 'the session was reset by an oversized frame');
  });

  it('answers a payload that is not bytes or a string with INVALID_ARGUMENT, before anything is sent', async () => {
    const before = cluster.coordinator.stats.live;
    const error = await cluster.client.transact([{ participant: 'alpha', payload: { debit: 5 } as unknown as string }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof VerdictError && error.code === ErrorCode.INVALID_ARGUMENT, `expected INVALID_ARGUMENT, got ${String(error)}`);
    assert.match(error.message, /payload of alpha's branch is an object: pass a string or a Uint8Array/);
    assert.equal(cluster.coordinator.stats.live, before);
  });

  it('answers UNAVAILABLE, not OUTCOME_UNKNOWN, when the call provably never reached a coordinator', async () => {
    const client = new VerdictClient(`127.0.0.1:${await freePort()}`, { callTimeoutMs: 5_000 });
    try {
      const error = await client.transact([{ participant: 'alpha' }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof VerdictError && error.code === ErrorCode.UNAVAILABLE, `expected UNAVAILABLE, got ${String(error)}`);
      assert.equal(error.retryable, true);
    } finally {
      client.close();
    }
  });

  it('aborts a branch naming a participant that never registered after the grace, not the whole timeout', async () => {
    const real = uniqueName('real');
    await cluster.participant(real);
    const started = Date.now();
    const error = await cluster.client.transact([{ participant: real }, { participant: 'inventroy' }], { timeoutMs: 60_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    assert.ok(error instanceof VerdictError && error.code === ErrorCode.TX_ABORTED, `expected TX_ABORTED, got ${String(error)}`);
    assert.match(error.reason ?? '', /participant inventroy is not registered/);
    assert.ok(elapsed < 30_000, `took ${elapsed} ms: the grace did not apply`);
    await waitFor('the real branch to run its abort hook', () => cluster.callsOf(real).some((c) => c.hook === 'abort'));
  });
});
