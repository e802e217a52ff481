// Reserved transaction ids and idempotency keys in the coordinator state machine: a reserved id
// starts at most one transaction, whatever comes first (its Commit, a status query, an abort, its
// expiry); an idempotency key names one transaction per initiator identity, in memory while it
// lives, in the log after it ended and across a restart.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CoordinatorRecordKind, type CoordinatorEffect, type CoordinatorReply } from '../../src/protocol/coordinator-events.js';
import { MAX_RESERVE_COUNT } from '../../src/protocol/coordinator-machine.js';
import { formatTxId, scopedIdempotencyKey } from '../../src/protocol/ids.js';
import { ErrorCode, Outcome, Vote } from '../../src/protocol/types.js';
import { branch, CoordinatorHarness, errorCode, one, only, prepareTargets, replyTo } from './helpers.js';

const ALICE = 'verdict://initiator/alice';
const BOB = 'verdict://initiator/bob';

function harness(config: ConstructorParameters<typeof CoordinatorHarness>[0] = {}): CoordinatorHarness {
  const h = new CoordinatorHarness(config);
  h.connect('a', 'b');
  return h;
}

function reserve(h: CoordinatorHarness, count: number, owner?: string): CoordinatorReply {
  const requestId = h.nextRequestId();
  return replyTo(h.handle({ type: 'reserve', requestId, count, ...(owner ? { owner } : {}) }), requestId);
}

/** Reserves `count` ids and returns them. */
function reserved(h: CoordinatorHarness, count: number, owner?: string): string[] {
  const r = reserve(h, count, owner);
  assert.equal(r.type, 'reserved', JSON.stringify(r));
  if (r.type !== 'reserved') return [];
  return Array.from({ length: r.count }, (_, i) => formatTxId(r.epoch, r.firstSeq + i));
}

function commit(h: CoordinatorHarness, txId: string, opts: { owner?: string; key?: string; branches?: string[] } = {}): { requestId: number; effects: CoordinatorEffect[] } {
  const requestId = h.nextRequestId();
  const effects = h.handle({
    type: 'commit',
    requestId,
    txId,
    branches: (opts.branches ?? ['a', 'b']).map((p) => branch(p, `work-${p}`)),
    timeoutMs: 0,
    waitForCompletion: false,
    ...(opts.owner ? { owner: opts.owner } : {}),
    ...(opts.key !== undefined ? { idempotencyKey: opts.key } : {}),
  });
  return { requestId, effects };
}

/** Answers the single lookup-key effect in `effects` with `txId`. */
function answerKeyLookup(h: CoordinatorHarness, effects: readonly CoordinatorEffect[], txId: string | undefined): CoordinatorEffect[] {
  const lookup = one(effects, 'lookup-key');
  return h.handle({ type: 'key-lookup-result', key: lookup.key, txId, pending: lookup.pending });
}

/** Commits `txId` (preparing) to its durable decision and every acknowledgement; returns what the last step emitted. */
function finish(h: CoordinatorHarness, txId: string): CoordinatorEffect[] {
  h.commitAllYes(txId, ['a', 'b']);
  h.ack('a', txId, Outcome.COMMITTED);
  return h.ack('b', txId, Outcome.COMMITTED);
}

