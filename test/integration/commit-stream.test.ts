// CommitStream: many Commit calls multiplexed on one initiator stream. Through VerdictClient with
// `streamCommits`, every call gets exactly what the unary Commit would have answered (same error
// classes, codes and messages), answers made together leave together, a bad call fails alone, and
// a call whose answer cannot come any more (per-call deadline, coordinator shutdown, client
// close) fails with OUTCOME_UNKNOWN while its transaction carries on. Through the raw generated
// client, the frames the SDK never sends: a call without a request, a call id reused while in
// flight, a half-close with calls in flight, a frame above the message limit, too many calls.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';

import { VerdictClient } from '../../src/client/index.js';
import { DEFAULT_MAX_MESSAGE_BYTES, type CoordinatorOptions } from '../../src/coordinator/index.js';
import { MAX_CALLS_PER_STREAM } from '../../src/coordinator/commit-streams.js';
import { ErrorCode, OutcomeUnknownError, TransactionAbortedError } from '../../src/errors.js';
import { Outcome } from '../../src/gen/verdict/v1/common.js';
import { TransactionState } from '../../src/gen/verdict/v1/transaction.js';
import type { ParticipantHooks } from '../../src/participant/index.js';
import { freePort, Gate, recordingHooks, TestCluster, uniqueName, waitFor, type HookCall } from '../support/cluster.js';
import { RawTransactions } from '../support/raw-grpc.js';
import { rejection } from '../support/rejection.js';

/** The payload whose prepare a held participant keeps waiting at its gate. */
const HELD = 'held';
const BURST_SIZE = 200;
const CALL_TIMEOUT_MS = 300;
const SMALL_MESSAGE_LIMIT = 64 * 1024;

const bytes = (n: number, fill = 0x61): Buffer => Buffer.alloc(n, fill);

/** Recording hooks whose prepare of a `HELD` payload waits until `gate` opens. */
function heldHooks(calls: HookCall[], gate: () => Gate): ParticipantHooks {
  const rec = recordingHooks('yes', calls).hooks;
  return {
    ...rec,
    prepare: async (txId, payload, ctx) => {
      const vote = await rec.prepare(txId, payload, ctx);
      if (Buffer.from(payload).toString('utf8') === HELD) await gate().wait(ctx.signal);
      return vote;
    },
  };
}

/** The VerdictError a promise rejects with (fails the test when it resolves). */
/** The hooks `name` ran for `txId`, in order. */
const hooksFor = (calls: readonly HookCall[] | undefined, txId: string): string[] => (calls ?? []).filter((c) => c.txId === txId).map((c) => c.hook);

