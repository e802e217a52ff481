// Nothing a client or a participant holds is unbounded: each limit refuses with
// RESOURCE_EXHAUSTED and verdict-code LIMIT_EXCEEDED (a dropped inquiry is asked again), changes
// nothing, and leaves the coordinator serving everyone else.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';

import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';
import { expectStatus, metadataText, RawSessions, RawTransactions } from '../support/raw-grpc.js';

describe('limits', () => {
  let cluster: TestCluster | undefined;
  let raws: RawTransactions[] = [];
  afterEach(async () => {
    for (const r of raws) r.close();
    raws = [];
    await cluster?.close();
    cluster = undefined;
  });

  it('bounds the transactions one client connection may begin and leave open; other clients go on', async () => {
    cluster = await TestCluster.start({ limits: { maxLivePerClient: 3 } });
    const greedy = new RawTransactions(cluster.coordinator.address, { ownConnection: true });
    const other = new RawTransactions(cluster.coordinator.address, { ownConnection: true });
    raws.push(greedy, other);
    const begun = [];
    for (let i = 0; i < 3; i++) begun.push((await greedy.begin({ timeoutMs: 60_000 })).txId);
    const live = cluster.coordinator.stats.live;
    const e = await expectStatus(greedy.begin({ timeoutMs: 60_000 }), Status.RESOURCE_EXHAUSTED, /begun 3 transactions that are not finished \(limit 3\)/);
    assert.equal(metadataText(e, 'verdict-code'), 'LIMIT_EXCEEDED');
    assert.equal(cluster.coordinator.stats.live, live, 'a refused Begin created a transaction');
    // Another connection is not affected, and finishing one frees a place.
    assert.ok((await other.begin({ timeoutMs: 60_000 })).txId);
    await greedy.abort({ txId: begun[0] as string, reason: 'done' });
    assert.ok((await greedy.begin({ timeoutMs: 60_000 })).txId);
  });

  it('bounds the unanswered calls of one client connection', async () => {
    cluster = await TestCluster.start({ limits: { maxPendingPerClient: 2 } });
    const name = uniqueName('slow');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await cluster.participant(name, async () => {
      await held;
      return 'yes' as const;
    });
    const raw = new RawTransactions(cluster.coordinator.address);
    raws.push(raw);
    const waiting = [raw.commit({ branches: [{ participant: name, payload: Buffer.from('1') }] }), raw.commit({ branches: [{ participant: name, payload: Buffer.from('2') }] })];
    // Both are pending at the coordinator before the third arrives (they wait for the held hook).
    const c = cluster;
    await waitFor('both commits to wait at the coordinator', () => c.coordinator.stats.live >= 2);
    const e = await expectStatus(raw.get('tx-1-1'), Status.RESOURCE_EXHAUSTED, /2 unanswered calls \(limit 2\)/);
    assert.equal(metadataText(e, 'verdict-code'), 'LIMIT_EXCEEDED');
    release();
    await Promise.all(waiting);
    assert.ok(await raw.get('tx-1-1'));
  });

  it('bounds the live participant sessions', async () => {
    cluster = await TestCluster.start({ limits: { maxSessions: 1 } });
    await cluster.participant(uniqueName('first'));
    const sessions = new RawSessions(cluster.coordinator.address);
    try {
      const session = sessions.open();
      session.call.write({ hello: { participant: uniqueName('second') }, votes: [], acks: [], inquiries: [], enlists: [] });
      const e = await session.final();
      assert.equal(e.code, Status.RESOURCE_EXHAUSTED);
      assert.match(e.details, /1 live sessions \(limit 1\)/);
      assert.equal(e.metadata.get('verdict-code')[0], 'LIMIT_EXCEEDED');
    } finally {
      sessions.close();
    }
  });

  it('bounds the distinct participant names a coordinator run remembers; known names reconnect', async () => {
    cluster = await TestCluster.start({ limits: { maxParticipantNames: 2 } });
    const [first, second] = [uniqueName('first'), uniqueName('second')];
    await cluster.participant(first);
    const { participant } = await cluster.participant(second);
    // The second leaves: two names are still known, none is live besides the first.
    await participant.close();
    const sessions = new RawSessions(cluster.coordinator.address);
    try {
      const third = sessions.open();
      third.call.write({ hello: { participant: uniqueName('third') }, votes: [], acks: [], inquiries: [], enlists: [] });
      const e = await third.final();
      assert.equal(e.code, Status.RESOURCE_EXHAUSTED);
      assert.match(e.details, /^the coordinator knows 2 participant names \(limit 2\); a new name is refused until it restarts$/);
      assert.equal(e.metadata.get('verdict-code')[0], 'LIMIT_EXCEEDED');
      // A known name is not a new one: it comes back.
      const again = await cluster.participant(second);
      assert.equal(again.participant.state, 'connected');
    } finally {
      sessions.close();
    }
    // A restart forgets the names.
    await cluster.coordinator.close();
    await cluster.startCoordinator({ limits: { maxParticipantNames: 2 } });
    const fresh = await cluster.participant(uniqueName('fresh'));
    assert.equal(fresh.participant.state, 'connected');
  });

  it('bounds the payload bytes live transactions hold in memory', async () => {
    cluster = await TestCluster.start({ protocol: { maxPayloadBytesInMemory: 10_000 } });
    const raw = new RawTransactions(cluster.coordinator.address);
    raws.push(raw);
    const tx = (await raw.begin({ timeoutMs: 60_000 })).txId;
    const name = uniqueName('holder');
    await cluster.participant(name, 'yes');
    // A begun transaction holds its branches' payloads until it ends: fill 8,000 of 10,000.
    const pending = raw.commit({ txId: tx, branches: [{ participant: 'absent-one', payload: Buffer.alloc(8_000, 1) }], timeoutMs: 60_000 });
    pending.catch(() => undefined);
    const c = cluster;
    await waitFor('the commit to hold its payload', () => c.coordinator.describe(tx)?.state === 'preparing');
    const e = await expectStatus(raw.commit({ branches: [{ participant: name, payload: Buffer.alloc(4_000, 1) }] }), Status.RESOURCE_EXHAUSTED, /payload bytes of live transactions; 4000 more would pass its limit of 10000/);
    assert.equal(metadataText(e, 'verdict-code'), 'LIMIT_EXCEEDED');
    // A small one still fits.
    assert.ok((await raw.commit({ branches: [{ participant: name, payload: Buffer.alloc(1_000, 1) }] })).txId);
  });
});