describe('reserved transaction ids', () => {
  it('hands out consecutive ids of the current epoch that ordinary ids never reuse', () => {
    const h = harness();
    const ids = reserved(h, 3);
    assert.deepEqual(ids, [formatTxId(3, 1), formatTxId(3, 2), formatTxId(3, 3)]);
    assert.equal(h.begin().txId, formatTxId(3, 4));
  });

  it('starts a one-shot transaction under a reserved id, once: a second Commit joins it', () => {
    const h = harness();
    const [id] = reserved(h, 2);
    const first = commit(h, id as string);
    assert.deepEqual(prepareTargets(first.effects).sort(), ['a', 'b']);
    assert.equal(one(first.effects, 'set-timer').key, `deadline/${id}`);
    const again = commit(h, id as string);
    assert.deepEqual(prepareTargets(again.effects), [], 'a repeated Commit prepared again');
    const done = h.commitAllYes(id as string, ['a', 'b']);
    assert.deepEqual(replyTo(done, first.requestId), { type: 'committed', txId: id });
    assert.deepEqual(replyTo(done, again.requestId), { type: 'committed', txId: id });
  });

  it('uses up an id that is asked about before its Commit: the Commit then finds it presumed aborted and starts nothing', () => {
    const h = harness();
    const [id] = reserved(h, 1);
    const query = h.get(id as string);
    const answer = h.answerLookup(query.effects, undefined);
    const view = replyTo(answer, query.requestId);
    assert.equal(view.type === 'transaction' && view.view.outcome, Outcome.ABORTED);
    const late = commit(h, id as string);
    assert.deepEqual(prepareTargets(late.effects), []);
    assert.equal(errorCode(replyTo(h.answerLookup(late.effects, undefined), late.requestId)), ErrorCode.TX_ABORTED);
  });

  it('uses up an id that an abort names first', () => {
    const h = harness();
    const [id] = reserved(h, 1);
    const abort = h.abort(id as string);
    assert.equal(replyTo(h.answerLookup(abort.effects, undefined), abort.requestId).type, 'aborted');
    const late = commit(h, id as string);
    assert.deepEqual(prepareTargets(late.effects), []);
  });

  it('lets only the initiator that reserved an id use it or spend it', () => {
    const h = harness();
    const [id] = reserved(h, 1, ALICE);
    const bob = commit(h, id as string, { owner: BOB });
    assert.equal(errorCode(replyTo(bob.effects, bob.requestId)), ErrorCode.PERMISSION_DENIED);
    assert.deepEqual(prepareTargets(bob.effects), []);
    const requestId = h.nextRequestId();
    const bobAsks = h.handle({ type: 'get', requestId, txId: id as string, caller: BOB });
    assert.equal(errorCode(replyTo(bobAsks, requestId)), ErrorCode.PERMISSION_DENIED);
    // Neither refusal spent it: Alice's Commit still starts the transaction.
    const alice = commit(h, id as string, { owner: ALICE });
    assert.deepEqual(prepareTargets(alice.effects).sort(), ['a', 'b']);
  });

  it('expires unused ids: after the reservation timer a Commit starts nothing', () => {
    const h = harness({ reservationTtlMs: 1_000 });
    const [used, unused] = reserved(h, 2);
    commit(h, used as string);
    const timer = only(h.effects(), 'set-timer').find((t) => t.key.startsWith('reservation/'));
    assert.ok(timer, 'no reservation timer');
    assert.equal(timer.at, h.now + 1_000);
    h.fire(timer.key, timer.at);
    const late = commit(h, unused as string);
    assert.deepEqual(prepareTargets(late.effects), []);
    assert.equal(errorCode(replyTo(h.answerLookup(late.effects, undefined), late.requestId)), ErrorCode.TX_ABORTED);
  });

  it('refuses a count out of range and more unused ids than the limit, reserving nothing', () => {
    const h = harness({ maxReservedTxIds: 10 });
    assert.equal(errorCode(reserve(h, 0)), ErrorCode.INVALID_ARGUMENT);
    assert.equal(errorCode(reserve(h, MAX_RESERVE_COUNT + 1)), ErrorCode.INVALID_ARGUMENT);
    assert.equal(reserved(h, 8).length, 8);
    assert.equal(errorCode(reserve(h, 3)), ErrorCode.LIMIT_EXCEEDED);
    // Using ids frees room under the limit.
    const ids = reserved(h, 2);
    assert.equal(ids.length, 2);
    commit(h, ids[0] as string);
    assert.equal(reserved(h, 1).length, 1);
  });
});