describe('commits over a CommitStream (VerdictClient streamCommits)', () => {
  let cluster: TestCluster;
  let client: VerdictClient;
  let options: Partial<CoordinatorOptions>;
  let gate: Gate;

  beforeEach(async () => {
    // A fixed port, so that a restarted coordinator is found by the same client.
    options = { listen: `127.0.0.1:${await freePort()}`, protocol: { retryInitialMs: 20, retryMaxMs: 200 } };
    cluster = await TestCluster.start(options);
    client = new VerdictClient(cluster.coordinator.address, { streamCommits: true });
    gate = new Gate();
  });

  afterEach(async () => {
    gate.open();
    client.close();
    await cluster.close();
  });

  /** A participant whose prepare of a `HELD` payload waits for this test's gate. */
  async function heldParticipant(name: string): Promise<HookCall[]> {
    const calls = cluster.callsOf(name);
    await cluster.participant(name, 'yes', { hooks: heldHooks(calls, () => gate) });
    return calls;
  }

  it('commits a burst of one-shot transactions on one stream, each answer to its own call, in fewer frames than answers', async () => {
    const names = [uniqueName('burst-a'), uniqueName('burst-b'), uniqueName('burst-c')];
    for (const name of names) await cluster.participant(name);
    assert.deepEqual(cluster.coordinator.stats.commitStreams, { opened: 0, framesOut: 0, resultsOut: 0 });

    // Issued in one turn: the client sends them as one frame.
    const results = await Promise.all(
      Array.from({ length: BURST_SIZE }, (_, i) => client.transact(names.map((participant) => ({ participant, payload: `call ${i}` })))),
    );
    const txIds = results.map((r) => r.txId);
    assert.ok(results.every((r) => r.outcome === 'committed'));
    assert.equal(new Set(txIds).size, BURST_SIZE, 'two calls were answered with the same transaction');

    for (const name of names) {
      const calls = cluster.callsOf(name);
      await waitFor(`${name} to run ${BURST_SIZE} commit hooks`, () => calls.filter((c) => c.hook === 'commit').length >= BURST_SIZE);
      // Exactly one prepare and one commit per transaction, and each answer names the
      // transaction its own call began (its payload says which call that was).
      assert.equal(calls.length, 2 * BURST_SIZE, `${name} ran ${calls.length} hooks`);
      txIds.forEach((txId, i) => {
        assert.deepEqual(
          calls.filter((c) => c.txId === txId),
          [
            { hook: 'prepare', txId, payload: `call ${i}` },
            { hook: 'commit', txId },
          ],
        );
      });
    }

    const stats = cluster.coordinator.stats.commitStreams;
    assert.equal(stats.opened, 1, 'every call shared one stream');
    assert.equal(stats.resultsOut, BURST_SIZE);
    // Answers given in one event-loop turn share a frame: 200 calls arriving in one frame, whose
    // decisions become durable in group-committed batches, cannot need one frame each.
    assert.ok(stats.framesOut >= 1 && stats.framesOut < BURST_SIZE, `${stats.framesOut} frames for ${BURST_SIZE} answers`);
  });

  it('commits an interactive transaction begun with a unary Begin, with a participant that enlisted', async () => {
    const [enlisted, named] = [uniqueName('enlisted'), uniqueName('named')];
    const pe = await cluster.participant(enlisted);
    const pn = await cluster.participant(named);

    const begun = await client.begin({ timeoutMs: 10_000 });
    const { txId } = begun;
    await pe.participant.enlist(begun, Buffer.from('work of enlisted'));
    assert.equal(cluster.coordinator.stats.commitStreams.opened, 0, 'Begin is unary');

    const result = await client.commit(txId, [{ participant: named, payload: 'work of named' }], { waitForCompletion: true });
    assert.deepEqual(result, { txId, outcome: 'committed' });
    assert.deepEqual(pe.calls, [
      { hook: 'prepare', txId, payload: 'work of enlisted' },
      { hook: 'commit', txId },
    ]);
    assert.deepEqual(pn.calls, [
      { hook: 'prepare', txId, payload: 'work of named' },
      { hook: 'commit', txId },
    ]);
    assert.deepEqual(cluster.coordinator.stats.commitStreams, { opened: 1, framesOut: 1, resultsOut: 1 });
    const view = await client.get(txId);
    assert.equal(view.state, 'ended');
    assert.equal(view.outcome, 'committed');

    // Repeated on the stream: the logged outcome, nothing run twice.
    assert.deepEqual(await client.commit(txId), { txId, outcome: 'committed' });
    assert.equal(pe.calls.length, 2);
    assert.equal(pn.calls.length, 2);
    assert.equal(cluster.coordinator.stats.commitStreams.opened, 1);
  });

  it('rejects the call of a transaction refused by a NO vote with TX_ABORTED and its reason; the rest of the burst commits', async () => {
    const [a, b, refuser] = [uniqueName('yes-a'), uniqueName('yes-b'), uniqueName('refuser')];
    await cluster.participant(a);
    await cluster.participant(b);
    const { calls: refuserCalls } = await cluster.participant(refuser, { vote: 'no', reason: 'insufficient funds' });

    const refusedIndex = 4;
    const settled = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        client.transact(i === refusedIndex ? [{ participant: a }, { participant: refuser }] : [{ participant: a }, { participant: b }]).then(
          (r) => r,
          (e: unknown) => e,
        ),
      ),
    );

    const refusedTxId = refuserCalls.find((c) => c.hook === 'prepare')?.txId ?? '';
    assert.match(refusedTxId, /^tx-\d+-\d+$/);
    const refused = settled[refusedIndex];
    assert.ok(refused instanceof TransactionAbortedError, `expected TransactionAbortedError, got ${String(refused)}`);
    assert.equal(refused.code, ErrorCode.TX_ABORTED);
    assert.equal(refused.retryable, false);
    assert.equal(refused.txId, refusedTxId);
    assert.equal(refused.reason, `participant ${refuser} voted NO: insufficient funds`);

    const committed = settled.filter((_, i) => i !== refusedIndex);
    for (const r of committed) assert.equal((r as { outcome?: string }).outcome, 'committed', `expected a commit, got ${String(r)}`);
    assert.equal(new Set(committed.map((r) => (r as { txId: string }).txId)).size, committed.length);

    await waitFor('a to abort the refused transaction', () => hooksFor(cluster.calls.get(a), refusedTxId).includes('abort'));
    assert.deepEqual(hooksFor(cluster.calls.get(a), refusedTxId), ['prepare', 'abort']);
    assert.equal(cluster.coordinator.stats.commitStreams.opened, 1);
  });

  it('fails a bad call alone with the unary error (same class, code, message and tx id); the stream keeps serving', async () => {
    const [a, b] = [uniqueName('good-a'), uniqueName('good-b')];
    await cluster.participant(a);
    await cluster.participant(b);
    const neverIssued = `tx-${cluster.coordinator.epoch}-999999`;
    const cases: [string, (c: VerdictClient) => Promise<unknown>, ErrorCode, RegExp][] = [
      ['a malformed tx id', (c) => c.commit('../tx-1-1', [{ participant: a }]), ErrorCode.INVALID_ARGUMENT, /^tx id "\.\.\/tx-1-1" is malformed \(expected tx-<epoch>-<seq>\)$/],
      ['a tx id that is not one', (c) => c.commit('hello'), ErrorCode.INVALID_ARGUMENT, /^tx id "hello" is malformed/],
      ['a tx id never issued', (c) => c.commit(neverIssued), ErrorCode.TX_NOT_FOUND, new RegExp(`^transaction ${neverIssued} was never begun by this coordinator$`)],
      ['a one-shot commit without branches', (c) => c.transact([]), ErrorCode.INVALID_ARGUMENT, /^a one-shot commit needs at least one branch$/],
      [
        'a participant named twice',
        (c) => c.transact([{ participant: a }, { participant: b }, { participant: a, payload: 'again' }]),
        ErrorCode.INVALID_ARGUMENT,
        new RegExp(`^participant ${a} is named in two branches$`),
      ],
    ];

    let good = 0;
    for (const [what, call, code, message] of cases) {
      const viaStream = await rejection(call(client));
      const viaUnary = await rejection(call(cluster.client));
      assert.equal(viaStream.code, code, `${what}: ${viaStream.message}`);
      assert.match(viaStream.message, message, what);
      assert.equal(viaStream.name, viaUnary.name, what);
      assert.equal(viaStream.code, viaUnary.code, what);
      assert.equal(viaStream.message, viaUnary.message, what);
      // A one-shot call names its transaction before it sends (each client its own reserved id);
      // one refused before it was sent names none.
      assert.equal(viaStream.txId === undefined, viaUnary.txId === undefined, what);
      if (viaStream.txId !== undefined && viaUnary.txId !== undefined && what === 'a participant named twice') assert.notEqual(viaStream.txId, viaUnary.txId, what);
      assert.equal(viaStream.retryable, false, what);

      const ok = await client.transact([{ participant: a }, { participant: b }]);
      assert.equal(ok.outcome, 'committed', `after ${what}`);
      good++;
      assert.equal(cluster.coordinator.stats.commitStreams.opened, 1, `after ${what}: a bad call broke the stream`);
    }
    // Nothing was prepared for a refused call.
    assert.equal(cluster.callsOf(a).filter((c) => c.hook === 'prepare').length, good);
    assert.equal(cluster.callsOf(b).filter((c) => c.hook === 'prepare').length, good);
  });

  it('fails a call past its callTimeoutMs with OUTCOME_UNKNOWN while its transaction goes on to commit', async () => {
    const [held, other] = [uniqueName('held'), uniqueName('other')];
    const heldCalls = await heldParticipant(held);
    await cluster.participant(other);
    const { txId } = await client.begin({ timeoutMs: 10_000 });

    const startedAt = Date.now();
    const e = await rejection(client.commit(txId, [{ participant: held, payload: HELD }, { participant: other }], { callTimeoutMs: CALL_TIMEOUT_MS }));
    assert.ok(e instanceof OutcomeUnknownError, `expected OutcomeUnknownError, got ${e.name}`);
    assert.equal(e.code, ErrorCode.OUTCOME_UNKNOWN);
    assert.equal(e.retryable, true);
    assert.equal(e.txId, txId);
    assert.ok(Date.now() - startedAt >= CALL_TIMEOUT_MS - 10, 'gave up before the deadline');

    // Only the caller gave up: the transaction waits for the held vote.
    await waitFor('the held prepare', () => heldCalls.length === 1);
    assert.equal(cluster.coordinator.describe(txId)?.state, 'preparing');
    assert.equal(cluster.coordinator.stats.commitStreams.resultsOut, 0);

    gate.open();
    const view = await waitFor('the transaction to end', async () => {
      const v = await client.get(txId);
      return v.state === 'ended' ? v : undefined;
    });
    assert.equal(view.outcome, 'committed');
    assert.deepEqual(hooksFor(heldCalls, txId), ['prepare', 'commit']);

    // The late answer still went out on the stream (and was dropped); the stream serves on.
    await waitFor('the late answer', () => cluster.coordinator.stats.commitStreams.resultsOut === 1);
    assert.equal((await client.transact([{ participant: held }, { participant: other }])).outcome, 'committed');
    assert.equal(cluster.coordinator.stats.commitStreams.opened, 1);
  });

  it('fails the calls in flight with OUTCOME_UNKNOWN when the coordinator closes, and opens a new stream to its next incarnation', async () => {
    const [held, other] = [uniqueName('held'), uniqueName('other')];
    const heldCalls = await heldParticipant(held);
    await cluster.participant(other);
    const { txId } = await client.begin({ timeoutMs: 10_000 });

    const interactive = rejection(client.commit(txId, [{ participant: held, payload: HELD }, { participant: other }]));
    const oneShot = rejection(client.transact([{ participant: held, payload: HELD }, { participant: other }]));
    await waitFor('both prepares to be held', () => heldCalls.filter((c) => c.hook === 'prepare').length === 2);

    const first = cluster.coordinator;
    await first.close();
    const [e1, e2] = await Promise.all([interactive, oneShot]);
    for (const e of [e1, e2]) {
      assert.ok(e instanceof OutcomeUnknownError, `expected OutcomeUnknownError, got ${e.name}: ${e.message}`);
      assert.equal(e.code, ErrorCode.OUTCOME_UNKNOWN);
      assert.equal(e.retryable, true);
      // Answered by the coordinator before it ended the stream, not guessed from the stream's end.
      assert.match(e.message, /coordinator shut down before answering/);
    }
    assert.equal(e1.txId, txId);
    assert.deepEqual(first.stats.commitStreams, { opened: 1, framesOut: 1, resultsOut: 2 });

    const second = await cluster.startCoordinator(options);
    for (const name of [held, other]) {
      await waitFor(`${name} to reconnect`, () => cluster.participants.get(name)?.coordinatorEpoch === second.epoch);
    }
    const result = await client.transact([{ participant: held }, { participant: other }]);
    assert.equal(result.outcome, 'committed');
    assert.equal(second.stats.commitStreams.opened, 1, 'the client opened a new stream');
    // The interrupted transaction had no decision: the new incarnation presumes it aborted.
    const view = await client.get(txId);
    assert.equal(view.outcome, 'aborted');
    assert.equal(view.presumed, true);
  });

  it('fails the calls in flight with OUTCOME_UNKNOWN on client.close(), and any later call with UNAVAILABLE', async () => {
    const [held, other] = [uniqueName('held'), uniqueName('other')];
    const heldCalls = await heldParticipant(held);
    const { calls: otherCalls } = await cluster.participant(other);
    const { txId } = await client.begin({ timeoutMs: 10_000 });

    const pending = rejection(client.commit(txId, [{ participant: held, payload: HELD }, { participant: other }]));
    await waitFor('the held prepare', () => heldCalls.length === 1);
    client.close();
    const e = await pending;
    assert.ok(e instanceof OutcomeUnknownError, `expected OutcomeUnknownError, got ${e.name}: ${e.message}`);
    assert.equal(e.code, ErrorCode.OUTCOME_UNKNOWN);
    assert.equal(e.retryable, true);
    assert.equal(e.txId, txId);

    const later = await rejection(client.transact([{ participant: other }]));
    assert.equal(later.code, ErrorCode.UNAVAILABLE);
    assert.ok(!(later instanceof OutcomeUnknownError), 'a call never sent has no unknown outcome');
    assert.equal(otherCalls.filter((c) => c.hook === 'prepare').length, 1, 'a call after close() reached a participant');

    // The transaction does not depend on its caller: it commits once the vote comes.
    gate.open();
    const view = await waitFor('the transaction to end', async () => {
      const v = await cluster.client.get(txId);
      return v.state === 'ended' ? v : undefined;
    });
    assert.equal(view.outcome, 'committed');
    assert.deepEqual(hooksFor(heldCalls, txId), ['prepare', 'commit']);
  });
  it('sends a call too large for a frame as a unary call: it fails alone with LIMIT_EXCEEDED, the stream and its calls go on', async () => {
    const [held, other] = [uniqueName('held'), uniqueName('other')];
    const heldCalls = await heldParticipant(held);
    await cluster.participant(other);
    const { txId } = await client.begin({ timeoutMs: 10_000 });
    const inFlight = client.commit(txId, [{ participant: held, payload: HELD }, { participant: other }]);
    await waitFor('the held prepare', () => heldCalls.length === 1);
    const tooBig = await rejection(client.transact([{ participant: other, payload: bytes(DEFAULT_MAX_MESSAGE_BYTES + 1) }]));
    assert.equal(tooBig.code, ErrorCode.LIMIT_EXCEEDED, tooBig.message);
    gate.open();
    assert.deepEqual(await inFlight, { txId, outcome: 'committed' });
    assert.equal(cluster.coordinator.stats.commitStreams.opened, 1, 'the stream was never broken');
  });

  it('fails a call in flight with OUTCOME_UNKNOWN when the stream breaks (here RESOURCE_EXHAUSTED), although its transaction commits', async () => {
    // A client whose frames may exceed what the coordinator accepts: a large call breaks the stream under the first.
    const unwise = new VerdictClient(cluster.coordinator.address, { streamCommits: true, streamFrameBytes: 2 * DEFAULT_MAX_MESSAGE_BYTES });
    try {
      const [held, other] = [uniqueName('held'), uniqueName('other')];
      const heldCalls = await heldParticipant(held);
      await cluster.participant(other);
      const { txId } = await unwise.begin({ timeoutMs: 10_000 });
      const inFlight = rejection(unwise.commit(txId, [{ participant: held, payload: HELD }, { participant: other }]));
      await waitFor('the held prepare', () => heldCalls.length === 1);
      const oversized = rejection(unwise.transact([{ participant: other, payload: bytes(DEFAULT_MAX_MESSAGE_BYTES + 1) }]));
      const [e, tooBig] = await Promise.all([inFlight, oversized]);
      assert.equal(tooBig.code, ErrorCode.OUTCOME_UNKNOWN, tooBig.message);
      assert.match(e.message, /commit stream failed \(.*larger than max.*\); the outcome is unknown/);

      gate.open();
      await waitFor('the transaction to end', async () => (await unwise.get(txId)).state === 'ended');
      assert.equal((await unwise.get(txId)).outcome, 'committed');
      // It committed: the caller must not be told to retry as if nothing had happened.
      assert.equal(e.code, ErrorCode.OUTCOME_UNKNOWN, `got ${e.code} (retryable ${e.retryable}): ${e.message}`);
      // The next call opens a new stream.
      assert.equal((await unwise.transact([{ participant: other }])).outcome, 'committed');
    } finally {
      unwise.close();
    }
  });
});

