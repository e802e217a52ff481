// Both SDKs given a coordinator group's addresses (issue 17, SDK side), without etcd: a fake
// follower on 127.0.0.1 answers NOT_LEADER naming the real coordinator (or naming none), a dead
// address has nothing listening, and the participant and the initiator still end up committing
// through the real coordinator, moving with backoff and never in a busy loop.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { VerdictClient } from '../../src/client/client.js';
import { coordinatorAddresses } from '../../src/common/coordinator-targets.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { Participant } from '../../src/participant/participant.js';
import { freePort, recordingHooks, TestCluster, testLogger, uniqueName, type HookCall } from '../support/cluster.js';
import { FakeFollower } from './support/fake-follower.js';
import { FaultProxy } from '../../src/faults/fault-proxy.js';
import { rejection } from '../support/rejection.js';

/** Fast moves, so that the test is quick; the policy is the same as with the defaults. */
const RECONNECT = { initialMs: 20, maxMs: 200 };

describe('SDKs with a list of coordinator addresses', () => {
  let cluster: TestCluster;
  let follower: FakeFollower;
  let lost: FakeFollower;
  let dead: string;
  const closers: (() => unknown)[] = [];

  before(async () => {
    cluster = await TestCluster.start();
    follower = await FakeFollower.start(() => cluster.coordinator.address);
    lost = await FakeFollower.start(() => undefined);
    dead = `127.0.0.1:${await freePort()}`;
  });

  after(async () => {
    for (const close of closers.reverse()) await close();
    follower?.close();
    lost?.close();
    await cluster?.close();
  });

  async function participant(coordinator: readonly string[]): Promise<{ name: string; calls: HookCall[]; participant: Participant }> {
    const name = uniqueName('member');
    const { hooks, calls } = recordingHooks('yes');
    const p = await Participant.start({ name, coordinator, dataDir: join(cluster.dir.path, name), hooks, reconnect: RECONNECT, logger: testLogger });
    closers.push(() => p.close());
    await p.ready({ timeoutMs: 20_000 });
    return { name, calls, participant: p };
  }

  function client(coordinator: readonly string[], options: { streamCommits?: boolean; callTimeoutMs?: number } = {}): VerdictClient {
    const c = new VerdictClient(coordinator, { reconnect: RECONNECT, ...options });
    closers.push(() => c.close());
    return c;
  }

  it('follows NOT_LEADER to the leader it names, for sessions, unary calls and CommitStream', async () => {
    const before = follower.total;
    // The leader is not even in the list: the SDKs go where the member points.
    const a = await participant([follower.address]);
    const b = await participant([follower.address, dead]);
    assert.equal(a.participant.coordinatorEpoch, cluster.coordinator.epoch);
    assert.equal(b.participant.coordinatorEpoch, cluster.coordinator.epoch);
    for (const streamCommits of [false, true]) {
      const c = client([follower.address], { streamCommits });
      const { txId, outcome } = await c.transact([{ participant: a.name, payload: 'x' }, { participant: b.name }]);
      assert.equal(outcome, 'committed');
      assert.equal(c.target, cluster.coordinator.address);
      assert.equal((await c.get(txId)).outcome, 'committed');
      assert.ok(a.calls.some((x) => x.hook === 'commit' && x.txId === txId));
      assert.ok(b.calls.some((x) => x.hook === 'commit' && x.txId === txId));
    }
    const refusedNow = follower.total - before;
    // Two sessions and two clients: each was told once (a retry storm would show as many more).
    assert.ok(refusedNow >= 4 && refusedNow <= 8, `the follower refused ${refusedNow} calls: ${JSON.stringify([...follower.refused])}`);
  });

  it('goes to the next address when a member knows no leader or nothing listens there', async () => {
    const beforeLost = lost.total;
    const a = await participant([lost.address, cluster.coordinator.address]);
    const b = await participant([dead, cluster.coordinator.address]);
    const c = client([dead, lost.address, cluster.coordinator.address]);
    const begun = await c.begin({ timeoutMs: 20_000 });
    await a.participant.enlist(begun, Buffer.from('enlisted'));
    await c.commit(begun.txId, [{ participant: b.name }]);
    assert.equal(c.target, cluster.coordinator.address);
    assert.equal((await c.get(begun.txId)).outcome, 'committed');
    assert.ok(a.calls.some((x) => x.hook === 'prepare' && x.payload === 'enlisted'));
    assert.ok(lost.total - beforeLost <= 4, `the leaderless member was asked ${lost.total - beforeLost} times`);
  });

  it('gives up on a member that only ever points at itself with NOT_LEADER, after a bounded number of moves spaced by backoff', async () => {
    const selfish: FakeFollower = await FakeFollower.start(() => selfish.address);
    try {
      const c = client([selfish.address], { callTimeoutMs: 1_500 });
      const started = Date.now();
      const e = await rejection(c.get('tx-1-1'));
      const elapsed = Date.now() - started;
      assert.equal(e.code, ErrorCode.NOT_LEADER);
      assert.equal(e.retryable, true);
      const asked = selfish.refused.get('GetTransaction') ?? 0;
      // Spaced by at least initialMs/2 each: 1.5 s holds at most ~1500/10 of them, a busy loop thousands.
      assert.ok(asked >= 2 && asked <= 17, `asked ${asked} times`);
      assert.ok(elapsed >= (asked - 1) * (RECONNECT.initialMs / 2), `${asked} calls in ${elapsed} ms`);
    } finally {
      selfish.close();
    }
  });

  it('leaves a member that stops answering (connections open, nothing answered, as a frozen process): a commit in flight ends OUTCOME_UNKNOWN, then everything moves on', async () => {
    // A proxy in front of the coordinator plays the frozen member once it holds every byte.
    const frozen = await FaultProxy.start({ target: cluster.coordinator.address, name: 'frozen' });
    closers.push(() => frozen.close());
    const addresses = [frozen.address, cluster.coordinator.address];
    const quick = { keepalive: { intervalMs: 200, timeoutMs: 300 }, reconnect: { ...RECONNECT, connectTimeoutMs: 300 } };
    const name = uniqueName('frozen');
    const { hooks, calls } = recordingHooks('yes');
    const p = await Participant.start({ name, coordinator: addresses, dataDir: join(cluster.dir.path, name), hooks, logger: testLogger, ...quick });
    closers.push(() => p.close());
    await p.ready({ timeoutMs: 20_000 });
    const c = new VerdictClient(addresses, { callTimeoutMs: 30_000, ...quick });
    closers.push(() => c.close());
    const begun = await c.begin({ timeoutMs: 20_000 });
    assert.equal(c.target, frozen.address, 'the client and the session use the first address while it answers');
    const reconnected = new Promise<void>((resolve) => p.once('disconnected', () => p.once('connected', () => resolve())));

    frozen.set({ kind: 'blackhole' });
    const started = Date.now();
    const inFlight = await rejection(c.commit(begun.txId, [{ participant: name }]));
    assert.equal(inFlight.code, ErrorCode.OUTCOME_UNKNOWN);
    assert.equal(inFlight.txId, begun.txId);
    assert.ok(Date.now() - started < 10_000, `the commit waited ${Date.now() - started} ms, not the keepalive's ~500 ms`);
    // The session moved to the next address, and calls follow, while the member stays silent.
    await reconnected;
    const view = await c.get(begun.txId);
    assert.notEqual(view.outcome, 'committed', 'the commit never reached the coordinator');
    assert.equal(c.target, cluster.coordinator.address);
    for (const streamCommits of [false, true]) {
      const s = new VerdictClient(addresses, { streamCommits, ...quick });
      closers.push(() => s.close());
      const { txId } = await s.transact([{ participant: name, payload: 'after' }]);
      assert.ok(calls.some((x) => x.hook === 'commit' && x.txId === txId));
      assert.equal(s.target, cluster.coordinator.address);
    }
  });

  it('refuses a malformed or empty address list with INVALID_ARGUMENT', async () => {
    for (const bad of [[], [''], ['localhost'], ['127.0.0.1:0'], ['127.0.0.1:70000'], ['a:1', 'a:1'], ['host:1/path']]) {
      assert.throws(() => coordinatorAddresses(bad), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.INVALID_ARGUMENT, JSON.stringify(bad));
      assert.throws(() => new VerdictClient(bad), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.INVALID_ARGUMENT, JSON.stringify(bad));
    }
    await assert.rejects(
      Participant.start({ name: uniqueName('bad'), coordinator: ['nohost'], dataDir: join(cluster.dir.path, 'bad'), hooks: recordingHooks().hooks, logger: testLogger }),
      (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.INVALID_ARGUMENT,
    );
  });
});
