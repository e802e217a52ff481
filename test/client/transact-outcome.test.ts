// transact() against a coordinator process that is SIGKILLed under it: the caller's
// OUTCOME_UNKNOWN names the transaction (the client reserved its id before sending), get(txId)
// after the restart tells the truth, and a retry with the same idempotency key commits the work
// once, across the restart and after the transaction ended.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { VerdictClient } from '../../src/client/client.js';
import { ErrorCode, OutcomeUnknownError } from '../../src/errors.js';
import { CoordinatorProcess, fixedPort } from '../../src/faults/process-cluster.js';
import { Participant } from '../../src/participant/participant.js';
import { Gate, recordingHooks, tempDir, testLogger, uniqueName, waitFor, type HookCall } from '../support/cluster.js';
import { rejection } from '../support/rejection.js';

/** Bound on a coordinator restart and on participants reconnecting to it. */
const RESTART_TIMEOUT_MS = 30_000;
const TX_ID = /^tx-\d+-\d+$/;

describe('transact() across a coordinator SIGKILL', () => {
  const dir = tempDir('verdict-transact-kill-');
  let coordinator: CoordinatorProcess;
  let client: VerdictClient;
  const participants: Participant[] = [];
  const calls = new Map<string, HookCall[]>();
  let gate = new Gate();
  let holding = '';

  before(async () => {
    const address = `127.0.0.1:${await fixedPort()}`;
    coordinator = new CoordinatorProcess({ address, dataDir: join(dir.path, 'coordinator'), logFile: join(dir.path, 'coordinator.log') });
    await coordinator.start();
    client = new VerdictClient(address, { callTimeoutMs: 60_000 });
  });

  after(async () => {
    client?.close();
    for (const p of participants) await p.close();
    if (coordinator?.alive) await coordinator.kill();
    dir.cleanup();
  });

  /** A participant whose prepare hook waits for `gate` while the transaction's payload is `holding`. */
  async function participant(name: string): Promise<HookCall[]> {
    const record: HookCall[] = [];
    calls.set(name, record);
    const recording = recordingHooks('yes', record).hooks;
    const p = await Participant.start({
      name,
      coordinator: coordinator.address,
      dataDir: join(dir.path, name),
      hooks: {
        ...recording,
        prepare: async (txId, payload, ctx) => {
          const vote = await recording.prepare(txId, payload, ctx);
          if (holding !== '' && Buffer.from(payload).toString('utf8') === holding) await gate.wait(ctx.signal);
          return vote;
        },
      },
      protocol: { inquiryIntervalMs: 200 },
      logger: testLogger,
    });
    participants.push(p);
    await p.ready();
    return record;
  }

  async function restart(failpoints?: string): Promise<void> {
    const epochs = participants.map((p) => p.coordinatorEpoch);
    await coordinator.restart(failpoints ? { failpoints } : {});
    // A new incarnation has a higher epoch: every participant must have a session with it.
    await waitFor('participants to reconnect', () => participants.every((p, i) => p.coordinatorEpoch > (epochs[i] ?? 0)), RESTART_TIMEOUT_MS);
  }

  it('names the transaction in OUTCOME_UNKNOWN when the coordinator dies before deciding; get() says aborted after the restart', async () => {
    const [a, b] = [uniqueName('held'), uniqueName('other')];
    const heldCalls = await participant(a);
    await participant(b);
    holding = 'hold-me';
    gate = new Gate();

    const pending = rejection(client.transact([{ participant: a, payload: holding }, { participant: b }]));
    await waitFor('the held prepare', () => heldCalls.some((c) => c.hook === 'prepare' && c.payload === holding));
    const txId = heldCalls.find((c) => c.payload === holding)?.txId;
    const killed = await coordinator.kill('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');

    const e = await pending;
    assert.ok(e instanceof OutcomeUnknownError, `expected OUTCOME_UNKNOWN, got ${e.code}: ${e.message}`);
    assert.equal(e.code, ErrorCode.OUTCOME_UNKNOWN);
    assert.match(e.txId ?? '', TX_ID);
    assert.equal(e.txId, txId, 'the error names another transaction than the one the participants prepared');

    await restart();
    const view = await client.get(e.txId as string);
    assert.equal(view.outcome, 'aborted');
    assert.equal(view.presumed, true);
    // The held participant's late YES finds the abort; it applies it.
    gate.open();
    await waitFor('the held branch to abort', () => heldCalls.some((c) => c.hook === 'abort' && c.txId === txId), RESTART_TIMEOUT_MS);
    assert.ok(!heldCalls.some((c) => c.hook === 'commit' && c.txId === txId));
  });

  it('names the transaction when the coordinator dies right after its COMMIT record; get() says committed and a keyed retry commits nothing twice', async () => {
    const [a, b] = [uniqueName('bank-a'), uniqueName('bank-b')];
    const aCalls = await participant(a);
    const bCalls = await participant(b);
    holding = '';
    await restart('coordinator.after-commit-record=crash');
    const key = `order-${process.pid}-1`;
    const branches = [{ participant: a, payload: 'debit 5' }, { participant: b, payload: 'credit 5' }];

    const e = await rejection(client.transact(branches, { idempotencyKey: key }));
    assert.ok(e instanceof OutcomeUnknownError, `expected OUTCOME_UNKNOWN, got ${e.code}: ${e.message}`);
    assert.match(e.txId ?? '', TX_ID);
    const txId = e.txId as string;
    await waitFor('the coordinator to die at its failpoint', () => !coordinator.alive, RESTART_TIMEOUT_MS);
    assert.equal(coordinator.exits.at(-1)?.signal, 'SIGKILL');

    await restart();
    const view = await waitFor('the recovered decision', async () => {
      const v = await client.get(txId);
      return v.outcome ? v : undefined;
    });
    assert.equal(view.outcome, 'committed');
    assert.equal(view.presumed, false);

    // Another client (as another process of the same initiator would) retries with the key.
    const retrying = new VerdictClient(coordinator.address);
    try {
      const again = await retrying.transact(branches, { idempotencyKey: key });
      assert.deepEqual(again, { txId, outcome: 'committed' });
      await waitFor('both banks to commit', () => [aCalls, bCalls].every((c) => c.some((x) => x.hook === 'commit' && x.txId === txId)), RESTART_TIMEOUT_MS);
      await waitFor('the transaction to end', async () => (await client.get(txId)).state === 'ended', RESTART_TIMEOUT_MS);
      // Ended, and once more after another restart: the key still names the same transaction.
      assert.deepEqual(await retrying.transact(branches, { idempotencyKey: key }), { txId, outcome: 'committed' });
      await restart();
      assert.deepEqual(await retrying.transact(branches, { idempotencyKey: key }), { txId, outcome: 'committed' });
    } finally {
      retrying.close();
    }
    for (const c of [aCalls, bCalls]) {
      assert.equal(c.filter((x) => x.hook === 'prepare').length, 1, 'the work was prepared more than once');
      assert.equal(c.filter((x) => x.hook === 'commit').length, 1, 'the work was committed more than once');
    }
  });
});