describe('CommitStream frames under a small maxMessageBytes', () => {
  it('splits a burst of calls over frames of at most streamFrameBytes, so a coordinator with a small message limit answers them all', async () => {
    const small = await TestCluster.start({ maxMessageBytes: 16 * 1024 });
    const client = new VerdictClient(small.coordinator.address, { streamCommits: true, streamFrameBytes: 8 * 1024 });
    try {
      const [a, b] = [uniqueName('frames-a'), uniqueName('frames-b')];
      await small.participant(a);
      await small.participant(b);
      // About 300 × 150 bytes: three times the coordinator's limit in one turn.
      const results = await Promise.all(
        Array.from({ length: 300 }, () => client.transact([{ participant: a, payload: bytes(100) }, { participant: b }])),
      );
      assert.equal(new Set(results.map((r) => r.txId)).size, 300);
      assert.equal(small.coordinator.stats.commitStreams.opened, 1, 'the stream never broke');
    } finally {
      client.close();
      await small.close();
    }
  });

  it('refuses a streamFrameBytes below 1024 with INVALID_ARGUMENT', () => {
    assert.throws(() => new VerdictClient('127.0.0.1:1', { streamCommits: true, streamFrameBytes: 100 }), { code: ErrorCode.INVALID_ARGUMENT, message: /streamFrameBytes must be an integer of at least 1024, got 100/ });
  });
});