describe('idempotency keys', () => {
  it('refuses a malformed key with INVALID_ARGUMENT before anything starts', () => {
    const h = harness();
    for (const key of ['', 'a'.repeat(129), 'has space', 'nul\u0000', 'slash/no', 'é']) {
      const c = commit(h, '', { key });
      assert.equal(errorCode(replyTo(c.effects, c.requestId)), ErrorCode.INVALID_ARGUMENT, JSON.stringify(key));
      assert.deepEqual(prepareTargets(c.effects), []);
    }
    assert.equal(h.machine.liveCount, 0);
  });

  it('asks the log once for a new key, then starts the transaction and records the key with its decision', () => {
    const h = harness();
    const [id] = reserved(h, 1, ALICE);
    const c = commit(h, id as string, { owner: ALICE, key: 'order-1' });
    assert.equal(one(c.effects, 'lookup-key').key, scopedIdempotencyKey(ALICE, 'order-1'));
    assert.deepEqual(prepareTargets(c.effects), [], 'started before the log was asked');
    const started = answerKeyLookup(h, c.effects, undefined);
    assert.deepEqual(prepareTargets(started).sort(), ['a', 'b']);
    const votes = [...h.vote('a', id as string, Vote.YES), ...h.vote('b', id as string, Vote.YES)];
    const record = one(votes, 'persist').ops[0];
    assert.ok(record?.op === 'put' && record.record.kind === CoordinatorRecordKind.COMMIT);
    assert.equal(record.record.idempotencyKey, scopedIdempotencyKey(ALICE, 'order-1'));
  });

  it('answers a retry with the same key for the first transaction, live or ended, and starts nothing', () => {
    const h = harness();
    const [first, second, third] = reserved(h, 3);
    const c1 = commit(h, first as string, { key: 'k' });
    answerKeyLookup(h, c1.effects, undefined);
    // While it lives: memory answers, the log is not asked, nothing is prepared.
    const retry = commit(h, second as string, { key: 'k', branches: ['b'] });
    assert.deepEqual(only(retry.effects, 'lookup-key'), []);
    assert.deepEqual(prepareTargets(retry.effects), []);
    const end = finish(h, first as string);
    assert.deepEqual(replyTo(h.effects(), retry.requestId), { type: 'committed', txId: first });
    const summary = only(end, 'persist').flatMap((p) => p.ops).find((o) => o.op === 'put' && o.space === 'done');
    assert.ok(summary?.op === 'put' && summary.record.idempotencyKey === scopedIdempotencyKey(undefined, 'k'), 'the END summary lacks the key');
    // Ended: the log names it, and the retry answers from its summary.
    const late = commit(h, third as string, { key: 'k' });
    const looked = answerKeyLookup(h, late.effects, first);
    assert.deepEqual(prepareTargets(looked), []);
    const answered = h.answerLookup(looked, { kind: CoordinatorRecordKind.END, txId: first as string, participants: ['a', 'b'], outcome: Outcome.COMMITTED });
    assert.deepEqual(replyTo(answered, late.requestId), { type: 'committed', txId: first });
  });

  it('joins two calls with the same new key made together into one transaction', () => {
    const h = harness();
    const [x, y] = reserved(h, 2);
    const c1 = commit(h, x as string, { key: 'same' });
    const c2 = commit(h, y as string, { key: 'same' });
    const started = answerKeyLookup(h, c1.effects, undefined);
    assert.deepEqual(prepareTargets(started).sort(), ['a', 'b']);
    const joined = answerKeyLookup(h, c2.effects, undefined);
    assert.deepEqual(prepareTargets(joined), [], 'the second call started a second transaction');
    const done = h.commitAllYes(x as string, ['a', 'b']);
    assert.deepEqual(replyTo(done, c1.requestId), { type: 'committed', txId: x });
    assert.deepEqual(replyTo(done, c2.requestId), { type: 'committed', txId: x });
  });

  it('keeps keys apart per initiator identity', () => {
    const h = harness();
    const [a] = reserved(h, 1, ALICE);
    const [b] = reserved(h, 1, BOB);
    const ca = commit(h, a as string, { key: 'order-1', owner: ALICE });
    assert.deepEqual(prepareTargets(answerKeyLookup(h, ca.effects, undefined)).sort(), ['a', 'b']);
    const cb = commit(h, b as string, { key: 'order-1', owner: BOB });
    assert.notEqual(one(cb.effects, 'lookup-key').key, one(ca.effects, 'lookup-key').key);
    assert.deepEqual(prepareTargets(answerKeyLookup(h, cb.effects, undefined)).sort(), ['a', 'b']);
    assert.equal(h.machine.liveCount, 2);
  });

  it('rebuilds the key of a recovered COMMIT record: a retry after a restart joins it', () => {
    const h = new CoordinatorHarness({ epoch: 4 });
    h.connect('a', 'b');
    const key = scopedIdempotencyKey(undefined, 'k');
    h.recover([{ kind: CoordinatorRecordKind.COMMIT, txId: formatTxId(3, 7), participants: ['a', 'b'], idempotencyKey: key }]);
    const retry = commit(h, '', { key: 'k' });
    assert.deepEqual(only(retry.effects, 'lookup-key'), [], 'the recovered key was not known');
    assert.deepEqual(prepareTargets(retry.effects), []);
    assert.deepEqual(replyTo(retry.effects, retry.requestId), { type: 'committed', txId: formatTxId(3, 7) });
  });
});
