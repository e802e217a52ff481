// Idempotency keys and reserved ids over the wire, against a coordinator in this process: calls
// with one key made together commit one transaction; a keyed call that aborted answers the same
// abort when retried; malformed keys and counts are refused precisely and start nothing.
import assert from 'node:assert/strict';
import { status as Status } from '@grpc/grpc-js';
import { after, before, describe, it } from 'node:test';

import { VerdictClient } from '../../src/client/client.js';
import { ErrorCode } from '../../src/errors.js';
import { expectStatus, metadataText, RawTransactions } from '../support/raw-grpc.js';
import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';
import { rejection } from '../support/rejection.js';

describe('idempotency keys and reserved ids', () => {
  let cluster: TestCluster;
  let raw: RawTransactions;

  before(async () => {
    cluster = await TestCluster.start();
    raw = new RawTransactions(cluster.coordinator.address);
  });

  after(async () => {
    raw?.client.close();
    await cluster?.close();
  });

  it('commits one transaction for calls with the same key made together, and names it in every answer', async () => {
    const [a, b] = [uniqueName('a'), uniqueName('b')];
    const { calls: aCalls } = await cluster.participant(a);
    const { calls: bCalls } = await cluster.participant(b);
    const other = new VerdictClient(cluster.coordinator.address);
    try {
      const branches = [{ participant: a, payload: 'x' }, { participant: b }];
      const results = await Promise.all([
        cluster.client.transact(branches, { idempotencyKey: 'together-1' }),
        cluster.client.transact(branches, { idempotencyKey: 'together-1' }),
        other.transact(branches, { idempotencyKey: 'together-1' }),
      ]);
      const ids = new Set(results.map((r) => r.txId));
      assert.equal(ids.size, 1, `several transactions: ${[...ids].join(', ')}`);
      assert.equal(aCalls.filter((c) => c.hook === 'prepare').length, 1);
      assert.equal(bCalls.filter((c) => c.hook === 'prepare').length, 1);
      // Another key is another transaction.
      const next = await cluster.client.transact(branches, { idempotencyKey: 'together-2' });
      assert.ok(!ids.has(next.txId));
    } finally {
      other.close();
    }
  });

  it('answers a retried keyed call that aborted with the same abort, preparing nothing again', async () => {
    const [yes, no] = [uniqueName('yes'), uniqueName('no')];
    const { calls: yesCalls } = await cluster.participant(yes);
    await cluster.participant(no, { vote: 'no', reason: 'out of stock' });
    const branches = [{ participant: yes }, { participant: no }];
    const first = await rejection(cluster.client.transact(branches, { idempotencyKey: 'abort-1' }));
    assert.equal(first.code, ErrorCode.TX_ABORTED);
    assert.equal(first.reason, 'participant ' + no + ' voted NO: out of stock');
    const again = await rejection(cluster.client.transact(branches, { idempotencyKey: 'abort-1' }));
    assert.equal(again.code, ErrorCode.TX_ABORTED);
    assert.equal(again.txId, first.txId);
    assert.equal(yesCalls.filter((c) => c.hook === 'prepare').length, 1);
  });

  it('keeps a key until its transaction\'s END summary is collected, then lets it go with it', async () => {
    const [a, b] = [uniqueName('a'), uniqueName('b')];
    const { calls } = await cluster.participant(a);
    await cluster.participant(b);
    const branches = [{ participant: a }, { participant: b }];
    const first = await cluster.client.transact(branches, { idempotencyKey: 'kept-1', waitForCompletion: true });
    await waitFor('the transaction to end', () => cluster.coordinator.describe(first.txId) === undefined);
    // Ended, answered from the log's key index.
    assert.deepEqual(await cluster.client.transact(branches, { idempotencyKey: 'kept-1' }), first);
    assert.equal(calls.filter((c) => c.hook === 'prepare').length, 1);
    // Collected: the key's index entry went with the summary, and the key is free again.
    assert.ok((await cluster.coordinator.collectGarbage(Date.now() + 1)) >= 1);
    const second = await cluster.client.transact(branches, { idempotencyKey: 'kept-1' });
    assert.notEqual(second.txId, first.txId);
    assert.equal(calls.filter((c) => c.hook === 'prepare').length, 2);
  });

  it('refuses a malformed key in the client, before anything is sent', async () => {
    const name = uniqueName('p');
    const { calls } = await cluster.participant(name);
    for (const key of ['', 'a'.repeat(129), 'two words', 'line\nbreak', 'ünïcode']) {
      const e = await rejection(cluster.client.transact([{ participant: name }], { idempotencyKey: key }));
      assert.equal(e.code, ErrorCode.INVALID_ARGUMENT, JSON.stringify(key));
      assert.match(e.message, /^idempotency key (is empty|.* is invalid)/);
      assert.equal(e.txId, undefined);
    }
    assert.equal(calls.length, 0);
  });

  it('refuses a malformed key on the wire with INVALID_ARGUMENT and verdict-code, starting nothing', async () => {
    const name = uniqueName('p');
    const { calls } = await cluster.participant(name);
    const live = cluster.coordinator.stats.live;
    const e = await expectStatus(raw.commit({ branches: [{ participant: name, payload: Buffer.alloc(0) }], idempotencyKey: 'bad key\u0000' }), Status.INVALID_ARGUMENT, /^idempotency key "bad key\\u0000" is invalid/);
    assert.equal(metadataText(e, 'verdict-code'), ErrorCode.INVALID_ARGUMENT);
    assert.equal(calls.length, 0);
    assert.equal(cluster.coordinator.stats.live, live);
  });

  it('refuses reserve counts out of range with INVALID_ARGUMENT', async () => {
    await expectStatus(raw.reserveTxIds({ count: 0 }), Status.INVALID_ARGUMENT, /^count 0 is out of range \(1 to 1024\)$/);
    await expectStatus(raw.reserveTxIds({ count: 1025 }), Status.INVALID_ARGUMENT, /^count 1025 is out of range/);
    const ok = await raw.reserveTxIds({ count: 2 });
    assert.equal(ok.count, 2);
    assert.equal(ok.epoch, cluster.coordinator.epoch);
    assert.ok(ok.ttlMs > 0);
  });

  it('treats a reserved id asked about before its Commit as presumed aborted for good', async () => {
    const name = uniqueName('p');
    const { calls } = await cluster.participant(name);
    const r = await raw.reserveTxIds({ count: 1 });
    const txId = `tx-${r.epoch}-${r.firstSeq}`;
    const view = await cluster.client.get(txId);
    assert.equal(view.outcome, 'aborted');
    assert.equal(view.presumed, true);
    const e = await rejection(cluster.client.commit(txId, [{ participant: name }]));
    assert.equal(e.code, ErrorCode.TX_ABORTED);
    assert.equal(e.txId, txId);
    assert.equal(calls.length, 0, 'the late Commit reached a participant');
  });
});
