// The demo bank as a participant: it refuses to overdraw (counting debits it already promised),
// applies a commit exactly once with an auditable record, seeds its accounts once, and keeps
// the hold of a transaction in doubt across a restart.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { VerdictClient } from '../../src/client/index.js';
import { Coordinator } from '../../src/coordinator/index.js';
import { Bank, encodeLeg, readLedger, type TransferLeg } from '../../src/demo/index.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { armFailpoint, disarmFailpoint } from '../../src/common/failpoints.js';
import { Participant, type PrepareResult } from '../../src/participant/index.js';
import { tempDir, testLogger, waitFor } from '../support/cluster.js';

const OPENING = 100;

const aborted = (e: unknown): boolean => e instanceof VerdictError && e.code === ErrorCode.TX_ABORTED;

describe('demo bank', () => {
  let dir: ReturnType<typeof tempDir>;
  let coordinator: Coordinator;
  let client: VerdictClient;
  const closers: (() => Promise<void> | void)[] = [];

  beforeEach(async () => {
    dir = tempDir('verdict-bank-');
    coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: join(dir.path, 'coordinator'), logger: testLogger });
    client = new VerdictClient(coordinator.address);
  });

  afterEach(async () => {
    client.close();
    for (const close of closers.splice(0).reverse()) await close();
    await coordinator.close();
    dir.cleanup();
  });

  async function openBank(name: string, accounts = 2): Promise<Bank> {
    const bank = await Bank.start({ name, coordinator: coordinator.address, dataDir: join(dir.path, name), accounts, initialBalance: OPENING, logger: testLogger });
    closers.push(() => bank.close());
    await bank.ready();
    return bank;
  }

  /** A participant that holds its vote until `release()`: keeps a transaction in prepare. */
  async function gate(): Promise<{ release: () => void }> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const participant = await Participant.start({
      name: 'gate',
      coordinator: coordinator.address,
      dataDir: join(dir.path, 'gate'),
      logger: testLogger,
      hooks: {
        prepare: async (): Promise<PrepareResult> => {
          await released;
          return 'yes';
        },
        commit: () => undefined,
        abort: () => undefined,
      },
    });
    closers.push(() => participant.close());
    await participant.ready();
    return { release };
  }

  const leg = (bank: Bank, account: string, delta: number): { participant: string; payload: string } => ({
    participant: bank.name,
    payload: encodeLeg({ account, delta } satisfies TransferLeg),
  });

  it('applies a committed transfer once at each bank and records it for the auditor', async () => {
    const a = await openBank('bank-a');
    const b = await openBank('bank-b');

    const { txId } = await client.transact([leg(a, '1', -30), leg(b, '2', 30)], { waitForCompletion: true });

    const ledgerA = await readLedger(a.participant.store);
    const ledgerB = await readLedger(b.participant.store);
    assert.deepEqual([...ledgerA.balances], [['1', 70], ['2', 100]]);
    assert.deepEqual([...ledgerB.balances], [['1', 100], ['2', 130]]);
    assert.deepEqual([...ledgerA.applied], [[txId, -30]]);
    assert.deepEqual([...ledgerB.applied], [[txId, 30]]);
    assert.deepEqual([...ledgerA.holds, ...ledgerB.holds], []);
    assert.equal(ledgerA.total + ledgerB.total, 4 * OPENING);
    assert.equal(a.balanceOf('1'), 70);
    assert.ok(a.idle && b.idle);
  });

  it('votes NO on an overdraft and on a malformed payload, and nothing is applied', async () => {
    const a = await openBank('bank-a');
    const b = await openBank('bank-b');

    await assert.rejects(client.transact([leg(a, '1', -(OPENING + 1)), leg(b, '1', OPENING + 1)]), aborted);
    await assert.rejects(client.transact([leg(a, '7', -1), leg(b, '1', 1)]), aborted, 'an unknown account');
    await assert.rejects(client.transact([{ participant: a.name, payload: 'not json' }, leg(b, '1', 1)]), aborted);

    await waitFor('both banks to settle', () => a.idle && b.idle);
    for (const bank of [a, b]) {
      const ledger = await readLedger(bank.participant.store);
      assert.deepEqual([...ledger.applied], []);
      assert.deepEqual(ledger.holds, []);
      assert.equal(ledger.total, 2 * OPENING);
    }
  });

  it('counts debits it already promised: a prepared hold makes a second debit vote NO', async () => {
    const a = await openBank('bank-a');
    const b = await openBank('bank-b');
    const { release } = await gate();

    // The first debit is prepared at bank-a and waits on the gate's vote.
    const first = client.transact([leg(a, '1', -80), { participant: 'gate' }]);
    await waitFor('bank-a to hold the first debit', () => a.pending.holds === 1);

    // 100 - 80 promised = 20 available: 50 is refused although the balance is still 100.
    await assert.rejects(client.transact([leg(a, '1', -50), leg(b, '1', 50)]), aborted);
    assert.equal(a.balanceOf('1'), OPENING);

    release();
    await first;
    await waitFor('bank-a to apply the first debit', () => a.idle);
    assert.equal(a.balanceOf('1'), 20);
    assert.equal((await readLedger(a.participant.store)).balances.get('1'), 20);
  });

  it('re-reserves the hold of a transaction in doubt after a restart, then applies its commit', async () => {
    const a = await openBank('bank-a');
    const b = await openBank('bank-b');
    const { release } = await gate();

    const first = client.transact([leg(a, '1', -80), { participant: 'gate' }]);
    await waitFor('bank-a to hold the first debit prepared', () => a.participant.inDoubt().length === 1);
    await a.close();

    const restarted = await openBank('bank-a');
    assert.equal(restarted.participant.inDoubt().length, 1);
    assert.equal(restarted.pending.holds, 1, 'the in-doubt debit is held again');
    await assert.rejects(client.transact([leg(restarted, '1', -50), leg(b, '1', 50)]), aborted);

    release();
    await first;
    await waitFor('the restarted bank to apply the commit', () => restarted.idle);
    assert.equal(restarted.balanceOf('1'), 20);
    const ledger = await readLedger(restarted.participant.store);
    assert.equal(ledger.balances.get('1'), 20);
    assert.equal(ledger.applied.size, 1);
  });

  it('applies a commit once when its hook runs again because its writes were dropped', async () => {
    const a = await openBank('bank-a');
    const b = await openBank('bank-b');
    armFailpoint('participant.after-apply-hook', { kind: 'error', message: 'injected' });
    try {
      await client.transact([leg(a, '1', -30), leg(b, '2', 30)]);
      // Both commit hooks ran and failed after returning: their writes were dropped.
      await waitFor('both commit hooks to have run', () => a.pending.unsettled === 1 && b.pending.unsettled === 1);
    } finally {
      disarmFailpoint('participant.after-apply-hook');
    }
    await waitFor('the retried commits to be durable', () => a.idle && b.idle);

    const ledgerA = await readLedger(a.participant.store);
    assert.equal(ledgerA.balances.get('1'), 70);
    assert.equal(ledgerA.applied.size, 1);
    assert.equal((await readLedger(b.participant.store)).balances.get('2'), 130);
    assert.equal(a.balanceOf('1'), 70);
  });

  it('seeds its accounts once: a restart keeps the balances it had', async () => {
    const a = await openBank('bank-a', 2);
    const b = await openBank('bank-b', 2);
    await client.transact([leg(a, '2', -40), leg(b, '1', 40)], { waitForCompletion: true });
    await waitFor('bank-a to settle', () => a.idle);
    await a.close();

    const again = await openBank('bank-a', 5);
    assert.deepEqual(again.accounts, ['1', '2'], 'the stored accounts win over the option');
    assert.equal(again.balanceOf('2'), 60);
    assert.equal((await readLedger(again.participant.store)).total, 2 * OPENING - 40);
  });
});
