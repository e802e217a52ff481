// The benchmark's naive baseline switches: with group commit and frame batching off, the same
// transactions commit, but every forced record is its own synced write and every message its own
// stream frame, which is what `verdict bench --baseline` compares the optimized path against.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';

const TXS = 20;

describe('naive path (group commit and frame batching off)', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    // No phase-2 retries within the test: a slow machine would otherwise re-send decisions and count extra frames.
    cluster = await TestCluster.start({ groupCommit: false, frameBatching: false, protocol: { retryInitialMs: 60_000, retryMaxMs: 60_000 } });
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('commits concurrent transactions with one frame per message and one synced write per forced record', async () => {
    const names = [uniqueName('naive-a'), uniqueName('naive-b')];
    const participants = [];
    for (const name of names) {
      participants.push((await cluster.participant(name, 'yes', { groupCommit: false, frameBatching: false })).participant);
    }
    const before = cluster.coordinator.stats;
    const results = await Promise.all(Array.from({ length: TXS }, () => cluster.client.transact(names.map((participant) => ({ participant })))));
    assert.equal(results.length, TXS);
    await waitFor('every transaction to end', () => cluster.coordinator.stats.live === 0);

    const after = cluster.coordinator.stats;
    const frames = after.sessions.framesOut - before.sessions.framesOut;
    const messages = after.sessions.messagesOut - before.sessions.messagesOut;
    // A prepare and a commit per branch, each in a frame of its own.
    assert.equal(messages, TXS * names.length * 2);
    assert.equal(frames, messages, 'every message left in its own frame');
    // One COMMIT record per transaction, each synced by itself (END summaries are not forced).
    assert.equal(after.log.syncedBatches - before.log.syncedBatches, TXS);
    for (const p of participants) {
      // PREPARED and COMMITTED per transaction, each synced by itself.
      assert.equal(p.logStats.syncedBatches, TXS * 2, 'participant synced writes');
      assert.equal(p.logStats.batches, p.logStats.writes, 'no participant write shared a batch');
    }
  });
});
