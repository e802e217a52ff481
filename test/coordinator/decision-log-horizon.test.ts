// The garbage-collection horizon stored in the decision log only ever rises. Summaries expire in
// the order they were written, not in id order (a recovered or slow transaction ends after later
// ones), so a later GC batch may hold only lower ids; storing that batch's maximum would move the
// horizon back, and after a restart a dropped committed id above it would read as presumed
// aborted. Found by the simulator (npm run sim -- --profile crash --seed 5964, before the fix).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { systemClock } from '../../src/common/clock.js';
import { levelStorage } from '../../src/common/level-errors.js';
import { DecisionLog } from '../../src/coordinator/decision-log.js';
import { CoordinatorRecordKind } from '../../src/protocol/coordinator-events.js';

describe('decision log: gc horizon', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verdict-horizon-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('never moves the stored horizon back when a later batch holds only lower ids', async () => {
    const log = await DecisionLog.open(levelStorage(dir), systemClock);
    try {
      const end = (txId: string) => ({ op: 'put', space: 'done', record: { kind: CoordinatorRecordKind.END, txId, participants: ['a'], outcome: 'committed' } }) as const;
      await log.write([end('tx-1-2')], false);
      const first = await log.expired(Date.now() + 1, 10);
      await log.forget(first, 'tx-1-2');
      assert.equal(await log.loadHorizon(), 'tx-1-2');

      await log.write([end('tx-1-1')], false);
      const second = await log.expired(Date.now() + 1, 10);
      assert.deepEqual(second.map((e) => e.txId), ['tx-1-1']);
      await log.forget(second, 'tx-1-1');
      assert.equal(await log.loadHorizon(), 'tx-1-2', 'the horizon moved back');
      assert.equal(await log.lookupDone('tx-1-1'), undefined, 'the expired summary is still dropped');
    } finally {
      await log.close();
    }
  });
});
