// The etcd decision store on a real etcd cluster: group commit chunked under the limit on
// operations per transaction with each write() whole in one chunk, a write bigger than a chunk
// applied in order, every write fenced on the leader key, and the store broken for good once refused.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';

import { systemClock } from '../../src/common/clock.js';
import { EtcdDecisionStore, type LeaderFence } from '../../src/cluster/etcd-decision-store.js';
import { DecisionLog } from '../../src/coordinator/decision-log.js';
import type { StoreOp } from '../../src/coordinator/decision-store.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { EtcdCluster } from '../../src/faults/etcd-cluster.js';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');

describe('etcd decision store', () => {
  let etcd: EtcdCluster;
  let client: Etcd3;
  let n = 0;

  before(async () => {
    etcd = await EtcdCluster.start();
    client = new Etcd3(etcd.clientOptions());
  });
  after(async () => {
    client.close();
    await etcd.stop();
  });

  /** A fresh prefix with a leader key this test holds. */
  async function fenced(maxOpsPerTxn = 128): Promise<{ store: EtcdDecisionStore; prefix: string; fence: LeaderFence }> {
    const prefix = `/store-${++n}/`;
    const key = `${prefix}leader`;
    const res = await client.if(key, 'Create', '==', 0).then(client.put(key).value('me')).commit();
    assert.ok(res.succeeded);
    const fence = { key, createRevision: res.header.revision, value: 'me' };
    return { store: new EtcdDecisionStore({ client, prefix, fence, clock: systemClock, maxOpsPerTxn }), prefix, fence };
  }

  async function all(store: EtcdDecisionStore, gte: string, lt: string): Promise<string[]> {
    const out: string[] = [];
    for await (const [k, v] of store.entries({ gte, lt })) out.push(`${k}=${Buffer.from(v).toString('utf8')}`);
    return out;
  }

  it('groups concurrent writes into transactions of at most maxOpsPerTxn operations, never splitting a write', async () => {
    const { store } = await fenced(4);
    const unit = (i: number): StoreOp[] => [
      { type: 'put', key: `done/t${i}`, value: bytes(`end ${i}`) },
      { type: 'put', key: `ended/${i}`, value: bytes('1') },
      { type: 'del', key: `open/t${i}` },
    ];
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.write(unit(i), i % 2 === 0)));
    // 3 operations each and 4 per transaction: one write per transaction, none cut in two.
    assert.equal(store.stats.batches, 10);
    assert.equal(store.stats.writes, 10);
    assert.equal((await all(store, 'done/', 'done0')).length, 10);
  });

  it('a write bigger than a transaction is applied in order across transactions (the horizon first)', async () => {
    const { store } = await fenced(4);
    const big: StoreOp[] = [{ type: 'put', key: 'meta/gc-horizon', value: bytes('tx-1-9') }];
    for (let i = 0; i < 9; i++) big.push({ type: 'put', key: `done/t${i}`, value: bytes(String(i)) });
    await store.write(big, false);
    assert.equal(store.stats.batches, 3);
    assert.equal((await all(store, 'done/', 'done0')).length, 9);
    assert.deepEqual(await all(store, 'meta/', 'meta0'), ['meta/gc-horizon=tx-1-9']);
  });

  it('pages range reads past one page', async () => {
    const { store } = await fenced();
    const ops: StoreOp[] = Array.from({ length: 2_500 }, (_, i) => ({ type: 'put', key: `open/t${String(i).padStart(5, '0')}`, value: bytes('x') }));
    await store.write(ops, true);
    const keys: string[] = [];
    for await (const k of store.keys({ gte: 'open/', lt: 'open0' })) keys.push(k);
    assert.equal(keys.length, 2_500);
    assert.deepEqual(keys, [...keys].sort());
    const limited: string[] = [];
    for await (const k of store.keys({ gte: 'open/', lt: 'open0', limit: 1_200 })) limited.push(k);
    assert.equal(limited.length, 1_200);
  });

  it('refuses every write once the leader key is gone or re-created, and writes nothing', async () => {
    const { store, fence } = await fenced();
    await store.write([{ type: 'put', key: 'open/a', value: bytes('a') }], true);
    // Another member's term: the key deleted (lease expired) and created again.
    await client.delete().key(fence.key);
    await client.put(fence.key).value('someone else');
    await assert.rejects(store.write([{ type: 'put', key: 'open/b', value: bytes('b') }], true), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.NOT_LEADER);
    await assert.rejects(store.write([{ type: 'put', key: 'open/c', value: bytes('c') }], true), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.UNAVAILABLE);
    assert.deepEqual(await all(store, 'open/', 'open0'), ['open/a=a']);
  });

  it('bumps the epoch with a compare-and-swap; a deposed writer cannot bump it', async () => {
    const { store, fence } = await fenced();
    const log = new DecisionLog(store, systemClock);
    assert.equal(await log.bumpEpoch(), 1);
    assert.equal(await log.bumpEpoch(), 2);
    assert.equal(await store.compareAndSwap('meta/epoch', bytes('1'), bytes('9')), false, 'a stale expected value changes nothing');
    assert.equal(Buffer.from((await store.get('meta/epoch')) ?? []).toString('utf8'), '2');
    await client.delete().key(fence.key);
    await assert.rejects(log.bumpEpoch(), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.NOT_LEADER);
    assert.equal(Buffer.from((await store.get('meta/epoch')) ?? []).toString('utf8'), '2');
  });
});
