// The fault matrix's SIGSTOP rows in real processes: a coordinator and a bank frozen for longer
// than the deadlines under a workload of transfers, then healed and checked like the failpoint
// runs; and a second coordinator started on a data directory whose owner is frozen (P14, the
// "second coordinator instance" row). The seed (VERDICT_CRASH_SEED, else random) is printed on
// every failure.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VerdictClient } from '../../src/client/client.js';
import { CrashRun } from '../../src/faults/crash-run.js';
import { CoordinatorProcess, fixedPort, ProcessCluster } from '../../src/faults/process-cluster.js';
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_TX_TIMEOUT_MS } from '../../src/faults/transfer-workload.js';
import { assertClean, crashSeed, exclusiveCrashSuite, runDir } from './crash-support.js';

const TEST_TIMEOUT_MS = 180_000;
/** Transfers that must commit between two faults (the cluster works again). */
const COMMITS_BETWEEN_FAULTS = 5;
const PROGRESS_TIMEOUT_MS = 30_000;

describe('SIGSTOP past the deadlines, and a second coordinator, in real processes', () => {
  const seed = crashSeed();
  let release: (() => void) | undefined;

  before(async () => {
    release = await exclusiveCrashSuite();
  });

  after(() => release?.());

  it('keeps one decision per transaction when the coordinator, then a bank, freeze for longer than the deadlines', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    t.diagnostic(`seed ${seed}`);
    const run = await CrashRun.start({ dir: runDir('sigstop'), seed });
    try {
      const progress = (): Promise<void> =>
        run.workload.whenMore(COMMITS_BETWEEN_FAULTS, PROGRESS_TIMEOUT_MS, (a) => a.observed === 'committed');
      run.workload.start();
      await progress();

      // Longer than a transaction's timeout and than a client call's deadline: calls in flight
      // time out (outcome unknown), transactions pass their deadlines while nothing runs.
      await run.freeze(run.cluster.coordinator, DEFAULT_CALL_TIMEOUT_MS + 1_000);
      await progress();

      // Its votes arrive after their transactions aborted; commits to it wait until it runs again.
      const bank = run.cluster.banks[0];
      assert.ok(bank);
      await run.freeze(bank, DEFAULT_TX_TIMEOUT_MS * 2);
      await progress();

      await run.recover();
      const report = await run.finish('coordinator, then bank, SIGSTOPped past the deadlines');
      assertClean(report);
      // Calls in flight while the coordinator was frozen ended without an answer (a Commit's
      // outcome unknown, a Begin's tx never known): never as a definite one.
      const observed = report.summary?.observed;
      assert.ok((observed?.unknown ?? 0) + (observed?.['not-begun'] ?? 0) > 0, `no call timed out while the coordinator was frozen (seed ${seed})`);
    } finally {
      await run.destroy();
    }
  });

  it('refuses a second coordinator on a data directory whose owner is frozen (P14)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const cluster = await ProcessCluster.create({ dir: runDir('single-owner'), banks: 0 });
    const client = new VerdictClient(cluster.address, { callTimeoutMs: DEFAULT_CALL_TIMEOUT_MS });
    const second = new CoordinatorProcess({
      name: 'coordinator-2',
      // Another port: the only thing in its way is the data directory.
      address: `127.0.0.1:${await fixedPort()}`,
      dataDir: cluster.coordinator.dataDir,
      logFile: join(cluster.dir, 'coordinator-2.log'),
    });
    try {
      await cluster.start();
      const { txId } = await client.begin({ timeoutMs: 60_000 });

      cluster.coordinator.pause();
      await assert.rejects(second.start(), /exited before it was ready/);
      const exit = second.exits.at(-1);
      assert.equal(exit?.code, 1, `the second coordinator exits with code 1: ${JSON.stringify(exit)}`);
      assert.match(second.logTail(), /data directory .* is in use by another process/);
      assert.ok(!second.stdout.some((line) => line.startsWith('listening on')), 'the second coordinator never served');

      // The frozen owner kept the directory and still answers once it runs again.
      cluster.coordinator.resume();
      assert.equal((await client.get(txId)).state, 'active');
      const [stopped] = await cluster.stop();
      assert.equal(stopped?.cause, 'stopped');
      rmSync(cluster.dir, { recursive: true, force: true });
    } finally {
      client.close();
      await second.kill().catch(() => undefined);
      await cluster.destroy();
    }
  });
});
