// Bad inputs on the initiator API, sent through the raw generated client (no SDK checks in the
// way): every one is answered with its exact gRPC status and a message that says what is wrong,
// changes nothing (live transactions, counters, log writes, an unrelated transaction's status),
// and the coordinator keeps serving: a normal transaction still commits afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';

import type { CoordinatorStats } from '../../src/coordinator/index.js';
import { Outcome } from '../../src/gen/verdict/v1/common.js';
import { GetTransactionRequest, GetTransactionResponse, TransactionState, type Transaction } from '../../src/gen/verdict/v1/transaction.js';
import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';
import { expectStatus, metadataText, RawTransactions, rawBytesCall } from '../support/raw-grpc.js';

const SMALL_PAYLOAD_LIMIT = 1024;
const SMALL_MESSAGE_LIMIT = 64 * 1024;
const DEFAULT_PAYLOAD_LIMIT = 1024 * 1024;
const MAX_TIMEOUT_MS = 600_000;

const MALFORMED_TX_IDS: readonly [string, string][] = [
  ['empty', ''],
  ['not an id', 'hello'],
  ['over-long', `tx-1-${'1'.repeat(60)}`],
  ['a 16-digit seq', 'tx-1-1234567890123456'],
  ['a newline', 'tx-1-1\n'],
  ['a NUL', 'tx-1-1\u0000'],
  ['a control character', 'tx-\u0007-1'],
  ['a path traversal', '../tx-1-1'],
  ['a slash', 'tx-1-1/../../meta/epoch'],
  ['the sublevel separator', 'tx-1-1!done'],
  ['a leading zero', 'tx-01-1'],
  ['epoch zero', 'tx-0-1'],
  ['a negative seq', 'tx-1--1'],
  ['upper case', 'TX-1-1'],
  ['spaces', ' tx-1-1 '],
];

const INVALID_PARTICIPANT_NAMES: readonly [string, string][] = [
  ['empty', ''],
  ['upper case', 'Alpha'],
  ['too long', 'a'.repeat(65)],
  ['a slash', 'bank/a'],
  ['a path traversal', '../bank'],
  ['the sublevel separator', 'bank!a'],
  ['a NUL', 'bank\u0000'],
  ['a leading dash', '-bank'],
  ['a space', 'bank a'],
];

const bytes = (n: number, fill = 0x61): Buffer => Buffer.alloc(n, fill);

/** What must not change when a bad input is refused. */
interface Snapshot {
  readonly live: number;
  readonly committed: number;
  readonly aborted: number;
  readonly ended: number;
  readonly logWrites: number;
  /** An ended, committed transaction (read from the log). */
  readonly reference: Transaction | undefined;
  /** A live, active transaction that every test leaves alone. */
  readonly bystander: Transaction | undefined;
}

