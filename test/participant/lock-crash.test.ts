// An in-doubt transaction's locks survive a SIGKILL: a bank process (the demo bank, which locks
// the account in prepare) prepares a debit while the other branch holds the transaction open;
// the bank is SIGKILLed and restarted; a new transaction on the same account gets NO (`lock
// conflict`) until the first one's outcome is applied, and then commits.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { VerdictClient } from '../../src/client/index.js';
import { encodeLeg } from '../../src/demo/bank.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { ProcessCluster, poll } from '../../src/faults/process-cluster.js';
import { isLockConflictAbort } from '../../src/participant/lock-manager.js';
import { Participant } from '../../src/participant/index.js';
import { Gate, tempDir, testLogger } from '../support/cluster.js';

const TX_TIMEOUT_MS = 60_000;

describe('locks across a participant crash', () => {
  const dir = tempDir('verdict-lock-crash-');
  let cluster: ProcessCluster | undefined;
  let client: VerdictClient | undefined;
  let holder: Participant | undefined;
  after(async () => {
    client?.close();
    await holder?.close();
    await cluster?.destroy();
    dir.cleanup();
  });

  it('keeps an in-doubt transaction\'s lock across SIGKILL and restart, refuses a second transaction on the key until the outcome is applied, then commits it', { timeout: 120_000 }, async () => {
    cluster = await ProcessCluster.create({ dir: dir.path, banks: 1, accountsPerBank: 2, initialBalance: 100 });
    await cluster.start();
    const bank = cluster.banks[0]!;
    // The other branch: its prepare holds the first transaction open until the test says so.
    const gate = new Gate();
    holder = await Participant.start({
      name: 'holder',
      coordinator: cluster.address,
      dataDir: join(dir.path, 'holder'),
      logger: testLogger,
      hooks: {
        prepare: async (_txId, payload, { signal }) => {
          if (Buffer.from(payload).toString() === 'hold') await gate.wait(signal);
          return 'yes' as const;
        },
        commit: () => undefined,
        abort: () => undefined,
      },
    });
    await holder.ready();
    client = new VerdictClient(cluster.address);
    const c = client;
    const debit = (amount: number, held: boolean, waitForCompletion = false): Promise<unknown> =>
      c.transact(
        [
          { participant: bank.name, payload: encodeLeg({ account: '1', delta: -amount }) },
          { participant: 'holder', payload: held ? 'hold' : 'go' },
        ],
        { timeoutMs: TX_TIMEOUT_MS, callTimeoutMs: TX_TIMEOUT_MS, waitForCompletion },
      );

    const first = debit(5, true);
    first.catch(() => undefined);
    await poll('the bank to hold the first debit prepared', 10_000, async () => (await bank.status()).inDoubt === 1);

    await bank.kill('SIGKILL');
    await bank.restart();
    await cluster.waitConnected();
    assert.equal((await bank.status()).inDoubt, 1, 'still in doubt after the restart');

    // The account is locked by the in-doubt transaction: NO, lock conflict (twice, to be sure
    // the refusal did not release anything).
    for (let i = 0; i < 2; i++) {
      await assert.rejects(debit(1, false), (e: unknown) => {
        assert.ok(e instanceof VerdictError && e.code === ErrorCode.TX_ABORTED, String(e));
        assert.ok(isLockConflictAbort(e), `aborted for another reason: ${e.reason}`);
        return true;
      });
    }

    gate.open();
    await first;
    await poll('the bank to apply the first debit', 10_000, async () => (await bank.status()).inDoubt === 0 && (bank.finished.size ?? 0) > 0);

    // Until the bank acknowledged: the banks are stopped next, and a commit still on its way would
    // be left in doubt.
    await debit(1, false, true);
    await cluster.stop();
    const state = (await cluster.readDurableState()).get(bank.name)!;
    assert.equal(state.ledger.balances.get('1'), 94, 'both debits applied once');
    assert.equal(state.prepared.length, 0);
    assert.equal(state.ledger.holds.length, 0);
  });
});