describe('bad frames on a raw CommitStream', () => {
  let cluster: TestCluster;
  let raw: RawTransactions;
  let gate: Gate;
  const [alpha, beta, holder] = [uniqueName('alpha'), uniqueName('beta'), uniqueName('holder')];
  const good = (): { branches: { participant: string; payload: Buffer }[] } => ({
    branches: [
      { participant: alpha, payload: bytes(1) },
      { participant: beta, payload: bytes(1) },
    ],
  });
  const held = (): { branches: { participant: string; payload: Buffer }[] } => ({
    branches: [
      { participant: holder, payload: Buffer.from(HELD) },
      { participant: alpha, payload: bytes(1) },
    ],
  });
  const heldPrepares = (): HookCall[] => cluster.callsOf(holder).filter((c) => c.hook === 'prepare');

  /** A unary Commit still commits: the coordinator is serving. */
  async function assertServing(): Promise<void> {
    const res = await raw.commit(good());
    assert.equal(res.outcome, Outcome.OUTCOME_COMMITTED);
  }

  beforeEach(async () => {
    gate = new Gate();
    cluster = await TestCluster.start();
    raw = new RawTransactions(cluster.coordinator.address);
    await cluster.participant(alpha);
    await cluster.participant(beta);
    await cluster.participant(holder, 'yes', { hooks: heldHooks(cluster.callsOf(holder), () => gate) });
  });

  afterEach(async () => {
    gate.open();
    raw.close();
    await cluster.close();
  });

  it('answers a call without a request with a per-call INVALID_ARGUMENT, and answers the next call', async () => {
    const s = raw.commitStream();
    s.send({ callId: 1 });
    const bad = await s.resultFor(1);
    assert.equal(bad.committed, undefined);
    assert.deepEqual(bad.error, { grpcStatus: Status.INVALID_ARGUMENT, message: 'call 1 carries no request', code: 'INVALID_ARGUMENT', txId: '', reason: '' });

    s.send({ callId: 2, request: good() });
    const ok = await s.resultFor(2);
    assert.equal(ok.error, undefined);
    assert.equal(ok.committed?.outcome, Outcome.OUTCOME_COMMITTED);
    assert.match(ok.committed?.txId ?? '', /^tx-1-\d+$/);
    // An id whose call was answered is free again.
    s.send({ callId: 1, request: good() });
    assert.equal((await s.resultFor(1, 2)).committed?.outcome, Outcome.OUTCOME_COMMITTED, 'the answered id 1 could not be reused');
    assert.equal(s.results.length, 3);

    assert.equal(s.ended, false);
    assert.equal((await s.end()).code, Status.OK);
  });

  it('fails the whole stream with INVALID_ARGUMENT naming the call id when an id in flight is reused; the coordinator serves on', async () => {
    const s = raw.commitStream();
    s.send({ callId: 7, request: held() });
    const txId = (await waitFor('the held prepare', () => heldPrepares()[0])).txId;
    s.send({ callId: 7, request: good() });
    const status = await s.final();
    assert.equal(status.code, Status.INVALID_ARGUMENT);
    assert.equal(status.details, 'call id 7 is already in flight on this stream');
    assert.deepEqual(s.results, [], 'a call was answered on a broken stream');
    // The second call was never started.
    assert.equal(cluster.callsOf(beta).length, 0);

    // The same within one frame.
    const t = raw.commitStream();
    t.send({ callId: 3, request: held() }, { callId: 3, request: good() });
    const again = await t.final();
    assert.equal(again.code, Status.INVALID_ARGUMENT);
    assert.equal(again.details, 'call id 3 is already in flight on this stream');
    assert.deepEqual(t.results, []);

    await assertServing();
    // The first call's transaction does not depend on the stream: it commits once the vote comes.
    gate.open();
    await waitFor('the held transaction to end', async () => (await raw.get(txId)).transaction?.state === TransactionState.TRANSACTION_STATE_ENDED);
    assert.equal((await raw.get(txId)).transaction?.outcome, Outcome.OUTCOME_COMMITTED);
  });

  it('on a half-close, answers the calls still in flight and then ends the stream with OK', async () => {
    const s = raw.commitStream();
    s.send({ callId: 1, request: held() }, { callId: 2 });
    const txId = (await waitFor('the held prepare', () => heldPrepares()[0])).txId;
    await s.resultFor(2);
    s.call.end();
    // A round trip to the coordinator while the call is held: the stream must stay open.
    assert.equal((await raw.get(txId)).transaction?.state, TransactionState.TRANSACTION_STATE_PREPARING);
    assert.equal(s.ended, false, 'the stream ended with a call unanswered');

    gate.open();
    const answer = await s.resultFor(1);
    assert.deepEqual(answer.committed, { txId, outcome: Outcome.OUTCOME_COMMITTED });
    const status = await s.final();
    assert.equal(status.code, Status.OK, status.details);
    assert.deepEqual(
      s.results.map((r) => r.callId),
      [2, 1],
    );

    // Nothing in flight: a half-close ends the stream at once.
    const empty = raw.commitStream();
    assert.equal((await empty.end()).code, Status.OK);
    assert.deepEqual(empty.frames, []);
  });

  it(`answers call ${MAX_CALLS_PER_STREAM + 1} in flight with LIMIT_EXCEEDED, and every other call once the transaction commits`, async () => {
    const { txId } = await raw.begin({ timeoutMs: 10_000 });
    const s = raw.commitStream();
    // Every call commits the same held transaction: a retried Commit joins the one in flight.
    const perFrame = 1000;
    for (let first = 1; first <= MAX_CALLS_PER_STREAM + 1; first += perFrame) {
      const ids = Array.from({ length: Math.min(perFrame, MAX_CALLS_PER_STREAM + 2 - first) }, (_, i) => first + i);
      s.send(...ids.map((callId) => ({ callId, request: { txId, ...held() } })));
    }
    const refused = await s.resultFor(MAX_CALLS_PER_STREAM + 1);
    assert.equal(refused.error?.grpcStatus, Status.RESOURCE_EXHAUSTED);
    assert.equal(refused.error?.code, 'LIMIT_EXCEEDED');
    assert.match(refused.error?.message ?? '', new RegExp(`more than ${MAX_CALLS_PER_STREAM} calls in flight on one stream`));
    assert.equal(s.results.length, 1);
    assert.equal(heldPrepares().length, 1, 'the transaction was prepared more than once');

    gate.open();
    await s.until('every answer', () => s.results.length === MAX_CALLS_PER_STREAM + 1);
    const committed = s.results.filter((r) => r.committed?.txId === txId && r.committed.outcome === Outcome.OUTCOME_COMMITTED);
    assert.equal(committed.length, MAX_CALLS_PER_STREAM);
    assert.equal(new Set(s.results.map((r) => r.callId)).size, MAX_CALLS_PER_STREAM + 1, 'a call was answered twice');
    assert.equal((await s.end()).code, Status.OK);
  });

  it('fails a frame above maxMessageBytes with RESOURCE_EXHAUSTED and keeps serving', async () => {
    const small = await TestCluster.start({ maxMessageBytes: SMALL_MESSAGE_LIMIT });
    const smallRaw = new RawTransactions(small.coordinator.address);
    try {
      const [a, b] = [uniqueName('small-a'), uniqueName('small-b')];
      const { calls } = await small.participant(a);
      await small.participant(b);
      const s = smallRaw.commitStream();
      s.send({ callId: 1, request: { branches: [{ participant: a, payload: bytes(SMALL_MESSAGE_LIMIT + 1) }, { participant: b, payload: bytes(1) }] } });
      const status = await s.final();
      assert.equal(status.code, Status.RESOURCE_EXHAUSTED, status.details);
      assert.match(status.details, new RegExp(`^Received message larger than max \\(\\d+ vs ${SMALL_MESSAGE_LIMIT}\\)$`));
      assert.deepEqual(s.results, []);
      assert.deepEqual(calls, [], 'an oversized call was prepared');

      // A new stream on the same coordinator commits.
      const again = smallRaw.commitStream();
      again.send({ callId: 1, request: { branches: [{ participant: a, payload: bytes(1) }, { participant: b, payload: bytes(1) }] } });
      assert.equal((await again.resultFor(1)).committed?.outcome, Outcome.OUTCOME_COMMITTED);
      assert.equal(small.coordinator.stats.commitStreams.opened, 2);
    } finally {
      smallRaw.close();
      await small.close();
    }
  });

  it(
    'delivers every answer when the answers of one turn exceed maxMessageBytes together',
    async () => {
      const small = await TestCluster.start({ maxMessageBytes: 16 * 1024 });
      const smallRaw = new RawTransactions(small.coordinator.address);
      const smallGate = new Gate();
      try {
        const [h, a] = [uniqueName('small-held'), uniqueName('small-a')];
        const calls = small.callsOf(h);
        await small.participant(h, 'yes', { hooks: heldHooks(calls, () => smallGate) });
        await small.participant(a);
        const { txId } = await smallRaw.begin({ timeoutMs: 10_000 });
        const s = smallRaw.commitStream();
        const count = 1500;
        s.send({ callId: 1, request: { txId, branches: [{ participant: h, payload: Buffer.from(HELD) }, { participant: a, payload: bytes(1) }] } });
        // Retried Commits join the held one; each frame stays far below the limit.
        for (let first = 2; first <= count; first += 250) {
          s.send(...Array.from({ length: Math.min(250, count + 1 - first) }, (_, i) => ({ callId: first + i, request: { txId } })));
        }
        // Frames are read in order: once this marker is answered, every call above is in flight.
        s.send({ callId: count + 1 });
        await s.resultFor(count + 1);
        await waitFor('the held prepare', () => calls.length === 1);

        // The decision answers all 1500 calls in one turn: about 25 KB of answers.
        smallGate.open();
        await s.until('every answer', () => s.results.length === count + 1);
        assert.equal(s.results.filter((r) => r.committed?.txId === txId).length, count);
        assert.equal(s.ended, false);
      } finally {
        smallGate.open();
        smallRaw.close();
        await small.close();
      }
    },
  );
});
