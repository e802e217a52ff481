// No log writes an empty key or value. classic-level 3.0 copies each key and value of a write into
// a `new char[size]` and frees the copy only when it is not empty, so an empty value leaks a
// malloc chunk per write: the coordinator's and participants' memory grew by about 40 bytes per
// transaction, without bound, while their `ended/` index entries had empty values. This test runs
// committed, aborted and one-phase transactions, then reads every entry of every data directory.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Level } from 'level';

import { ErrorCode } from '../../src/errors.js';
import type { ParticipantHooks } from '../../src/participant/index.js';
import { TestCluster, uniqueName } from '../support/cluster.js';

/** Hooks that stage an application write at every step, and vote NO on payload "no". */
const stagingHooks: ParticipantHooks = {
  prepare: (txId, payload, { batch }) => {
    batch.put(`hold/${txId}`, 1);
    return Buffer.from(payload).toString('utf8') === 'no' ? 'no' : 'yes';
  },
  commit: (txId, { batch }) => {
    batch.del(`hold/${txId}`);
    batch.put(`applied/${txId}`, true);
  },
  abort: (txId, { batch }) => batch.del(`hold/${txId}`),
};

/** Every entry of the LevelDB in `dir`, raw (sublevel prefixes included). */
async function rawEntries(dir: string): Promise<[string, Uint8Array][]> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    const out: [string, Uint8Array][] = [];
    for await (const [key, value] of db.iterator()) out.push([Buffer.from(key).toString('latin1'), value]);
    return out;
  } finally {
    await db.close();
  }
}

describe('log entries', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start();
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('never have an empty key or value, at the coordinator or a participant', async () => {
    const a = uniqueName('a');
    const b = uniqueName('b');
    for (const name of [a, b]) await cluster.participant(name, 'yes', { hooks: stagingHooks });

    const committed = await cluster.client.transact([{ participant: a }, { participant: b }], { waitForCompletion: true });
    assert.equal(committed.outcome, 'committed');
    const onePhase = await cluster.client.transact([{ participant: a }], { waitForCompletion: true });
    assert.equal(onePhase.outcome, 'committed');
    await assert.rejects(
      cluster.client.transact([{ participant: a }, { participant: b, payload: 'no' }], { waitForCompletion: true }),
      (e: { code?: string }) => e.code === ErrorCode.TX_ABORTED,
    );

    // Closed, so that the logs can be opened raw (and everything they wrote is on disk).
    for (const p of cluster.participants.values()) await p.close();
    await cluster.coordinator.close();

    for (const name of ['coordinator', a, b]) {
      const entries = await rawEntries(join(cluster.dir.path, name));
      assert.ok(
        entries.some(([key]) => key.includes('ended')),
        `${name}: the ended index, which had the empty values, should have entries; keys: ${entries.map(([k]) => k).join(', ')}`,
      );
      for (const [key, value] of entries) {
        assert.ok(key.length > 0, `${name}: an empty key`);
        assert.ok(value.length > 0, `${name}: ${key} has an empty value`);
      }
    }
  });
});
