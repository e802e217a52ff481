// The client's pool of reserved transaction ids, against a fake ReserveTxIds: each id once, one
// reservation for many ids, the next block fetched before the current one runs out, nothing
// handed out past its lifetime or after a lost connection, and a stale id recognised only when a
// fresh reservation proves a new coordinator incarnation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';

import { TxIdPool } from '../../src/client/tx-id-pool.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import type { ReserveTxIdsResponse } from '../../src/gen/verdict/v1/transaction.js';

/** A fake coordinator's ReserveTxIds: consecutive blocks of `epoch`, counted. */
function fakeReserve(state: { epoch: number; next: number; calls: number[]; ttlMs: number; fail?: ServiceError }) {
  return (count: number): Promise<ReserveTxIdsResponse> => {
    state.calls.push(count);
    if (state.fail) return Promise.reject(state.fail);
    const res = { epoch: state.epoch, firstSeq: state.next, count, ttlMs: state.ttlMs };
    state.next += count;
    return Promise.resolve(res);
  };
}

async function take(pool: TxIdPool): Promise<string> {
  return await pool.next();
}

describe('TxIdPool', () => {
  it('hands out each reserved id once, in order, from few reservations that grow', async () => {
    const state = { epoch: 4, next: 1, calls: [] as number[], ttlMs: 60_000 };
    const pool = new TxIdPool(fakeReserve(state), () => 1_000);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await take(pool));
    assert.deepEqual(ids, Array.from({ length: 40 }, (_, i) => `tx-4-${i + 1}`));
    assert.equal(new Set(ids).size, 40);
    // 8, 16, 32 (ids 25 to 56), and 64 fetched once half of the third was used: each block is
    // fetched while the current one still has ids.
    assert.deepEqual(state.calls, [8, 16, 32, 64]);
  });

  it('hands out the next id without waiting while the current block lasts', async () => {
    const state = { epoch: 1, next: 1, calls: [] as number[], ttlMs: 60_000 };
    const pool = new TxIdPool(fakeReserve(state), () => 0);
    await take(pool);
    assert.equal(typeof pool.next(), 'string');
  });

  it('uses a block for half its lifetime only, counted from when it was asked for', async () => {
    let now = 0;
    const state = { epoch: 2, next: 1, calls: [] as number[], ttlMs: 10_000 };
    const pool = new TxIdPool(fakeReserve(state), () => now);
    assert.equal(await take(pool), 'tx-2-1');
    now = 4_999;
    assert.equal(await take(pool), 'tx-2-2');
    now = 5_000;
    // Past half its lifetime: the rest of the block is left unused, a new one is reserved.
    assert.equal(await take(pool), 'tx-2-9');
    assert.deepEqual(state.calls, [8, 16]);
  });

  it('drops its blocks when the connection is lost, and tells a stale id only by a newer epoch', async () => {
    const state = { epoch: 5, next: 1, calls: [] as number[], ttlMs: 60_000 };
    const pool = new TxIdPool(fakeReserve(state), () => 0);
    const generation = pool.generation;
    const old = await take(pool);
    assert.equal(await pool.isStale(old, generation), false, 'no connection was lost');
    pool.connectionLost();
    assert.equal(await pool.isStale(old, generation), false, 'the same incarnation answered the new reservation');
    // The coordinator restarted: a new epoch.
    state.epoch = 6;
    state.next = 1;
    pool.connectionLost();
    assert.equal(await pool.isStale(old, generation), true);
    assert.match(await take(pool), /^tx-6-\d+$/);
  });

  it('rejects with the reservation error (never OUTCOME_UNKNOWN), and after close() with UNAVAILABLE', async () => {
    const fail = Object.assign(new Error('14 UNAVAILABLE: No connection established'), {
      code: Status.UNAVAILABLE,
      details: 'No connection established',
      metadata: new Metadata(),
    }) as ServiceError;
    const state = { epoch: 1, next: 1, calls: [] as number[], ttlMs: 60_000, fail };
    const pool = new TxIdPool(fakeReserve(state), () => 0);
    await assert.rejects(take(pool), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.UNAVAILABLE);
    pool.close();
    await assert.rejects(take(pool), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.UNAVAILABLE && /closed/.test(e.message));
  });
});