describe('bad inputs on the TransactionService', () => {
  let cluster: TestCluster;
  let raw: RawTransactions;
  let epoch = 0;
  let refTxId = '';
  let bystanderTxId = '';
  const [alpha, beta, refuser] = [uniqueName('alpha'), uniqueName('beta'), uniqueName('refuser')];
  const decided = new Map<string, { outcome: string; reason: string | undefined }>();

  const hooks = (name: string, txId: string): string[] => (cluster.calls.get(name) ?? []).filter((c) => c.txId === txId).map((c) => c.hook);
  const preparesSeen = (): number => [alpha, beta, refuser].reduce((n, p) => n + (cluster.calls.get(p) ?? []).filter((c) => c.hook === 'prepare').length, 0);

  /**
   * Waits until every END record is written. Each transaction of this suite is either a two-phase
   * commit (one forced COMMIT record) or an abort without a forced record, and writes one END
   * record once it ended (lazily, after the answer): the log is idle exactly when
   * writes = committed + ended. A record written for a refused input breaks the equation.
   */
  async function logSettled(): Promise<CoordinatorStats> {
    return waitFor('the decision log to settle (writes = committed + ended)', () => {
      const s = cluster.coordinator.stats;
      return s.log.writes === s.committed + s.ended ? s : undefined;
    });
  }

  async function snapshot(): Promise<Snapshot> {
    const s = await logSettled();
    const reference = (await raw.get(refTxId)).transaction;
    const bystander = (await raw.get(bystanderTxId)).transaction;
    return { live: s.live, committed: s.committed, aborted: s.aborted, ended: s.ended, logWrites: s.log.writes, reference, bystander };
  }

  async function assertUnchanged(before: Snapshot): Promise<void> {
    assert.deepEqual(await snapshot(), before, 'a refused input changed the coordinator');
  }

  /** Commits a normal two-branch transaction and waits until its END record is written. */
  async function assertServing(): Promise<string> {
    const res = await raw.commit({ branches: [{ participant: alpha, payload: bytes(3) }, { participant: beta, payload: bytes(3) }], waitForCompletion: true });
    assert.equal(res.outcome, Outcome.OUTCOME_COMMITTED);
    assert.deepEqual(hooks(alpha, res.txId), ['prepare', 'commit']);
    assert.deepEqual(hooks(beta, res.txId), ['prepare', 'commit']);
    await logSettled();
    return res.txId;
  }

  before(async () => {
    const options = { protocol: { maxPayloadBytes: SMALL_PAYLOAD_LIMIT, retryInitialMs: 60_000 }, maxMessageBytes: SMALL_MESSAGE_LIMIT };
    cluster = await TestCluster.start(options);
    // A second incarnation, so that ids of an earlier epoch exist to be asked about.
    await cluster.coordinator.close();
    await cluster.startCoordinator(options);
    epoch = cluster.coordinator.epoch;
    assert.equal(epoch, 2);
    cluster.coordinator.on('decided', (txId, outcome, reason) => decided.set(txId, { outcome, reason }));
    raw = new RawTransactions(cluster.coordinator.address);
    await cluster.participant(alpha);
    await cluster.participant(beta);
    await cluster.participant(refuser, { vote: 'no', reason: 'not today' });
    refTxId = await assertServing();
    bystanderTxId = (await raw.begin({ timeoutMs: MAX_TIMEOUT_MS })).txId;
  });

  after(async () => {
    raw?.close();
    await cluster?.close();
  });

  it('refuses malformed tx ids on Commit, Abort and GetTransaction with INVALID_ARGUMENT', async () => {
    const before = await snapshot();
    for (const [what, txId] of MALFORMED_TX_IDS) {
      const expected = txId === '' ? /^tx id is empty$/ : /^tx id ".*" is malformed \(expected tx-<epoch>-<seq>\)$/;
      const calls: [string, () => Promise<unknown>][] = [
        ['Abort', () => raw.abort({ txId, reason: 'x' })],
        ['GetTransaction', () => raw.get(txId)],
      ];
      // An empty id on Commit means "one-shot" (see the test of one-shot Commit without branches).
      if (txId !== '') calls.push(['Commit', () => raw.commit({ txId })]);
      for (const [method, call] of calls) {
        const e = await expectStatus(call(), Status.INVALID_ARGUMENT, expected).catch((x: unknown) => {
          throw new Error(`${method} with ${what} id ${JSON.stringify(txId)}: ${(x as Error).message}`);
        });
        assert.equal(metadataText(e, 'verdict-code'), 'INVALID_ARGUMENT');
      }
    }
    // With valid branches a malformed id still prepares nothing.
    const prepares = preparesSeen();
    await expectStatus(raw.commit({ txId: '../tx-2-1', branches: [{ participant: alpha, payload: bytes(1) }] }), Status.INVALID_ARGUMENT, /tx id "\.\.\/tx-2-1" is malformed/);
    assert.equal(preparesSeen(), prepares);
    // The message never echoes an unbounded id.
    const long = await expectStatus(raw.get(`tx-1-${'9'.repeat(5000)}`), Status.INVALID_ARGUMENT, /is malformed/);
    assert.ok(long.details.length < 200, `the message is ${long.details.length} characters long`);
    await assertUnchanged(before);
    await assertServing();
  });

  it('answers NOT_FOUND for well-formed ids this coordinator never issued', async () => {
    const before = await snapshot();
    const futureSeq = `tx-${epoch}-999999`;
    const futureEpoch = `tx-${epoch + 1}-1`;
    const farEpoch = 'tx-999999999999999-1';
    for (const txId of [futureSeq, futureEpoch, farEpoch]) {
      const message = new RegExp(`^transaction ${txId} was never begun by this coordinator$`);
      for (const call of [() => raw.commit({ txId }), () => raw.abort({ txId }), () => raw.get(txId)]) {
        const e = await expectStatus(call(), Status.NOT_FOUND, message);
        assert.equal(metadataText(e, 'verdict-code'), 'TX_NOT_FOUND');
        assert.equal(metadataText(e, 'verdict-tx-id'), txId);
      }
    }
    const prepares = preparesSeen();
    await expectStatus(raw.commit({ txId: futureSeq, branches: [{ participant: alpha, payload: bytes(1) }] }), Status.NOT_FOUND, /never begun/);
    assert.equal(preparesSeen(), prepares, 'Commit of an unknown id with branches prepared something');
    await assertUnchanged(before);
    // The ids stay unknown: nothing was created under them.
    await expectStatus(raw.get(futureSeq), Status.NOT_FOUND, /never begun/);
    await assertServing();
  });

  it('presumes abort for an unknown id of an earlier epoch: GetTransaction ABORTED and presumed, Commit ABORTED', async () => {
    const before = await snapshot();
    const txId = 'tx-1-4242';
    const view = (await raw.get(txId)).transaction;
    assert.equal(view?.txId, txId);
    assert.equal(view?.state, TransactionState.TRANSACTION_STATE_ENDED);
    assert.equal(view?.outcome, Outcome.OUTCOME_ABORTED);
    assert.equal(view?.presumed, true);
    assert.match(view?.reason ?? '', /presumed abort/);
    assert.deepEqual(view?.branches, []);

    const e = await expectStatus(raw.commit({ txId }), Status.ABORTED, new RegExp(`^transaction ${txId} aborted: no decision was recorded \\(presumed abort\\)$`));
    assert.equal(metadataText(e, 'verdict-code'), 'TX_ABORTED');
    assert.equal(metadataText(e, 'verdict-tx-id'), txId);
    assert.equal(metadataText(e, 'verdict-reason-bin'), 'no decision was recorded (presumed abort)');
    const prepares = preparesSeen();
    await expectStatus(raw.commit({ txId, branches: [{ participant: alpha, payload: bytes(1) }] }), Status.ABORTED, /presumed abort/);
    assert.equal(preparesSeen(), prepares, 'a presumed-aborted transaction was prepared');
    // Aborting what is already (presumed) aborted is a harmless no-op.
    assert.deepEqual(await raw.abort({ txId }), { txId, outcome: Outcome.OUTCOME_ABORTED });
    // A presumption is never written down: asking changes nothing, and the answer stays the same.
    await assertUnchanged(before);
    assert.equal((await raw.get(txId)).transaction?.presumed, true);
    await assertServing();
  });

  it('refuses a one-shot Commit without branches with INVALID_ARGUMENT', async () => {
    const before = await snapshot();
    await expectStatus(raw.commit({}), Status.INVALID_ARGUMENT, /^a one-shot commit needs at least one branch$/);
    await expectStatus(raw.commit({ timeoutMs: 1000, waitForCompletion: true }), Status.INVALID_ARGUMENT, /needs at least one branch/);
    await assertUnchanged(before);
    await assertServing();
  });

  it('refuses a participant named in two branches with INVALID_ARGUMENT, one-shot or on a begun transaction', async () => {
    const prepares = preparesSeen();
    const before = await snapshot();
    const twice = [
      { participant: alpha, payload: bytes(1) },
      { participant: beta, payload: bytes(1) },
      { participant: alpha, payload: bytes(2) },
    ];
    await expectStatus(raw.commit({ branches: twice }), Status.INVALID_ARGUMENT, new RegExp(`^participant ${alpha} is named in two branches$`));
    await assertUnchanged(before);

    const { txId } = await raw.begin({ timeoutMs: 10_000 });
    const e = await expectStatus(raw.commit({ txId, branches: twice }), Status.INVALID_ARGUMENT, /named in two branches/);
    assert.equal(metadataText(e, 'verdict-tx-id'), txId);
    // The begun transaction is untouched: still active, no branch, and it can still commit.
    const view = (await raw.get(txId)).transaction;
    assert.equal(view?.state, TransactionState.TRANSACTION_STATE_ACTIVE);
    assert.deepEqual(view?.branches, []);
    assert.equal(preparesSeen(), prepares);
    const ok = await raw.commit({ txId, branches: twice.slice(0, 2), waitForCompletion: true });
    assert.deepEqual(ok, { txId, outcome: Outcome.OUTCOME_COMMITTED });
    await assertServing();
  });

  it('refuses invalid participant names with INVALID_ARGUMENT', async () => {
    const before = await snapshot();
    for (const [what, name] of INVALID_PARTICIPANT_NAMES) {
      const expected = name === '' ? /^participant name is empty$/ : /^participant name ".*" is invalid \(lowercase letters, digits/;
      const e = await expectStatus(raw.commit({ branches: [{ participant: alpha, payload: bytes(1) }, { participant: name, payload: bytes(1) }] }), Status.INVALID_ARGUMENT, expected).catch(
        (x: unknown) => {
          throw new Error(`participant name with ${what} (${JSON.stringify(name)}): ${(x as Error).message}`);
        },
      );
      assert.equal(metadataText(e, 'verdict-code'), 'INVALID_ARGUMENT');
    }
    await assertUnchanged(before);
    // The longest valid name passes validation: the transaction runs and aborts because nobody
    // by that name is connected.
    const longest = 'a'.repeat(64);
    const e = await expectStatus(
      raw.commit({ branches: [{ participant: alpha, payload: bytes(1) }, { participant: longest, payload: bytes(1) }], timeoutMs: 200 }),
      Status.ABORTED,
      new RegExp(`participant ${longest} unavailable$`),
    );
    const txId = metadataText(e, 'verdict-tx-id') ?? '';
    await waitFor('alpha to run its abort hook', () => hooks(alpha, txId).includes('abort'));
    await waitFor('the aborted transaction to end', () => cluster.coordinator.describe(txId) === undefined);
    assert.deepEqual(hooks(alpha, txId), ['prepare', 'abort']);
    await assertServing();
  });

  it('refuses more branches than the limit with INVALID_ARGUMENT', async () => {
    const before = await snapshot();
    const branches = Array.from({ length: 65 }, (_, i) => ({ participant: `p-${i}`, payload: Buffer.alloc(0) }));
    await expectStatus(raw.commit({ branches }), Status.INVALID_ARGUMENT, /^too many branches: 65 \(limit 64\)$/);
    const { txId } = await raw.begin({ timeoutMs: 10_000 });
    await expectStatus(raw.commit({ txId, branches }), Status.INVALID_ARGUMENT, /too many branches: 65 \(limit 64\)/);
    assert.equal((await raw.get(txId)).transaction?.state, TransactionState.TRANSACTION_STATE_ACTIVE);
    await raw.abort({ txId, reason: 'test cleanup' });
    await waitFor('the aborted transaction to end', () => cluster.coordinator.describe(txId) === undefined);
    assert.equal(cluster.coordinator.stats.live, before.live);
    await assertServing();
  });

  it('refuses a branch payload above protocol.maxPayloadBytes with INVALID_ARGUMENT, and accepts one at the limit', async () => {
    const prepares = preparesSeen();
    const before = await snapshot();
    const over = [
      { participant: alpha, payload: bytes(SMALL_PAYLOAD_LIMIT) },
      { participant: beta, payload: bytes(SMALL_PAYLOAD_LIMIT + 1) },
    ];
    const e = await expectStatus(
      raw.commit({ branches: over }),
      Status.INVALID_ARGUMENT,
      new RegExp(`^payload for ${beta} is ${SMALL_PAYLOAD_LIMIT + 1} bytes \\(limit ${SMALL_PAYLOAD_LIMIT}\\)$`),
    );
    assert.equal(metadataText(e, 'verdict-code'), 'INVALID_ARGUMENT');
    assert.equal(preparesSeen(), prepares, 'no branch was prepared, not even the one within the limit');
    await assertUnchanged(before);

    const atLimit = await raw.commit({ branches: [{ participant: alpha, payload: bytes(SMALL_PAYLOAD_LIMIT, 0x62) }, { participant: beta, payload: bytes(1) }], waitForCompletion: true });
    assert.equal(atLimit.outcome, Outcome.OUTCOME_COMMITTED);
    const prepared = cluster.calls.get(alpha)?.find((c) => c.txId === atLimit.txId && c.hook === 'prepare');
    assert.equal(prepared?.payload, 'b'.repeat(SMALL_PAYLOAD_LIMIT));
    await assertServing();
  });

  it('refuses a message above maxMessageBytes with RESOURCE_EXHAUSTED before any handler runs', async () => {
    const prepares = preparesSeen();
    const before = await snapshot();
    const e = await expectStatus(
      raw.commit({ branches: [{ participant: alpha, payload: bytes(SMALL_MESSAGE_LIMIT + 1) }] }),
      Status.RESOURCE_EXHAUSTED,
      new RegExp(`^Received message larger than max \\(\\d+ vs ${SMALL_MESSAGE_LIMIT}\\)$`),
    );
    // grpc-js refuses it itself: no Verdict code attached, since the coordinator never saw it.
    assert.equal(metadataText(e, 'verdict-code'), undefined);
    await expectStatus(raw.get(`tx-${epoch}-${'1'.repeat(SMALL_MESSAGE_LIMIT)}`), Status.RESOURCE_EXHAUSTED, /larger than max/);
    assert.equal(preparesSeen(), prepares);
    await assertUnchanged(before);
    await assertServing();
  });

  it('refuses a timeout above the maximum with INVALID_ARGUMENT, on Begin and on a one-shot Commit', async () => {
    const prepares = preparesSeen();
    const before = await snapshot();
    const outOfRange = (ms: number): RegExp => new RegExp(`^timeout ${ms} ms is out of range \\(0 to ${MAX_TIMEOUT_MS}\\)$`);
    await expectStatus(raw.begin({ timeoutMs: MAX_TIMEOUT_MS + 1 }), Status.INVALID_ARGUMENT, outOfRange(MAX_TIMEOUT_MS + 1));
    await expectStatus(raw.begin({ timeoutMs: 2 ** 32 - 1 }), Status.INVALID_ARGUMENT, outOfRange(2 ** 32 - 1));
    await expectStatus(
      raw.commit({ branches: [{ participant: alpha, payload: bytes(1) }, { participant: beta, payload: bytes(1) }], timeoutMs: MAX_TIMEOUT_MS + 1 }),
      Status.INVALID_ARGUMENT,
      outOfRange(MAX_TIMEOUT_MS + 1),
    );
    assert.equal(preparesSeen(), prepares);
    await assertUnchanged(before);

    // The maximum itself is accepted.
    const begun = await raw.begin({ timeoutMs: MAX_TIMEOUT_MS });
    const deadline = begun.deadlineUnixMs - Date.now();
    assert.ok(deadline > MAX_TIMEOUT_MS - 60_000 && deadline <= MAX_TIMEOUT_MS, `deadline ${deadline} ms away`);
    await raw.abort({ txId: begun.txId });
    await assertServing();
  });

  it('aborts a transaction that passes its deadline before Commit: Commit answers ABORTED with the deadline reason', async () => {
    const { txId } = await raw.begin({ timeoutMs: 50 });
    const reason = 'the transaction passed its deadline before Commit';
    assert.deepEqual(await waitFor('the deadline abort', () => decided.get(txId)), { outcome: 'aborted', reason });
    const e = await expectStatus(raw.commit({ txId, branches: [{ participant: alpha, payload: bytes(1) }] }), Status.ABORTED, new RegExp(`^transaction ${txId} aborted: ${reason}$`));
    assert.equal(metadataText(e, 'verdict-reason-bin'), reason);
    assert.equal(metadataText(e, 'verdict-tx-id'), txId);
    assert.deepEqual(hooks(alpha, txId), [], 'a transaction past its deadline was prepared');
    const view = (await raw.get(txId)).transaction;
    assert.equal(view?.outcome, Outcome.OUTCOME_ABORTED);
    assert.equal(view?.reason, reason);
    assert.equal(view?.presumed, false);
    await assertServing();
  });

  it('answers a repeated Commit on a committed transaction with OK and the same tx id, never re-running a hook', async () => {
    const first = await raw.commit({ branches: [{ participant: alpha, payload: bytes(1) }, { participant: beta, payload: bytes(1) }], waitForCompletion: true });
    const { txId } = first;
    const before = await snapshot();
    for (const req of [{ txId }, { txId, waitForCompletion: true }, { txId, branches: [{ participant: alpha, payload: bytes(1) }] }]) {
      assert.deepEqual(await raw.commit(req), { txId, outcome: Outcome.OUTCOME_COMMITTED });
    }
    assert.deepEqual(hooks(alpha, txId), ['prepare', 'commit']);
    assert.deepEqual(hooks(beta, txId), ['prepare', 'commit']);
    await assertUnchanged(before);
    await assertServing();
  });

  it('refuses to abort a committed transaction with FAILED_PRECONDITION; the outcome stays committed', async () => {
    const { txId } = await raw.commit({ branches: [{ participant: alpha, payload: bytes(1) }, { participant: beta, payload: bytes(1) }], waitForCompletion: true });
    const before = await snapshot();
    const e = await expectStatus(raw.abort({ txId, reason: 'too late' }), Status.FAILED_PRECONDITION, new RegExp(`^transaction ${txId} is committed and cannot be aborted$`));
    assert.equal(metadataText(e, 'verdict-code'), 'WRONG_STATE');
    assert.equal(metadataText(e, 'verdict-tx-id'), txId);
    const view = (await raw.get(txId)).transaction;
    assert.equal(view?.outcome, Outcome.OUTCOME_COMMITTED);
    assert.deepEqual(hooks(alpha, txId), ['prepare', 'commit']);
    await assertUnchanged(before);
    await assertServing();
  });

  it('answers Commit on an aborted transaction with ABORTED and the reason in verdict-reason-bin', async () => {
    // Aborted by the initiator.
    const { txId } = await raw.begin({ timeoutMs: 10_000 });
    assert.deepEqual(await raw.abort({ txId, reason: 'changed plans' }), { txId, outcome: Outcome.OUTCOME_ABORTED });
    const byInitiator = 'aborted by the initiator: changed plans';
    const e1 = await expectStatus(raw.commit({ txId, branches: [{ participant: alpha, payload: bytes(1) }] }), Status.ABORTED, new RegExp(`^transaction ${txId} aborted: ${byInitiator}$`));
    assert.equal(metadataText(e1, 'verdict-code'), 'TX_ABORTED');
    assert.equal(metadataText(e1, 'verdict-tx-id'), txId);
    assert.equal(metadataText(e1, 'verdict-reason-bin'), byInitiator);
    assert.deepEqual(hooks(alpha, txId), []);

    // Aborted by a NO vote: the original reason, again and again.
    const e2 = await expectStatus(raw.commit({ branches: [{ participant: alpha, payload: bytes(1) }, { participant: refuser, payload: bytes(1) }] }), Status.ABORTED, /voted NO: not today/);
    const voted = metadataText(e2, 'verdict-tx-id') ?? '';
    assert.match(voted, /^tx-2-\d+$/);
    const byVote = `participant ${refuser} voted NO: not today`;
    assert.equal(metadataText(e2, 'verdict-reason-bin'), byVote);
    await waitFor('the aborted transaction to end', () => cluster.coordinator.describe(voted) === undefined);
    const before = await snapshot();
    const e3 = await expectStatus(raw.commit({ txId: voted, waitForCompletion: true }), Status.ABORTED, new RegExp(`aborted: ${byVote}$`));
    assert.equal(metadataText(e3, 'verdict-reason-bin'), byVote);
    assert.ok(!hooks(alpha, voted).includes('commit'));
    await assertUnchanged(before);
    await assertServing();
  });

  it('answers malformed protobuf bytes with INTERNAL and keeps serving on the same method', async () => {
    const before = await snapshot();
    const commit = '/verdict.v1.TransactionService/Commit';
    const get = '/verdict.v1.TransactionService/GetTransaction';
    const garbage: readonly Uint8Array[] = [
      Buffer.from([0x0a, 0x05, 0x61]), // field 1, length 5, 1 byte present
      Buffer.from([0x0f]), // field 1 with the invalid wire type 7
      Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]), // field 2 claiming a 4 GiB length
      Buffer.from([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // an unterminated varint
    ];
    for (const [i, b] of garbage.entries()) {
      for (const method of [commit, get]) {
        const answer = await rawBytesCall(cluster.coordinator.address, method, b);
        assert.ok(!Buffer.isBuffer(answer), `garbage #${i} to ${method} was answered as a success`);
        assert.equal(answer.code, Status.INTERNAL, `garbage #${i} to ${method}: ${answer.details}`);
        assert.match(answer.details, /^Error deserializing request/);
      }
    }
    // Bytes that decode but are not valid UTF-8 become a malformed id, not a crash.
    const badUtf8 = Buffer.from([0x0a, 0x06, 0x74, 0x78, 0x2d, 0x32, 0x2d, 0xff]);
    const answer = await rawBytesCall(cluster.coordinator.address, get, badUtf8);
    assert.ok(!Buffer.isBuffer(answer) && answer.code === Status.INVALID_ARGUMENT, 'invalid UTF-8 in an id is INVALID_ARGUMENT');
    // The same raw path still works with well-formed bytes.
    const ok = await rawBytesCall(cluster.coordinator.address, get, GetTransactionRequest.encode({ txId: refTxId }).finish());
    assert.ok(Buffer.isBuffer(ok), `a well-formed request failed: ${Buffer.isBuffer(ok) ? '' : ok.details}`);
    assert.deepEqual(GetTransactionResponse.decode(ok).transaction, before.reference);
    await assertUnchanged(before);
    await assertServing();
  });
});

describe('the live-transaction limit', () => {
  let cluster: TestCluster;
  let raw: RawTransactions;
  const [alpha, beta] = [uniqueName('alpha'), uniqueName('beta')];

  before(async () => {
    cluster = await TestCluster.start({ protocol: { maxLiveTransactions: 2 } });
    raw = new RawTransactions(cluster.coordinator.address);
    await cluster.participant(alpha);
    await cluster.participant(beta);
  });

  after(async () => {
    raw?.close();
    await cluster?.close();
  });

  it('refuses new transactions with RESOURCE_EXHAUSTED at protocol.maxLiveTransactions and recovers below it', async () => {
    const first = await raw.begin({ timeoutMs: 30_000 });
    const second = await raw.begin({ timeoutMs: 30_000 });
    assert.equal(cluster.coordinator.stats.live, 2);
    const branches = [{ participant: alpha, payload: bytes(1) }, { participant: beta, payload: bytes(1) }];

    const e = await expectStatus(raw.begin({ timeoutMs: 30_000 }), Status.RESOURCE_EXHAUSTED, /^too many live transactions \(limit 2\)$/);
    assert.equal(metadataText(e, 'verdict-code'), 'LIMIT_EXCEEDED');
    await expectStatus(raw.commit({ branches }), Status.RESOURCE_EXHAUSTED, /too many live transactions \(limit 2\)/);
    assert.equal(cluster.coordinator.stats.live, 2);
    assert.deepEqual(cluster.calls.get(alpha) ?? [], [], 'a refused transaction was prepared');

    // A transaction already live is not affected by the limit.
    assert.deepEqual(await raw.commit({ txId: first.txId, branches, waitForCompletion: true }), { txId: first.txId, outcome: Outcome.OUTCOME_COMMITTED });
    await waitFor('the committed transaction to end', () => cluster.coordinator.stats.live === 1);
    const third = await raw.begin({ timeoutMs: 30_000 });
    assert.match(third.txId, /^tx-1-3$/, 'the refused requests used no sequence number');
    await expectStatus(raw.begin(), Status.RESOURCE_EXHAUSTED, /too many live/);

    await raw.abort({ txId: second.txId });
    await raw.abort({ txId: third.txId });
    await waitFor('the aborted transactions to end', () => cluster.coordinator.stats.live === 0);
    const ok = await raw.commit({ branches, waitForCompletion: true });
    assert.equal(ok.outcome, Outcome.OUTCOME_COMMITTED);
    assert.deepEqual(
      (cluster.calls.get(beta) ?? []).map((c) => c.hook),
      ['prepare', 'commit', 'prepare', 'commit'],
    );
  });
});

describe('the default payload limit', () => {
  let cluster: TestCluster;
  let raw: RawTransactions;
  const [alpha, beta] = [uniqueName('alpha'), uniqueName('beta')];

  before(async () => {
    cluster = await TestCluster.start();
    raw = new RawTransactions(cluster.coordinator.address);
    await cluster.participant(alpha);
    await cluster.participant(beta);
  });

  after(async () => {
    raw?.close();
    await cluster?.close();
  });

  it('refuses a branch payload of 1 MiB + 1 byte with INVALID_ARGUMENT and commits one of exactly 1 MiB', async () => {
    const small = { participant: alpha, payload: bytes(1) };
    await expectStatus(raw.commit({ branches: [small, { participant: beta, payload: bytes(DEFAULT_PAYLOAD_LIMIT + 1) }] }), Status.INVALID_ARGUMENT, new RegExp(`^payload for ${beta} is ${DEFAULT_PAYLOAD_LIMIT + 1} bytes \\(limit ${DEFAULT_PAYLOAD_LIMIT}\\)$`));
    assert.equal(cluster.coordinator.stats.live, 0);
    assert.deepEqual(cluster.calls.get(beta) ?? [], []);

    const ok = await raw.commit({ branches: [small, { participant: beta, payload: bytes(DEFAULT_PAYLOAD_LIMIT) }], waitForCompletion: true });
    assert.equal(ok.outcome, Outcome.OUTCOME_COMMITTED);
    const prepared = cluster.calls.get(beta)?.find((c) => c.hook === 'prepare');
    assert.equal(prepared?.payload?.length, DEFAULT_PAYLOAD_LIMIT);
  });
});
