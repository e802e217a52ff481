// The coordinator state machine, transition by transition: begin, two-phase commit with presumed
// abort, read-only and one-phase optimizations, deadlines, retries, duplicate and late messages,
// initiator requests on every state, lookups of transactions that are no longer live, recovery.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CoordinatorRecordKind, TxState, type CoordinatorEffect, type CoordinatorRecord } from '../../src/protocol/coordinator-events.js';
import { CoordinatorMachine } from '../../src/protocol/coordinator-machine.js';
import { parseTxId } from '../../src/protocol/ids.js';
import { ErrorCode, Outcome, Vote } from '../../src/protocol/types.js';
import {
  branch,
  bytes,
  Cluster,
  CoordinatorHarness,
  decisions,
  outcomeQueries,
  errorCode,
  ignoredWhy,
  one,
  only,
  prepares,
  prepareTargets,
  replyTo,
  TEST_COORDINATOR_CONFIG,
  text,
} from './helpers.js';

const C = Outcome.COMMITTED;
const A = Outcome.ABORTED;

/** A coordinator with `connected` participants online. */
function coordinator(connected: readonly string[] = ['a', 'b', 'c']): CoordinatorHarness {
  const h = new CoordinatorHarness();
  h.connect(...connected);
  return h;
}

/** Begins a transaction and commits it with branches for `participants`: it is now preparing. */
function preparing(
  h: CoordinatorHarness,
  participants: readonly string[] = ['a', 'b', 'c'],
  opts: { waitForCompletion?: boolean; timeoutMs?: number } = {},
): { txId: string; deadline: number; requestId: number; effects: CoordinatorEffect[] } {
  const { txId, deadline } = h.begin(opts.timeoutMs ?? 0);
  const { requestId, effects } = h.commit(
    txId,
    participants.map((p) => branch(p, `work-${p}`)),
    opts,
  );
  return { txId, deadline, requestId, effects };
}

/** A transaction whose COMMIT record is durable, decisions out, no acks yet. */
function committed(h: CoordinatorHarness, participants: readonly string[] = ['a', 'b', 'c'], opts: { waitForCompletion?: boolean } = {}) {
  const tx = preparing(h, participants, opts);
  const effects = h.commitAllYes(tx.txId, participants);
  return { ...tx, effects };
}

function endRecord(effects: readonly CoordinatorEffect[]) {
  const persists = only(effects, 'persist').filter((p) => p.ops.some((op) => op.op === 'put' && op.space === 'done'));
  assert.equal(persists.length, 1, `expected one END persist: ${JSON.stringify(effects)}`);
  return persists[0] as Extract<CoordinatorEffect, { type: 'persist' }>;
}

function viewOf(h: CoordinatorHarness, txId: string) {
  const view = h.machine.view(txId);
  assert.ok(view, `${txId} is not live`);
  return view;
}

function branchView(h: CoordinatorHarness, txId: string, participant: string) {
  const b = viewOf(h, txId).branches.find((x) => x.participant === participant);
  assert.ok(b, `${participant} is not a branch of ${txId}`);
  return b;
}

describe('CoordinatorMachine', () => {
  describe('construction', () => {
    it('refuses an epoch that is not a positive integer', () => {
      for (const epoch of [0, -1, 1.5, Number.NaN]) {
        assert.throws(() => new CoordinatorMachine({ ...TEST_COORDINATOR_CONFIG, epoch }), RangeError);
      }
      assert.equal(new CoordinatorMachine(TEST_COORDINATOR_CONFIG).epoch, 3);
    });
  });

  describe('begin', () => {
    it('issues ids that carry the epoch, with a fresh sequence number each time', () => {
      const h = coordinator();
      const first = h.begin(1_000).txId;
      const second = h.begin(1_000).txId;
      assert.deepEqual(parseTxId(first), { epoch: 3, seq: 1 });
      assert.deepEqual(parseTxId(second), { epoch: 3, seq: 2 });
      assert.equal(h.machine.liveCount, 2);
    });

    it('sets the deadline to now + timeout and arms a deadline timer for it', () => {
      const h = coordinator();
      h.now = 50_000;
      const { txId, deadline, effects } = h.begin(2_500);
      assert.equal(deadline, 52_500);
      assert.deepEqual(one(effects, 'set-timer'), { type: 'set-timer', key: `deadline/${txId}`, at: 52_500, jitterMs: 0 });
      const view = viewOf(h, txId);
      assert.equal(view.state, TxState.ACTIVE);
      assert.equal(view.deadline, 52_500);
      assert.deepEqual(view.branches, []);
      assert.equal(view.presumed, false);
    });

    it('uses the default timeout when the request gives none (0)', () => {
      const h = coordinator();
      const { deadline } = h.begin(0);
      assert.equal(deadline, h.now + TEST_COORDINATOR_CONFIG.defaultTimeoutMs);
    });

    it('accepts the largest configured timeout', () => {
      const h = coordinator();
      assert.equal(h.begin(TEST_COORDINATOR_CONFIG.maxTimeoutMs).deadline, h.now + TEST_COORDINATOR_CONFIG.maxTimeoutMs);
    });

    it('refuses negative, fractional, non-finite and too-large timeouts with INVALID_ARGUMENT and creates nothing', () => {
      const h = coordinator();
      for (const timeoutMs of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, TEST_COORDINATOR_CONFIG.maxTimeoutMs + 1]) {
        const requestId = h.nextRequestId();
        const effects = h.handle({ type: 'begin', requestId, timeoutMs });
        assert.equal(errorCode(replyTo(effects, requestId)), ErrorCode.INVALID_ARGUMENT, `timeout ${timeoutMs}`);
        assert.deepEqual(only(effects, 'set-timer'), []);
      }
      assert.equal(h.machine.liveCount, 0);
      // No sequence number was burnt: the next id is still the first.
      assert.equal(h.begin(100).txId, 'tx-3-1');
    });

    it('refuses a transaction beyond the live-transaction limit with LIMIT_EXCEEDED, and accepts again once one ends', () => {
      const h = coordinator();
      const ids: string[] = [];
      for (let i = 0; i < TEST_COORDINATOR_CONFIG.maxLiveTransactions; i++) ids.push(h.begin(1_000).txId);
      const requestId = h.nextRequestId();
      const effects = h.handle({ type: 'begin', requestId, timeoutMs: 1_000 });
      assert.equal(errorCode(replyTo(effects, requestId)), ErrorCode.LIMIT_EXCEEDED);
      assert.equal(h.machine.liveCount, TEST_COORDINATOR_CONFIG.maxLiveTransactions);

      h.abort(ids[0] as string);
      assert.equal(h.machine.liveCount, TEST_COORDINATOR_CONFIG.maxLiveTransactions - 1);
      assert.ok(h.begin(1_000).txId);
    });
  });

  describe('two-phase commit', () => {
    it('sends Prepare with payload, deadline and onePhase:false to every connected branch, and answers nothing yet', () => {
      const h = coordinator();
      const { txId, deadline, requestId, effects } = preparing(h);
      assert.deepEqual(prepareTargets(effects), ['a', 'b', 'c']);
      for (const p of prepares(effects)) {
        assert.deepEqual(p.message, { type: 'prepare', txId, payload: bytes(`work-${p.to}`), deadline, onePhase: false });
      }
      assert.deepEqual(only(effects, 'reply').filter((r) => r.requestId === requestId), []);
      assert.deepEqual(only(effects, 'persist'), []);
      const view = viewOf(h, txId);
      assert.equal(view.state, TxState.PREPARING);
      assert.deepEqual(
        view.branches.map((b) => [b.participant, b.attempts, b.acknowledged]),
        [
          ['a', 1, false],
          ['b', 1, false],
          ['c', 1, false],
        ],
      );
    });

    it('sends Prepare only to connected participants', () => {
      const h = coordinator(['a', 'c']);
      const { txId, effects } = preparing(h);
      assert.deepEqual(prepareTargets(effects), ['a', 'c']);
      assert.equal(branchView(h, txId, 'b').attempts, 0);
      assert.match(branchView(h, txId, 'b').lastError ?? '', /not connected/);
    });

    it('waits for every vote before deciding', () => {
      const h = coordinator();
      const { txId } = preparing(h);
      assert.deepEqual(h.vote('a', txId, Vote.YES), []);
      assert.deepEqual(h.vote('b', txId, Vote.YES), []);
      assert.equal(viewOf(h, txId).state, TxState.PREPARING);
      assert.equal(branchView(h, txId, 'a').vote, Vote.YES);
    });

    it('forces a COMMIT record naming the YES voters once all vote YES, and sends no decision before it is durable', () => {
      const h = coordinator();
      const { txId, requestId } = preparing(h);
      h.vote('a', txId, Vote.YES);
      h.vote('b', txId, Vote.YES);
      const last = h.vote('c', txId, Vote.YES);
      assert.deepEqual(one(last, 'persist'), {
        type: 'persist',
        ops: [{ op: 'put', space: 'open', record: { kind: CoordinatorRecordKind.COMMIT, txId, participants: ['a', 'b', 'c'] } }],
        force: true,
        token: { kind: 'commit', txId },
      });
      assert.ok(last.some((e) => e.type === 'cancel-timer' && e.key === `deadline/${txId}`), 'the deadline no longer applies');
      assert.deepEqual(decisions(last), []);
      assert.deepEqual(only(last, 'reply'), []);
      assert.deepEqual(only(last, 'decided'), []);

      // Anything that happens before the record is durable still sends no commit.
      const meanwhile = [...h.vote('a', txId, Vote.YES), ...h.inquiry('b', txId), ...h.connect('c'), ...h.fire(`retry/${txId}`)];
      assert.deepEqual(decisions(meanwhile), []);
      assert.deepEqual(only(meanwhile, 'reply'), []);

      const after = h.persisted('commit', txId);
      assert.deepEqual(one(after, 'decided'), { type: 'decided', txId, outcome: C });
      assert.deepEqual(decisions(after), ['a:committed', 'b:committed', 'c:committed']);
      assert.deepEqual(replyTo(after, requestId), { type: 'committed', txId });
      const retry = one(after, 'set-timer');
      assert.equal(retry.key, `retry/${txId}`);
      assert.equal(retry.at, h.now + TEST_COORDINATOR_CONFIG.retryInitialMs);
      assert.equal(viewOf(h, txId).state, TxState.DECIDED);
      assert.equal(viewOf(h, txId).outcome, C);

      // Over the whole trace: the first commit message comes after the `persisted` input.
      const persistedAt = h.indexOf((t) => t.kind === 'input' && t.input.type === 'persisted');
      const firstCommitAt = h.indexOf((t) => t.kind === 'effect' && t.effect.type === 'send' && t.effect.message.type === 'decision');
      const forcedAt = h.indexOf((t) => t.kind === 'effect' && t.effect.type === 'persist' && t.effect.force);
      assert.ok(forcedAt >= 0 && forcedAt < persistedAt && persistedAt < firstCommitAt);
    });

    it('writes the END summary lazily (not forced) and forgets the transaction once every YES voter acknowledged', () => {
      const h = coordinator();
      const { txId } = committed(h);
      assert.deepEqual(only(h.ack('a', txId, C), 'persist'), []);
      assert.deepEqual(only(h.ack('b', txId, C), 'persist'), []);
      assert.equal(branchView(h, txId, 'a').acknowledged, true);
      assert.equal(branchView(h, txId, 'c').acknowledged, false);

      const last = h.ack('c', txId, C);
      assert.deepEqual(endRecord(last), {
        type: 'persist',
        ops: [
          { op: 'del', space: 'open', txId },
          { op: 'put', space: 'done', record: { kind: CoordinatorRecordKind.END, txId, participants: ['a', 'b', 'c'], outcome: C } },
        ],
        force: false,
      });
      assert.deepEqual(one(last, 'ended'), { type: 'ended', txId, outcome: C });
      assert.ok(last.some((e) => e.type === 'cancel-timer' && e.key === `retry/${txId}`));
      assert.equal(h.machine.view(txId), undefined);
      assert.equal(h.machine.liveCount, 0);
    });

    it('with waitForCompletion, answers the initiator only when the transaction ended', () => {
      const h = coordinator();
      const { txId, requestId, effects } = committed(h, ['a', 'b'], { waitForCompletion: true });
      assert.deepEqual(only(effects, 'reply'), []);
      assert.deepEqual(only(h.ack('a', txId, C), 'reply'), []);
      const last = h.ack('b', txId, C);
      assert.deepEqual(replyTo(last, requestId), { type: 'committed', txId });
      assert.ok(last.findIndex((e) => e.type === 'ended') < last.findIndex((e) => e.type === 'reply'));
    });

    it('runs a one-shot commit (no Begin) the same way', () => {
      const h = coordinator();
      const { txId, requestId, effects } = h.oneShot([branch('a'), branch('b')], { timeoutMs: 700 });
      assert.deepEqual(parseTxId(txId), { epoch: 3, seq: 1 });
      assert.deepEqual(prepareTargets(effects), ['a', 'b']);
      assert.equal(prepares(effects)[0]?.message.deadline, h.now + 700);
      const after = h.commitAllYes(txId, ['a', 'b']);
      assert.deepEqual(replyTo(after, requestId), { type: 'committed', txId });
    });

    it('prepares the participants that enlisted when Commit names no branches', () => {
      const h = coordinator();
      const { txId } = h.begin();
      h.enlist('a', txId, bytes('from-a'));
      h.enlist('b', txId);
      const { effects } = h.commit(txId, [branch('b', 'from-commit')]);
      assert.deepEqual(
        prepares(effects).map((p) => [p.to, text(p.message.payload)]),
        [
          ['a', 'from-a'],
          ['b', 'from-commit'],
        ],
      );
    });
  });

  describe('abort on a NO vote', () => {
    it('aborts naming the participant, tells YES voters and unvoted prepared branches, and answers TX_ABORTED', () => {
      const h = coordinator(['a', 'b', 'c']);
      h.connect('d');
      const { txId, requestId } = preparing(h, ['a', 'b', 'c', 'd']);
      h.vote('a', txId, Vote.YES);
      h.disconnect('d');
      const effects = h.vote('b', txId, Vote.NO, 'out of stock');
      const reason = 'participant b voted NO: out of stock';
      assert.deepEqual(one(effects, 'decided'), { type: 'decided', txId, outcome: A, reason, cause: 'voted-no' });
      // a voted YES and c was sent Prepare without answering: both may hold it prepared.
      // b refused (it aborts on its own); d is not connected now and learns it later.
      assert.deepEqual(decisions(effects), ['a:aborted', 'c:aborted']);
      assert.deepEqual(replyTo(effects, requestId), {
        type: 'error',
        error: { code: ErrorCode.TX_ABORTED, message: `transaction ${txId} aborted: ${reason}`, txId, reason },
      });
      assert.deepEqual(
        only(effects, 'persist').filter((p) => p.force),
        [],
        'presumed abort: an abort is never forced',
      );
      assert.equal(branchView(h, txId, 'b').lastError, 'voted NO: out of stock');
      assert.equal(viewOf(h, txId).reason, reason);
      // a must acknowledge before the transaction can be forgotten.
      assert.ok(effects.some((e) => e.type === 'set-timer' && e.key === `retry/${txId}`));
      assert.deepEqual(only(effects, 'ended'), []);

      const end = h.ack('a', txId, A);
      assert.deepEqual(endRecord(end).ops, [
        { op: 'put', space: 'done', record: { kind: CoordinatorRecordKind.END, txId, participants: ['a', 'b', 'c', 'd'], outcome: A, reason } },
      ]);
      assert.deepEqual(one(end, 'ended'), { type: 'ended', txId, outcome: A });
    });

    it('ends at once when no branch voted YES, since nobody must acknowledge an abort', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      const effects = h.vote('a', txId, Vote.NO);
      assert.deepEqual(decisions(effects), ['b:aborted']);
      assert.equal(one(effects, 'decided').reason, 'participant a voted NO');
      assert.deepEqual(one(effects, 'ended'), { type: 'ended', txId, outcome: A });
      assert.equal(endRecord(effects).force, false);
      assert.equal(h.machine.liveCount, 0);
    });

    it('answers every joined Commit with the abort, even those waiting for completion', () => {
      const h = coordinator();
      const { txId, requestId } = preparing(h, ['a', 'b'], { waitForCompletion: true });
      const again = h.commit(txId, []);
      const effects = h.vote('a', txId, Vote.NO, 'nope');
      assert.equal(errorCode(replyTo(effects, requestId)), ErrorCode.TX_ABORTED);
      assert.equal(errorCode(replyTo(effects, again.requestId)), ErrorCode.TX_ABORTED);
    });
  });

  describe('read-only votes', () => {
    it('commits with no decision message when every branch is read-only, answering only once its END summary is forced', () => {
      const h = coordinator();
      const { txId, requestId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.READ_ONLY);
      const effects = h.vote('b', txId, Vote.READ_ONLY);
      // COMMITTED must stay true after a power loss: nobody hears it before the summary is synced.
      assert.deepEqual(only(effects, 'reply'), []);
      assert.deepEqual(decisions(effects), []);
      assert.deepEqual(one(effects, 'persist'), {
        type: 'persist',
        ops: [{ op: 'put', space: 'done', record: { kind: CoordinatorRecordKind.END, txId, participants: ['a', 'b'], outcome: C } }],
        force: true,
        token: { kind: 'read-only', txId },
      });
      const persisted = h.persisted('read-only', txId);
      assert.deepEqual(replyTo(persisted, requestId), { type: 'committed', txId });
      assert.deepEqual(decisions(persisted), []);
      assert.deepEqual(only(persisted, 'persist'), [], 'the forced summary is the END record: nothing more is written');
      assert.deepEqual(one(persisted, 'ended'), { type: 'ended', txId, outcome: C });
    });

    it('answers OUTCOME_UNKNOWN, never COMMITTED, when the forced END of an all-read-only commit fails', () => {
      const h = coordinator();
      const { txId, requestId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.READ_ONLY);
      h.vote('b', txId, Vote.READ_ONLY);
      const effects = h.persistFailed('read-only', txId, 'EIO');
      const reply = replyTo(effects, requestId);
      assert.equal(reply.type === 'error' ? reply.error.code : reply.type, ErrorCode.OUTCOME_UNKNOWN);
      assert.deepEqual(only(effects, 'decided'), []);
    });

    it('lists only the YES voters in the COMMIT record and sends the decision only to them', () => {
      const h = coordinator();
      const { txId } = preparing(h);
      h.vote('a', txId, Vote.READ_ONLY);
      h.vote('b', txId, Vote.YES);
      const last = h.vote('c', txId, Vote.YES);
      const persist = one(last, 'persist');
      const op = persist.ops[0];
      assert.ok(op && op.op === 'put');
      assert.deepEqual(op.record.participants, ['b', 'c']);
      const after = h.persisted('commit', txId);
      assert.deepEqual(decisions(after), ['b:committed', 'c:committed']);
      h.ack('b', txId, C);
      const end = h.ack('c', txId, C);
      assert.deepEqual(one(end, 'ended'), { type: 'ended', txId, outcome: C });
    });

    it('sends no abort to a read-only voter when another votes NO', () => {
      const h = coordinator();
      const { txId } = preparing(h);
      h.vote('a', txId, Vote.READ_ONLY);
      h.vote('b', txId, Vote.YES);
      const effects = h.vote('c', txId, Vote.NO);
      assert.deepEqual(decisions(effects), ['b:aborted']);
    });
  });

  describe('one-phase commit (a single branch)', () => {
    it('forces a ONE_PHASE record first, and only once it is durable sends Prepare with onePhase:true', () => {
      const h = coordinator();
      const { txId, deadline } = h.begin();
      const { requestId, effects } = h.commit(txId, [branch('a', 'solo')]);
      assert.deepEqual(one(effects, 'persist'), {
        type: 'persist',
        ops: [{ op: 'put', space: 'open', record: { kind: CoordinatorRecordKind.ONE_PHASE, txId, participants: ['a'] } }],
        force: true,
        token: { kind: 'one-phase', txId },
      });
      assert.deepEqual(prepares(effects), []);
      assert.deepEqual(only(effects, 'reply'), []);

      const after = h.persisted('one-phase', txId);
      assert.deepEqual(prepares(after), [{ to: 'a', message: { type: 'prepare', txId, payload: bytes('solo'), deadline, onePhase: true } }]);
      assert.equal(viewOf(h, txId).state, TxState.PREPARING);
      assert.deepEqual(only(after, 'reply').filter((r) => r.requestId === requestId), []);
    });

    it('commits on the participant YES: no decision message, END deletes the ONE_PHASE record', () => {
      const h = coordinator();
      const { txId, requestId } = h.oneShot([branch('a')]);
      h.persisted('one-phase', txId);
      const effects = h.vote('a', txId, Vote.YES);
      assert.deepEqual(replyTo(effects, requestId), { type: 'committed', txId });
      assert.deepEqual(one(effects, 'decided'), { type: 'decided', txId, outcome: C });
      assert.deepEqual(decisions(effects), []);
      assert.deepEqual(endRecord(effects).ops, [
        { op: 'del', space: 'open', txId },
        { op: 'put', space: 'done', record: { kind: CoordinatorRecordKind.END, txId, participants: ['a'], outcome: C } },
      ]);
      assert.deepEqual(one(effects, 'ended'), { type: 'ended', txId, outcome: C });
    });

    it('treats a READ_ONLY answer as committed', () => {
      const h = coordinator();
      const { txId, requestId } = h.oneShot([branch('a')]);
      h.persisted('one-phase', txId);
      assert.deepEqual(replyTo(h.vote('a', txId, Vote.READ_ONLY), requestId), { type: 'committed', txId });
    });

    it('aborts on the participant NO, naming it and its reason', () => {
      const h = coordinator();
      const { txId, requestId } = h.oneShot([branch('a')]);
      h.persisted('one-phase', txId);
      const effects = h.vote('a', txId, Vote.NO, 'constraint violated');
      const reason = 'participant a aborted the one-phase commit: constraint violated';
      const reply = replyTo(effects, requestId);
      assert.equal(errorCode(reply), ErrorCode.TX_ABORTED);
      assert.equal(reply.type === 'error' ? reply.error.reason : '', reason);
      assert.deepEqual(one(effects, 'ended'), { type: 'ended', txId, outcome: A });
      assert.equal(one(effects, 'decided').reason, reason);
    });

    it('goes in doubt at the deadline after sending, asks for its outcome (never tells it one), and resolves from the participant ack', () => {
      const h = coordinator();
      const { txId, requestId } = h.oneShot([branch('a')], { timeoutMs: 1_000 });
      h.persisted('one-phase', txId);
      const atDeadline = h.fire(`deadline/${txId}`, h.now + 1_000);
      assert.deepEqual(decisions(atDeadline), [], 'a one-phase participant is asked, never told');
      assert.deepEqual(outcomeQueries(atDeadline), ['a']);
      assert.ok(atDeadline.some((e) => e.type === 'set-timer' && e.key === `retry/${txId}`));
      assert.deepEqual(only(atDeadline, 'reply'), [], 'the outcome is not known yet');
      assert.deepEqual(only(atDeadline, 'decided'), []);
      assert.equal(viewOf(h, txId).state, TxState.IN_DOUBT);

      // An initiator retrying meanwhile joins; an abort request cannot take the decision back.
      const again = h.commit(txId, []);
      assert.deepEqual(only(again.effects, 'reply'), []);
      assert.equal(errorCode(replyTo(h.abort(txId).effects, h.nextRequestId() - 1)), ErrorCode.WRONG_STATE);

      // The retry timer asks again.
      assert.deepEqual(outcomeQueries(h.fire(`retry/${txId}`, h.now + 100)), ['a']);

      // The participant had committed: its ack says so, and that is the outcome.
      const resolved = h.ack('a', txId, C);
      assert.deepEqual(replyTo(resolved, requestId), { type: 'committed', txId });
      assert.deepEqual(replyTo(resolved, again.requestId), { type: 'committed', txId });
      assert.deepEqual(one(resolved, 'decided'), { type: 'decided', txId, outcome: C });
      assert.deepEqual(one(resolved, 'ended'), { type: 'ended', txId, outcome: C });
      assert.deepEqual(endRecord(resolved).ops[0], { op: 'del', space: 'open', txId });
    });

    it('in doubt, resolves as aborted when the participant acknowledges the abort', () => {
      const h = coordinator();
      const { txId, requestId } = h.oneShot([branch('a')]);
      h.persisted('one-phase', txId);
      h.fire(`deadline/${txId}`);
      const resolved = h.ack('a', txId, A);
      assert.equal(errorCode(replyTo(resolved, requestId)), ErrorCode.TX_ABORTED);
      assert.deepEqual(one(resolved, 'ended'), { type: 'ended', txId, outcome: A });
    });

    it('in doubt, resolves as committed when the late YES vote arrives', () => {
      const h = coordinator();
      const { txId, requestId } = h.oneShot([branch('a')]);
      h.persisted('one-phase', txId);
      h.fire(`deadline/${txId}`);
      assert.deepEqual(replyTo(h.vote('a', txId, Vote.YES), requestId), { type: 'committed', txId });
    });

    it('sends the Prepare when the participant connects, if it was away when the record became durable', () => {
      const h = coordinator([]);
      const { txId } = h.oneShot([branch('a')]);
      assert.deepEqual(prepares(h.persisted('one-phase', txId)), []);
      const onConnect = h.connect('a');
      assert.deepEqual(prepareTargets(onConnect), ['a']);
      assert.equal(prepares(onConnect)[0]?.message.onePhase, true);
      // Connecting again does not prepare twice.
      assert.deepEqual(prepares(h.connect('a')), []);
    });

    it('sends nothing to a participant that connects while the ONE_PHASE record is being written', () => {
      const h = coordinator([]);
      const { txId } = h.oneShot([branch('a')]);
      assert.deepEqual(h.connect('a'), []);
      assert.deepEqual(prepareTargets(h.persisted('one-phase', txId)), ['a']);
    });

    it('aborts at the deadline when the participant never received the request', () => {
      const h = coordinator([]);
      const { txId, requestId } = h.oneShot([branch('a')]);
      h.persisted('one-phase', txId);
      const effects = h.fire(`deadline/${txId}`);
      const reply = replyTo(effects, requestId);
      assert.equal(reply.type === 'error' ? reply.error.reason : '', 'participant a unavailable');
      assert.deepEqual(decisions(effects), []);
      assert.deepEqual(endRecord(effects).ops[0], { op: 'del', space: 'open', txId });
      assert.equal(h.machine.liveCount, 0);
    });

    it('aborts at the deadline while the ONE_PHASE record is still being written', () => {
      const h = coordinator();
      const { txId, requestId } = h.oneShot([branch('a')]);
      const effects = h.fire(`deadline/${txId}`);
      assert.equal(errorCode(replyTo(effects, requestId)), ErrorCode.TX_ABORTED);
      assert.deepEqual(prepares(h.persisted('one-phase', txId)), [], 'a late durable record sends nothing');
    });

    it('decides nothing and answers OUTCOME_UNKNOWN with the tx id when the ONE_PHASE record cannot be written', () => {
      const h = coordinator();
      const { txId, requestId } = h.oneShot([branch('a')]);
      const effects = h.persistFailed('one-phase', txId, 'EIO');
      const reply = replyTo(effects, requestId);
      assert.equal(reply.type === 'error' ? reply.error.code : reply.type, ErrorCode.OUTCOME_UNKNOWN);
      assert.equal(reply.type === 'error' ? reply.error.txId : '', txId);
      assert.deepEqual(only(effects, 'send'), []);
      assert.deepEqual(only(effects, 'decided'), []);
    });

    it('refuses an abort request once the decision is handed to the participant', () => {
      const h = coordinator();
      const { txId } = h.oneShot([branch('a')]);
      const logging = h.abort(txId);
      assert.equal(errorCode(replyTo(logging.effects, logging.requestId)), ErrorCode.WRONG_STATE);
      h.persisted('one-phase', txId);
      const sent = h.abort(txId);
      assert.equal(errorCode(replyTo(sent.effects, sent.requestId)), ErrorCode.WRONG_STATE);
      assert.equal(viewOf(h, txId).outcome, undefined);
    });
  });

  describe('deadlines and unavailable participants', () => {
    it('sends the Prepare when a missing participant connects', () => {
      const h = coordinator(['a']);
      const { txId } = preparing(h, ['a', 'b']);
      const onConnect = h.connect('b');
      assert.deepEqual(prepareTargets(onConnect), ['b']);
      assert.equal(branchView(h, txId, 'b').attempts, 1);
      h.vote('a', txId, Vote.YES);
      assert.equal(one(h.vote('b', txId, Vote.YES), 'persist').force, true);
    });

    it('aborts at the deadline naming a participant that never connected', () => {
      const h = coordinator(['a']);
      const { txId, deadline, requestId } = preparing(h, ['a', 'b'], { timeoutMs: 3_000 });
      h.vote('a', txId, Vote.YES);
      const effects = h.fire(`deadline/${txId}`, deadline);
      const reply = replyTo(effects, requestId);
      assert.equal(reply.type === 'error' ? reply.error.reason : '', 'participant b unavailable');
      assert.deepEqual(decisions(effects), ['a:aborted']);
      assert.equal(branchView(h, txId, 'b').lastError, 'unavailable');
    });

    it('aborts at the deadline while waiting for a vote, telling the silent branch too', () => {
      const h = coordinator();
      const { txId, requestId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      const effects = h.fire(`deadline/${txId}`);
      const reply = replyTo(effects, requestId);
      assert.equal(reply.type === 'error' ? reply.error.reason : '', 'prepare deadline exceeded waiting for b');
      assert.deepEqual(decisions(effects), ['a:aborted', 'b:aborted']);
      assert.equal(branchView(h, txId, 'b').lastError, 'no vote before the deadline');
      // The transaction is aborted for good: a YES that arrives now changes nothing.
      h.vote('b', txId, Vote.YES);
      assert.equal(viewOf(h, txId).outcome, A);
    });

    it('aborts an active transaction that reaches its deadline before Commit', () => {
      const h = coordinator();
      const { txId } = h.begin();
      h.enlist('a', txId);
      const effects = h.fire(`deadline/${txId}`);
      assert.deepEqual(one(effects, 'decided'), {
        type: 'decided',
        txId,
        outcome: A,
        reason: 'the transaction passed its deadline before Commit',
        cause: 'deadline',
      });
      assert.deepEqual(one(effects, 'ended'), { type: 'ended', txId, outcome: A });
      const commit = h.commit(txId, []);
      const lookedUp = h.answerLookup(commit.effects, undefined);
      assert.equal(errorCode(replyTo(lookedUp, commit.requestId)), ErrorCode.TX_ABORTED);
    });

    it('ignores a deadline timer once the transaction is decided or gone', () => {
      const h = coordinator();
      const { txId } = committed(h);
      assert.deepEqual(h.fire(`deadline/${txId}`), []);
      assert.equal(viewOf(h, txId).outcome, C);
      assert.deepEqual(h.fire('deadline/tx-3-99'), []);
      assert.deepEqual(h.fire('nonsense'), []);
    });

    it('does not abort on the deadline while the COMMIT record is being forced', () => {
      const h = coordinator();
      const { txId, requestId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      h.vote('b', txId, Vote.YES);
      assert.deepEqual(h.fire(`deadline/${txId}`), []);
      assert.deepEqual(replyTo(h.persisted('commit', txId), requestId), { type: 'committed', txId });
    });
  });

  describe('duplicate, conflicting and late participant messages', () => {
    it('ignores a repeated vote as a duplicate', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      const effects = h.vote('a', txId, Vote.YES);
      assert.deepEqual(effects, [{ type: 'ignored', why: 'duplicate', what: 'vote', txId, participant: 'a' }]);
    });

    it('ignores a conflicting second vote: the first one stands', () => {
      const h = coordinator();
      const { txId, requestId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      assert.deepEqual(ignoredWhy(h.vote('a', txId, Vote.NO, 'changed my mind')), ['conflicting-vote']);
      assert.equal(branchView(h, txId, 'a').vote, Vote.YES);
      const last = h.vote('b', txId, Vote.YES);
      assert.deepEqual(replyTo(h.completePersists(last), requestId), { type: 'committed', txId });
    });

    it('keeps an abort when the NO voter later says YES', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      h.vote('b', txId, Vote.YES);
      h.vote('a', txId, Vote.NO);
      assert.deepEqual(ignoredWhy(h.vote('a', txId, Vote.YES)), ['conflicting-vote']);
      assert.equal(viewOf(h, txId).outcome, A);
    });

    it('ignores votes and acks for ids this coordinator never issued, without a lookup', () => {
      const h = coordinator();
      h.begin();
      for (const txId of ['tx-3-2', 'tx-4-1']) {
        assert.deepEqual(ignoredWhy(h.vote('a', txId, Vote.YES)), ['never-issued']);
        assert.deepEqual(ignoredWhy(h.inquiry('a', txId)), ['never-issued']);
        assert.deepEqual(ignoredWhy(h.ack('a', txId, C)), ['never-issued']);
      }
    });

    it('ignores NO and READ_ONLY votes and acks for a finished transaction', () => {
      const h = coordinator();
      const { txId } = committed(h, ['a', 'b']);
      h.ack('a', txId, C);
      h.ack('b', txId, C);
      for (const effects of [h.vote('a', txId, Vote.NO), h.vote('a', txId, Vote.READ_ONLY), h.ack('a', txId, C), h.ack('b', txId, A)]) {
        assert.deepEqual(ignoredWhy(effects), ['unknown-tx']);
        assert.equal(effects.length, 1);
      }
      assert.equal(h.machine.liveCount, 0);
    });

    it('answers a YES vote for a finished transaction from the log: with no record, the abort', () => {
      const h = coordinator();
      const { txId } = h.begin();
      h.abort(txId);
      const effects = h.vote('a', txId, Vote.YES);
      const lookup = one(effects, 'lookup');
      assert.deepEqual(lookup, { type: 'lookup', txId, pending: { type: 'message', from: 'a', message: { type: 'vote', txId, vote: Vote.YES, reason: '' } } });
      assert.deepEqual(decisions(h.answerLookup(effects, undefined)), ['a:aborted']);
      assert.equal(h.machine.liveCount, 0, 'a lookup never revives a transaction');
    });

    it('answers an inquiry about an earlier epoch from the END summary', () => {
      const h = coordinator();
      const effects = h.inquiry('b', 'tx-2-17');
      const record: CoordinatorRecord = { kind: CoordinatorRecordKind.END, txId: 'tx-2-17', participants: ['a', 'b'], outcome: C };
      assert.deepEqual(decisions(h.answerLookup(effects, record)), ['b:committed']);
    });

    it('ignores messages from a participant that is not a branch of the transaction', () => {
      const h = coordinator();
      h.connect('z');
      const { txId } = preparing(h, ['a', 'b']);
      for (const effects of [h.vote('z', txId, Vote.NO), h.inquiry('z', txId), h.ack('z', txId, A)]) {
        assert.equal(effects.length, 1);
        assert.deepEqual(ignoredWhy(effects), ['not-a-branch']);
      }
      assert.equal(viewOf(h, txId).state, TxState.PREPARING);
      assert.deepEqual(
        viewOf(h, txId).branches.map((b) => b.participant),
        ['a', 'b'],
      );
    });

    it('ignores votes while the transaction is still active (no Prepare was sent)', () => {
      const h = coordinator();
      const { txId } = h.begin();
      h.enlist('a', txId);
      assert.deepEqual(ignoredWhy(h.vote('a', txId, Vote.YES)), ['late']);
      assert.equal(branchView(h, txId, 'a').vote, undefined);
    });

    it('sends the abort to a late YES voter after an abort, and waits for its ack', () => {
      const h = coordinator();
      const { txId } = preparing(h);
      h.vote('a', txId, Vote.YES);
      h.vote('b', txId, Vote.NO);
      const late = h.vote('c', txId, Vote.YES);
      assert.deepEqual(decisions(late), ['c:aborted']);
      assert.ok(late.some((e) => e.type === 'set-timer' && e.key === `retry/${txId}`));
      assert.deepEqual(only(h.ack('a', txId, A), 'ended'), [], 'c has not acknowledged yet');
      assert.deepEqual(one(h.ack('c', txId, A), 'ended'), { type: 'ended', txId, outcome: A });
    });

    it('ignores a late NO after the abort', () => {
      const h = coordinator();
      const { txId } = preparing(h);
      h.vote('a', txId, Vote.YES);
      h.vote('b', txId, Vote.NO);
      assert.deepEqual(ignoredWhy(h.vote('c', txId, Vote.NO)), ['late']);
    });

    it('ignores an ack before the decision', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      assert.deepEqual(ignoredWhy(h.ack('a', txId, A)), ['late']);
      assert.equal(branchView(h, txId, 'a').acknowledged, false);
    });

    it('ignores a repeated ack as a duplicate', () => {
      const h = coordinator();
      const { txId } = committed(h);
      h.ack('a', txId, C);
      assert.deepEqual(ignoredWhy(h.ack('a', txId, C)), ['duplicate']);
    });

    it('ignores an ack with the wrong outcome, records it, and keeps delivering', () => {
      const h = coordinator();
      const { txId } = committed(h, ['a', 'b']);
      const effects = h.ack('a', txId, A);
      assert.deepEqual(effects, [{ type: 'ignored', why: 'outcome-mismatch', what: 'ack', txId, participant: 'a' }]);
      const a = branchView(h, txId, 'a');
      assert.equal(a.acknowledged, false);
      assert.equal(a.lastError, 'acknowledged aborted but the decision is committed');
      assert.deepEqual(decisions(h.fire(`retry/${txId}`)), ['a:committed', 'b:committed']);
      h.ack('a', txId, C);
      assert.equal(branchView(h, txId, 'a').lastError, undefined);
    });

    it('accepts an abort ack from a branch that was told without having voted', () => {
      const h = coordinator();
      const { txId } = preparing(h);
      h.vote('a', txId, Vote.YES);
      h.vote('b', txId, Vote.NO);
      h.ack('c', txId, A);
      assert.equal(branchView(h, txId, 'c').acknowledged, true);
      assert.deepEqual(one(h.ack('a', txId, A), 'ended').outcome, A);
    });

    it('ignores a repeated persisted report and one for an unknown transaction', () => {
      const h = coordinator();
      const { txId } = committed(h);
      assert.deepEqual(h.persisted('commit', txId), []);
      assert.deepEqual(h.persisted('commit', 'tx-3-77'), []);
      assert.deepEqual(h.persistFailed('commit', txId), [], 'a failure report after success changes nothing');
      assert.equal(viewOf(h, txId).outcome, C);
    });
  });

  describe('phase-two retries', () => {
    it('re-sends the decision to unacknowledged connected participants with growing delays', () => {
      const h = coordinator();
      const { txId } = committed(h);
      h.ack('a', txId, C);
      h.disconnect('c');
      const delays: number[] = [];
      for (let i = 0; i < 5; i++) {
        const effects = h.fire(`retry/${txId}`, h.now + 1);
        assert.deepEqual(decisions(effects), ['b:committed'], `retry ${i + 1}`);
        const timer = one(effects, 'set-timer');
        assert.equal(timer.key, `retry/${txId}`);
        assert.equal(timer.jitterMs, Math.floor((timer.at - h.now) / 2));
        delays.push(timer.at - h.now);
      }
      assert.deepEqual(delays, [200, 400, 800, 800, 800]);
      // Attempts count every message handed to the session: the Prepare, the decision, 5 retries.
      assert.equal(branchView(h, txId, 'b').attempts, 7);
      assert.equal(branchView(h, txId, 'a').attempts, 2);
      assert.match(branchView(h, txId, 'c').lastError ?? '', /not connected/);
    });

    it('flags the transaction as needing attention after the configured attempts, and keeps retrying', () => {
      const h = coordinator();
      const { txId } = committed(h, ['a', 'b']);
      h.ack('a', txId, C);
      for (let i = 1; i < TEST_COORDINATOR_CONFIG.attentionAfterAttempts; i++) {
        h.fire(`retry/${txId}`);
        assert.equal(viewOf(h, txId).needsAttention, false, `after ${i} retries`);
      }
      h.fire(`retry/${txId}`);
      assert.equal(viewOf(h, txId).needsAttention, true);
      const later = h.fire(`retry/${txId}`);
      assert.deepEqual(decisions(later), ['b:committed']);
      assert.equal(one(later, 'set-timer').key, `retry/${txId}`);
      assert.equal(h.machine.liveCount, 1, 'never dropped');
      h.ack('b', txId, C);
      assert.equal(h.machine.liveCount, 0);
    });

    it('does nothing on a retry timer before the decision', () => {
      const h = coordinator();
      const { txId } = preparing(h);
      assert.deepEqual(h.fire(`retry/${txId}`), []);
    });

    it('re-sends the pending decision to a participant when it reconnects', () => {
      const h = coordinator();
      const { txId } = committed(h);
      h.ack('a', txId, C);
      h.disconnect('b');
      assert.deepEqual(h.connect('b'), [{ type: 'send', to: 'b', message: { type: 'decision', txId, outcome: C } }]);
      assert.deepEqual(h.connect('a'), [], 'a acknowledged already');
    });

    it('re-sends the Prepare to an unvoted participant when it reconnects, not to one that voted', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      h.disconnect('a');
      h.disconnect('b');
      assert.deepEqual(h.connect('a'), []);
      assert.deepEqual(prepareTargets(h.connect('b')), ['b']);
      assert.equal(branchView(h, txId, 'b').attempts, 2);
    });

    it('keeps track of participants across transactions on connect', () => {
      const h = coordinator(['a']);
      const first = preparing(h, ['a', 'b']);
      const second = preparing(h, ['b', 'c']);
      const effects = h.connect('b');
      assert.deepEqual(
        prepares(effects).map((p) => p.message.txId),
        [first.txId, second.txId],
      );
      assert.ok(h.machine.connected.has('b'));
      h.disconnect('b');
      assert.ok(!h.machine.connected.has('b'));
    });
  });

  describe('inquiries', () => {
    it('never counts an inquiry during prepare as a vote (an enlisted participant asks too)', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      assert.deepEqual(h.inquiry('b', txId), []);
      assert.equal(branchView(h, txId, 'b').vote, undefined);
      assert.equal(viewOf(h, txId).state, TxState.PREPARING);
    });

    it('does not count an inquiry over an existing vote', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      assert.deepEqual(h.inquiry('a', txId), []);
      assert.equal(viewOf(h, txId).state, TxState.PREPARING);
    });

    it('stays silent while the COMMIT record is being forced', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      h.vote('b', txId, Vote.YES);
      assert.deepEqual(h.inquiry('a', txId), []);
    });

    it('re-sends the decision when it is known', () => {
      const h = coordinator();
      const { txId } = committed(h, ['a', 'b']);
      assert.deepEqual(decisions(h.inquiry('a', txId)), ['a:committed']);
      assert.equal(branchView(h, txId, 'a').attempts, 3, 'prepare, decision, and the answer to the inquiry');
      h.ack('a', txId, C);
      assert.deepEqual(decisions(h.inquiry('a', txId)), ['a:committed'], 'even after its ack');
    });

    it('tells an unvoted branch the abort and from then on expects its ack', () => {
      const h = coordinator();
      const { txId } = preparing(h);
      h.vote('a', txId, Vote.YES);
      h.vote('b', txId, Vote.NO);
      assert.deepEqual(decisions(h.inquiry('c', txId)), ['c:aborted']);
      assert.equal(branchView(h, txId, 'c').vote, Vote.YES);
      h.ack('a', txId, A);
      assert.equal(h.machine.liveCount, 1, 'c must acknowledge too');
      assert.deepEqual(decisions(h.fire(`retry/${txId}`)), ['c:aborted']);
      h.ack('c', txId, A);
      assert.equal(h.machine.liveCount, 0);
    });
  });

  describe('initiator requests', () => {
    it('joins a repeated Commit to the one in flight: one prepare round, one reply each', () => {
      const h = coordinator();
      const { txId, requestId } = preparing(h, ['a', 'b']);
      const again = h.commit(txId, [branch('a'), branch('b')]);
      assert.deepEqual(again.effects, []);
      h.vote('a', txId, Vote.YES);
      const third = h.commit(txId, []);
      const voted = h.vote('b', txId, Vote.YES);
      const fourth = h.commit(txId, [], { waitForCompletion: true });
      assert.deepEqual(fourth.effects, []);
      const after = h.completePersists(voted);
      for (const id of [requestId, again.requestId, third.requestId]) assert.deepEqual(replyTo(after, id), { type: 'committed', txId });
      assert.deepEqual(only(after, 'reply').length, 3, 'the waitForCompletion request waits for the acks');
      assert.equal(
        only(h.effects(), 'send').filter((s) => s.message.type === 'prepare').length,
        2,
      );
      h.ack('a', txId, C);
      assert.deepEqual(replyTo(h.ack('b', txId, C), fourth.requestId), { type: 'committed', txId });
    });

    it('answers Commit on a committed transaction with committed (at once, or at the end when waiting)', () => {
      const h = coordinator();
      const { txId } = committed(h, ['a', 'b']);
      const now = h.commit(txId, []);
      assert.deepEqual(replyTo(now.effects, now.requestId), { type: 'committed', txId });
      const waiting = h.commit(txId, [], { waitForCompletion: true });
      assert.deepEqual(waiting.effects, []);
      h.ack('a', txId, C);
      assert.deepEqual(replyTo(h.ack('b', txId, C), waiting.requestId), { type: 'committed', txId });
    });

    it('answers Commit on an aborted transaction with TX_ABORTED and the reason', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      h.vote('b', txId, Vote.NO, 'no stock');
      const { requestId, effects } = h.commit(txId, []);
      const reply = replyTo(effects, requestId);
      assert.equal(errorCode(reply), ErrorCode.TX_ABORTED);
      assert.equal(reply.type === 'error' ? reply.error.reason : '', 'participant b voted NO: no stock');
    });

    it('aborts an active transaction on request', () => {
      const h = coordinator();
      const { txId } = h.begin();
      const { requestId, effects } = h.abort(txId, 'user cancelled');
      assert.deepEqual(replyTo(effects, requestId), { type: 'aborted', txId });
      assert.deepEqual(one(effects, 'decided'), { type: 'decided', txId, outcome: A, reason: 'aborted by the initiator: user cancelled', cause: 'initiator' });
      assert.deepEqual(one(effects, 'ended'), { type: 'ended', txId, outcome: A });
      assert.ok(effects.some((e) => e.type === 'cancel-timer' && e.key === `deadline/${txId}`));
    });

    it('aborts a preparing transaction on request and tells whoever may hold it prepared', () => {
      const h = coordinator();
      const { txId, requestId: commitRequest } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      const { requestId, effects } = h.abort(txId);
      assert.deepEqual(replyTo(effects, requestId), { type: 'aborted', txId });
      const commitReply = replyTo(effects, commitRequest);
      assert.equal(commitReply.type === 'error' ? commitReply.error.reason : '', 'aborted by the initiator');
      assert.deepEqual(decisions(effects), ['a:aborted', 'b:aborted']);
    });

    it('refuses to abort a transaction whose COMMIT is being written or is durable', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      const voted = h.vote('b', txId, Vote.YES);
      const during = h.abort(txId);
      assert.equal(errorCode(replyTo(during.effects, during.requestId)), ErrorCode.WRONG_STATE);
      h.completePersists(voted);
      const after = h.abort(txId);
      assert.equal(errorCode(replyTo(after.effects, after.requestId)), ErrorCode.WRONG_STATE);
      assert.equal(viewOf(h, txId).outcome, C);
    });

    it('answers a repeated abort with aborted, whether the transaction is still live or ended', () => {
      const h = coordinator();
      const live = preparing(h, ['a', 'b']);
      h.vote('a', live.txId, Vote.YES);
      h.abort(live.txId);
      const second = h.abort(live.txId);
      assert.deepEqual(replyTo(second.effects, second.requestId), { type: 'aborted', txId: live.txId });

      const { txId } = h.begin();
      h.abort(txId);
      const again = h.abort(txId);
      const record: CoordinatorRecord = { kind: CoordinatorRecordKind.END, txId, participants: [], outcome: A, reason: 'aborted by the initiator' };
      assert.deepEqual(replyTo(h.answerLookup(again.effects, record), again.requestId), { type: 'aborted', txId });
    });

    it('describes a live transaction on get', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      const { requestId, effects } = h.get(txId);
      const reply = replyTo(effects, requestId);
      assert.equal(reply.type, 'transaction');
      if (reply.type !== 'transaction') return;
      assert.equal(reply.view.state, TxState.PREPARING);
      assert.equal(reply.view.presumed, false);
      assert.deepEqual(
        reply.view.branches.map((b) => b.vote),
        [Vote.YES, undefined],
      );
    });

    it('answers INVALID_ARGUMENT for malformed ids without looking anything up', () => {
      const h = coordinator();
      for (const txId of ['', 'tx-3', 'tx-03-1', 'TX-3-1', 'tx-3-1\n', '../tx-3-1', 'tx-3-1!']) {
        // (An empty id on Commit means a one-shot transaction, so it is checked with Abort and Get only.)
        const requests = [h.abort(txId), h.get(txId), ...(txId === '' ? [] : [h.commit(txId, [branch('a')])])];
        for (const { requestId, effects } of requests) {
          assert.equal(effects.length, 1, JSON.stringify(effects));
          assert.equal(errorCode(replyTo(effects, requestId)), ErrorCode.INVALID_ARGUMENT, JSON.stringify(txId));
        }
      }
      assert.equal(h.machine.liveCount, 0);
    });

    it('answers TX_NOT_FOUND for well-formed ids it never issued (a future sequence or epoch)', () => {
      const h = coordinator();
      h.begin();
      for (const txId of ['tx-3-2', 'tx-4-1', 'tx-999-1']) {
        for (const { requestId, effects } of [h.get(txId), h.abort(txId), h.commit(txId, [])]) {
          assert.equal(effects.length, 1);
          assert.equal(errorCode(replyTo(effects, requestId)), ErrorCode.TX_NOT_FOUND);
        }
      }
    });

    it('looks up an id from an earlier epoch, carrying the request', () => {
      const h = coordinator();
      const { requestId, effects } = h.get('tx-2-5');
      assert.deepEqual(effects, [{ type: 'lookup', txId: 'tx-2-5', pending: { type: 'get', requestId, txId: 'tx-2-5' } }]);
    });

    it('presumes abort when the log has no record: get says so, Commit gets TX_ABORTED, Abort gets aborted', () => {
      const h = coordinator();
      const txId = 'tx-1-9';
      const get = h.get(txId);
      const view = replyTo(h.answerLookup(get.effects, undefined), get.requestId);
      assert.deepEqual(view, {
        type: 'transaction',
        view: { txId, state: TxState.ENDED, outcome: A, reason: 'no decision was recorded (presumed abort)', branches: [], presumed: true, needsAttention: false },
      });
      const commit = h.commit(txId, []);
      const commitReply = replyTo(h.answerLookup(commit.effects, undefined), commit.requestId);
      assert.equal(errorCode(commitReply), ErrorCode.TX_ABORTED);
      assert.match(commitReply.type === 'error' ? (commitReply.error.reason ?? '') : '', /presumed abort/);
      const abort = h.abort(txId);
      assert.deepEqual(replyTo(h.answerLookup(abort.effects, undefined), abort.requestId), { type: 'aborted', txId });
      assert.equal(h.machine.liveCount, 0);
    });

    it('answers from an END committed summary: committed, not presumed, and not abortable', () => {
      const h = coordinator();
      const txId = 'tx-2-4';
      const record: CoordinatorRecord = { kind: CoordinatorRecordKind.END, txId, participants: ['a', 'b'], outcome: C };
      const get = h.get(txId);
      assert.deepEqual(replyTo(h.answerLookup(get.effects, record), get.requestId), {
        type: 'transaction',
        view: {
          txId,
          state: TxState.ENDED,
          outcome: C,
          branches: [
            { participant: 'a', acknowledged: true, attempts: 0 },
            { participant: 'b', acknowledged: true, attempts: 0 },
          ],
          presumed: false,
          needsAttention: false,
        },
      });
      const commit = h.commit(txId, [], { waitForCompletion: true });
      assert.deepEqual(replyTo(h.answerLookup(commit.effects, record), commit.requestId), { type: 'committed', txId });
      const abort = h.abort(txId);
      assert.equal(errorCode(replyTo(h.answerLookup(abort.effects, record), abort.requestId)), ErrorCode.WRONG_STATE);
    });

    it('looks up a transaction of this epoch once it has ended', () => {
      const h = coordinator();
      const { txId } = committed(h, ['a', 'b']);
      h.ack('a', txId, C);
      const ended = h.ack('b', txId, C);
      const summary = one(ended, 'persist').ops.find((op) => op.op === 'put');
      assert.ok(summary && summary.op === 'put');
      const get = h.get(txId);
      const reply = replyTo(h.answerLookup(get.effects, summary.record), get.requestId);
      assert.equal(reply.type === 'transaction' ? reply.view.outcome : undefined, C);
    });

    describe('refuses bad branches with INVALID_ARGUMENT and changes nothing', () => {
      const cases: [string, () => ReturnType<typeof branch>[]][] = [
        ['a participant named twice', () => [branch('a'), branch('b'), branch('a')]],
        ['too many branches', () => ['a', 'b', 'c', 'd', 'e'].map((p) => branch(p))],
        ['an oversized payload', () => [branch('a'), branch('b', 'x'.repeat(TEST_COORDINATOR_CONFIG.maxPayloadBytes + 1))]],
        ['an empty participant name', () => [branch('')]],
        ['an uppercase participant name', () => [branch('Payments')]],
        ['a participant name with a separator', () => [branch('a!b')]],
        ['a participant name with a path', () => [branch('../a')]],
      ];
      for (const [what, make] of cases) {
        it(`${what} (one-shot and on a begun transaction)`, () => {
          const h = coordinator();
          const shot = h.commit('', make());
          assert.equal(errorCode(replyTo(shot.effects, shot.requestId)), ErrorCode.INVALID_ARGUMENT);
          assert.equal(shot.effects.length, 1);
          assert.equal(h.machine.liveCount, 0);

          const { txId } = h.begin();
          const begun = h.commit(txId, make());
          assert.equal(errorCode(replyTo(begun.effects, begun.requestId)), ErrorCode.INVALID_ARGUMENT);
          assert.equal(begun.effects.length, 1);
          assert.equal(viewOf(h, txId).state, TxState.ACTIVE);
          assert.deepEqual(viewOf(h, txId).branches, []);
          assert.equal(h.machine.liveCount, 1);
        });
      }

      it('an empty one-shot commit', () => {
        const h = coordinator();
        const { requestId, effects } = h.commit('', []);
        assert.deepEqual(effects, [
          { type: 'reply', requestId, reply: { type: 'error', error: { code: ErrorCode.INVALID_ARGUMENT, message: 'a one-shot commit needs at least one branch' } } },
        ]);
        assert.equal(h.machine.liveCount, 0);
      });

      it('a Commit whose branches with the enlisted ones exceed the limit', () => {
        const h = coordinator();
        const { txId } = h.begin();
        h.enlist('a', txId);
        h.enlist('b', txId);
        const { requestId, effects } = h.commit(txId, [branch('a'), branch('c'), branch('d'), branch('e')]);
        assert.equal(errorCode(replyTo(effects, requestId)), ErrorCode.INVALID_ARGUMENT);
        assert.deepEqual(
          viewOf(h, txId).branches.map((b) => b.participant),
          ['a', 'b'],
        );
        assert.equal(viewOf(h, txId).state, TxState.ACTIVE);
      });

      it('a Commit of a begun transaction with no branches named or enlisted, which can still commit later', () => {
        const h = coordinator();
        const { txId } = h.begin();
        const { requestId, effects } = h.commit(txId, []);
        assert.equal(errorCode(replyTo(effects, requestId)), ErrorCode.INVALID_ARGUMENT);
        assert.equal(viewOf(h, txId).state, TxState.ACTIVE);
        assert.deepEqual(prepareTargets(h.commit(txId, [branch('a'), branch('b')]).effects), ['a', 'b']);
      });
    });

    it('refuses a one-shot commit beyond the live-transaction limit or with a bad timeout', () => {
      const h = coordinator();
      const bad = h.commit('', [branch('a'), branch('b')], { timeoutMs: -5 });
      assert.equal(errorCode(replyTo(bad.effects, bad.requestId)), ErrorCode.INVALID_ARGUMENT);
      for (let i = 0; i < TEST_COORDINATOR_CONFIG.maxLiveTransactions; i++) h.begin();
      const full = h.commit('', [branch('a'), branch('b')]);
      assert.equal(errorCode(replyTo(full.effects, full.requestId)), ErrorCode.LIMIT_EXCEEDED);
      assert.equal(h.machine.liveCount, TEST_COORDINATOR_CONFIG.maxLiveTransactions);
    });
  });

  describe('garbage-collected summaries (the forgotten horizon)', () => {
    /** A coordinator of epoch 4 whose shell dropped END summaries up to tx-3-50. */
    function collected(): CoordinatorHarness {
      const h = new CoordinatorHarness({ epoch: 4 });
      h.connect('a');
      assert.deepEqual(h.handle({ type: 'gc-horizon', txId: 'tx-3-50' }), []);
      return h;
    }

    it('answers FORGOTTEN, never a presumed abort, for an id at or below the horizon without a record', () => {
      const h = collected();
      for (const txId of ['tx-3-50', 'tx-3-7', 'tx-2-900']) {
        const get = h.get(txId);
        const reply = replyTo(h.answerLookup(get.effects, undefined), get.requestId);
        assert.equal(reply.type, 'transaction');
        if (reply.type !== 'transaction') continue;
        assert.equal(reply.view.state, TxState.FORGOTTEN, txId);
        assert.equal(reply.view.outcome, undefined, 'no outcome is guessed');
        assert.equal(reply.view.presumed, false);
        assert.match(reply.view.reason ?? '', /no longer kept/);
      }
    });

    it('refuses Commit and Abort of a forgotten id with WRONG_STATE rather than guessing', () => {
      const h = collected();
      const commit = h.commit('tx-3-9', []);
      assert.equal(errorCode(replyTo(h.answerLookup(commit.effects, undefined), commit.requestId)), ErrorCode.WRONG_STATE);
      const abort = h.abort('tx-3-9');
      assert.equal(errorCode(replyTo(h.answerLookup(abort.effects, undefined), abort.requestId)), ErrorCode.WRONG_STATE);
    });

    it('still presumes abort above the horizon, and answers from a record below it', () => {
      const h = collected();
      const above = h.get('tx-3-51');
      const aboveReply = replyTo(h.answerLookup(above.effects, undefined), above.requestId);
      assert.equal(aboveReply.type === 'transaction' && aboveReply.view.presumed, true);
      const below = h.get('tx-3-8');
      const record: CoordinatorRecord = { kind: CoordinatorRecordKind.END, txId: 'tx-3-8', participants: ['a'], outcome: C };
      const belowReply = replyTo(h.answerLookup(below.effects, record), below.requestId);
      assert.equal(belowReply.type === 'transaction' ? belowReply.view.outcome : undefined, C);
    });

    it('tells a participant that asks about a forgotten id the abort (it cannot have acknowledged a commit)', () => {
      const h = collected();
      assert.deepEqual(decisions(h.answerLookup(h.inquiry('a', 'tx-3-9'), undefined)), ['a:aborted']);
    });

    it('only ever raises the horizon, and ignores a malformed one', () => {
      const h = collected();
      assert.deepEqual(h.handle({ type: 'gc-horizon', txId: 'tx-3-10' }), []);
      assert.deepEqual(h.handle({ type: 'gc-horizon', txId: 'garbage' }), []);
      const get = h.get('tx-3-40');
      const reply = replyTo(h.answerLookup(get.effects, undefined), get.requestId);
      assert.equal(reply.type === 'transaction' ? reply.view.state : undefined, TxState.FORGOTTEN);
    });

    it('takes the horizon at recovery', () => {
      const h = new CoordinatorHarness({ epoch: 5 });
      h.machine.recover([], h.now, 'tx-4-3');
      const get = h.get('tx-4-2');
      const reply = replyTo(h.answerLookup(get.effects, undefined), get.requestId);
      assert.equal(reply.type === 'transaction' ? reply.view.state : undefined, TxState.FORGOTTEN);
    });
  });

  describe('enlist', () => {
    it('adds the participant as a branch of an active transaction', () => {
      const h = coordinator();
      const { txId } = h.begin();
      const { requestId, effects } = h.enlist('a', txId, bytes('p'));
      assert.deepEqual(effects, [{ type: 'send', to: 'a', message: { type: 'enlist-result', requestId } }]);
      assert.deepEqual(viewOf(h, txId).branches, [{ participant: 'a', acknowledged: false, attempts: 0 }]);
    });

    it('is idempotent: enlisting twice keeps one branch, with the newest non-empty payload', () => {
      const h = coordinator();
      const { txId } = h.begin();
      h.enlist('a', txId, bytes('one'));
      h.enlist('a', txId, bytes('two'));
      h.enlist('a', txId);
      h.enlist('b', txId);
      const { effects } = h.commit(txId, []);
      assert.deepEqual(
        prepares(effects).map((p) => [p.to, text(p.message.payload)]),
        [
          ['a', 'two'],
          ['b', ''],
        ],
      );
    });

    it('refuses an oversized payload and a branch beyond the limit with LIMIT_EXCEEDED', () => {
      const h = coordinator();
      const { txId } = h.begin();
      const big = h.enlist('a', txId, bytes('x'.repeat(TEST_COORDINATOR_CONFIG.maxPayloadBytes + 1)));
      const result = one(big.effects, 'send').message;
      assert.equal(result.type === 'enlist-result' ? result.error?.code : undefined, ErrorCode.LIMIT_EXCEEDED);
      for (const p of ['a', 'b', 'c', 'd']) h.enlist(p, txId);
      const fifth = h.enlist('e', txId);
      const fifthResult = one(fifth.effects, 'send').message;
      assert.equal(fifthResult.type === 'enlist-result' ? fifthResult.error?.code : undefined, ErrorCode.LIMIT_EXCEEDED);
      assert.equal(viewOf(h, txId).branches.length, 4);
      // Re-enlisting an existing branch at the limit is fine.
      const again = one(h.enlist('a', txId).effects, 'send').message;
      assert.equal(again.type === 'enlist-result' ? again.error : 'x', undefined);
    });

    it('tells connected enlisted participants when the transaction aborts before Commit, without waiting for acks', () => {
      const h = coordinator(['a', 'b']);
      const { txId } = h.begin();
      h.enlist('a', txId);
      h.enlist('c', txId);
      const { effects } = h.abort(txId, 'changed my mind');
      // a may hold work under the transaction; c enlisted but is offline now (its session is gone).
      assert.deepEqual(decisions(effects), ['a:aborted']);
      assert.deepEqual(one(effects, 'ended'), { type: 'ended', txId, outcome: A });
    });

    it('refuses to enlist in a transaction that is no longer active with WRONG_STATE', () => {
      const h = coordinator();
      const { txId } = preparing(h, ['a', 'b']);
      const { requestId, effects } = h.enlist('c', txId);
      const result = one(effects, 'send');
      assert.equal(result.to, 'c');
      assert.ok(result.message.type === 'enlist-result' && result.message.requestId === requestId);
      assert.equal(result.message.error?.code, ErrorCode.WRONG_STATE);
      assert.match(result.message.error?.message ?? '', /no longer active \(it is preparing\)/);
      assert.equal(viewOf(h, txId).branches.length, 2);
    });

    it('answers an enlist for a malformed, never-issued or ended id', () => {
      const h = coordinator();
      const malformed = one(h.enlist('a', 'bogus').effects, 'send').message;
      assert.equal(malformed.type === 'enlist-result' ? malformed.error?.code : undefined, ErrorCode.INVALID_ARGUMENT);
      const future = one(h.enlist('a', 'tx-3-50').effects, 'send').message;
      assert.equal(future.type === 'enlist-result' ? future.error?.code : undefined, ErrorCode.TX_NOT_FOUND);

      const { txId } = h.begin();
      h.abort(txId);
      const { requestId, effects } = h.enlist('a', txId);
      const answered = h.answerLookup(effects, undefined);
      const ended = one(answered, 'send');
      assert.equal(ended.to, 'a');
      assert.ok(ended.message.type === 'enlist-result' && ended.message.requestId === requestId);
      assert.equal(ended.message.error?.code, ErrorCode.WRONG_STATE);
      assert.equal(h.machine.liveCount, 0);
    });
  });

  describe('decision log failures', () => {
    it('never reads a failed COMMIT write as a decision: the caller hears OUTCOME_UNKNOWN with the tx id, nothing is sent', () => {
      const h = coordinator();
      const { txId, requestId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      h.vote('b', txId, Vote.YES);
      // The record may have landed (LevelDB can fail a synced write that a reopen still finds).
      const effects = h.persistFailed('commit', txId, 'EIO');
      const reply = replyTo(effects, requestId);
      assert.equal(reply.type === 'error' ? reply.error.code : reply.type, ErrorCode.OUTCOME_UNKNOWN);
      assert.equal(reply.type === 'error' ? reply.error.txId : '', txId);
      assert.match(reply.type === 'error' ? reply.error.message : '', /outcome is unknown/);
      assert.deepEqual(only(effects, 'decided'), []);
      assert.deepEqual(decisions(effects), []);
      assert.equal(viewOf(h, txId).outcome, undefined, 'still undecided: recovery decides from the log');
    });

    it('aborts on a failed COMMIT write only when told the write did not land (the abort-on-failed-commit-write mutant)', () => {
      const h = coordinator();
      const { txId, requestId } = preparing(h, ['a', 'b']);
      h.vote('a', txId, Vote.YES);
      h.vote('b', txId, Vote.YES);
      const effects = h.handle({ type: 'persist-failed', token: { kind: 'commit', txId }, message: 'ENOSPC', assumeNotWritten: true });
      const reason = 'the decision log could not be written: ENOSPC';
      assert.deepEqual(one(effects, 'decided'), { type: 'decided', txId, outcome: A, reason, cause: 'log-failed' });
      assert.deepEqual(decisions(effects), ['a:aborted', 'b:aborted']);
      const reply = replyTo(effects, requestId);
      assert.equal(reply.type === 'error' ? reply.error.reason : '', reason);

      // A success report that arrives after all does not turn it into a commit.
      assert.deepEqual(h.persisted('commit', txId), []);
      h.ack('a', txId, A);
      const end = h.ack('b', txId, A);
      // The failed write may have left a record behind: the END removes it.
      assert.deepEqual(endRecord(end).ops[0], { op: 'del', space: 'open', txId });
      assert.deepEqual(
        decisions(h.effects()).filter((d) => d.endsWith(C)),
        [],
      );
    });
  });

  describe('recovery', () => {
    it('re-drives a COMMIT record: delivers to each participant as it connects, ends on the acks', () => {
      const h = new CoordinatorHarness({ epoch: 4 });
      const recovered = h.recover([{ kind: CoordinatorRecordKind.COMMIT, txId: 'tx-3-7', participants: ['a', 'b'] }]);
      assert.deepEqual(recovered, [{ type: 'set-timer', key: 'retry/tx-3-7', at: h.now + 100, jitterMs: 50 }]);
      assert.equal(h.machine.liveCount, 1);
      const view = viewOf(h, 'tx-3-7');
      assert.equal(view.state, TxState.DECIDED);
      assert.equal(view.outcome, C);

      assert.deepEqual(decisions(h.fire('retry/tx-3-7')), [], 'nobody is connected yet');
      assert.deepEqual(decisions(h.connect('a')), ['a:committed']);
      assert.deepEqual(decisions(h.connect('b')), ['b:committed']);
      h.ack('a', 'tx-3-7', C);
      const end = h.ack('b', 'tx-3-7', C);
      assert.deepEqual(endRecord(end).ops, [
        { op: 'del', space: 'open', txId: 'tx-3-7' },
        { op: 'put', space: 'done', record: { kind: CoordinatorRecordKind.END, txId: 'tx-3-7', participants: ['a', 'b'], outcome: C } },
      ]);
    });

    it('answers Commit and Abort on a recovered committed transaction', () => {
      const h = new CoordinatorHarness({ epoch: 4 });
      h.recover([{ kind: CoordinatorRecordKind.COMMIT, txId: 'tx-3-7', participants: ['a'] }]);
      const commit = h.commit('tx-3-7', []);
      assert.deepEqual(replyTo(commit.effects, commit.requestId), { type: 'committed', txId: 'tx-3-7' });
      const abort = h.abort('tx-3-7');
      assert.equal(errorCode(replyTo(abort.effects, abort.requestId)), ErrorCode.WRONG_STATE);
      h.connect('a');
      assert.deepEqual(decisions(h.inquiry('a', 'tx-3-7')), ['a:committed']);
    });

    it('resolves a ONE_PHASE record by asking its participant for its outcome on connect', () => {
      const h = new CoordinatorHarness({ epoch: 4 });
      h.recover([{ kind: CoordinatorRecordKind.ONE_PHASE, txId: 'tx-3-8', participants: ['a'] }]);
      assert.equal(viewOf(h, 'tx-3-8').state, TxState.IN_DOUBT);
      const get = h.get('tx-3-8');
      const reply = replyTo(get.effects, get.requestId);
      assert.equal(reply.type === 'transaction' ? reply.view.outcome : 'x', undefined, 'no outcome is claimed while in doubt');

      assert.deepEqual(outcomeQueries(h.connect('a')), ['a']);
      const commit = h.commit('tx-3-8', []);
      assert.deepEqual(commit.effects, []);
      const resolved = h.ack('a', 'tx-3-8', C);
      assert.deepEqual(replyTo(resolved, commit.requestId), { type: 'committed', txId: 'tx-3-8' });
      assert.deepEqual(endRecord(resolved).ops[0], { op: 'del', space: 'open', txId: 'tx-3-8' });
    });

    it('keeps asking an in-doubt participant on every retry', () => {
      const h = new CoordinatorHarness({ epoch: 4 });
      h.recover([{ kind: CoordinatorRecordKind.ONE_PHASE, txId: 'tx-3-8', participants: ['a'] }]);
      h.connect('a');
      assert.deepEqual(outcomeQueries(h.fire('retry/tx-3-8')), ['a']);
      assert.deepEqual(outcomeQueries(h.fire('retry/tx-3-8')), ['a']);
      assert.equal(one(h.ack('a', 'tx-3-8', A), 'ended').outcome, A);
    });

    it('answers a request whose lookup finished after the transaction became live from the live state', () => {
      const h = new CoordinatorHarness({ epoch: 4 });
      const get = h.get('tx-3-7');
      assert.equal(one(get.effects, 'lookup').txId, 'tx-3-7');
      h.recover([{ kind: CoordinatorRecordKind.COMMIT, txId: 'tx-3-7', participants: ['a'] }]);
      const reply = replyTo(h.answerLookup(get.effects, undefined), get.requestId);
      assert.equal(reply.type === 'transaction' ? reply.view.state : undefined, TxState.DECIDED);
      assert.equal(reply.type === 'transaction' ? reply.view.outcome : undefined, C, 'not the presumed abort');
    });

    it('ignores END records and repeated records, and presumes abort for other ids of earlier epochs', () => {
      const h = new CoordinatorHarness({ epoch: 4 });
      h.recover([
        { kind: CoordinatorRecordKind.COMMIT, txId: 'tx-3-7', participants: ['a'] },
        { kind: CoordinatorRecordKind.COMMIT, txId: 'tx-3-7', participants: ['a'] },
        { kind: CoordinatorRecordKind.END, txId: 'tx-3-6', participants: ['a'], outcome: C },
      ]);
      assert.deepEqual(h.machine.liveTxIds(), ['tx-3-7']);
      const get = h.get('tx-3-5');
      const reply = replyTo(h.answerLookup(get.effects, undefined), get.requestId);
      assert.equal(reply.type === 'transaction' && reply.view.presumed, true);
      assert.equal(h.begin().txId, 'tx-4-1');
    });
  });

  describe('end to end with participant machines', () => {
    it('commits at every participant exactly once, even when decisions are delivered again', () => {
      const cluster = new Cluster(['a', 'b', 'c']);
      cluster.connectAll();
      let txId = '';
      let requestId = 0;
      cluster.withCoordinator((c) => {
        const shot = c.oneShot([branch('a'), branch('b'), branch('c')], { waitForCompletion: true });
        txId = shot.txId;
        requestId = shot.requestId;
        return shot.effects;
      });
      assert.deepEqual(cluster.replies.get(requestId), [{ type: 'committed', txId }]);
      for (const p of ['a', 'b', 'c']) {
        assert.equal(cluster.timesApplied(p, txId, C), 1, p);
        assert.equal(cluster.recordOf(p, txId)?.state, 'committed');
      }
      assert.equal(cluster.open.size, 0);
      assert.equal(cluster.done.get(txId)?.outcome, C);
      // Replayed decisions are answered from the participant logs and apply nothing twice.
      for (const p of ['a', 'b']) cluster.redeliver(p, { type: 'decision', txId, outcome: C });
      for (const p of ['a', 'b', 'c']) assert.equal(cluster.timesApplied(p, txId, C), 1, p);
      assert.equal(cluster.coordinator.machine.liveCount, 0);
    });

    it('aborts everywhere when one participant votes NO, and nobody applies a commit', () => {
      const cluster = new Cluster(['a', 'b', 'c']);
      cluster.votes.set('b', { vote: Vote.NO, reason: 'insufficient funds' });
      cluster.connectAll();
      let txId = '';
      let requestId = 0;
      cluster.withCoordinator((c) => {
        const shot = c.oneShot([branch('a'), branch('b'), branch('c')]);
        txId = shot.txId;
        requestId = shot.requestId;
        return shot.effects;
      });
      const reply = cluster.replies.get(requestId)?.[0];
      assert.equal(reply?.type === 'error' ? reply.error.reason : '', 'participant b voted NO: insufficient funds');
      for (const p of ['a', 'b', 'c']) {
        assert.equal(cluster.timesApplied(p, txId, C), 0, p);
        assert.notEqual(cluster.recordOf(p, txId)?.state, 'committed');
        assert.equal(cluster.participants.get(p)?.machine.liveCount, 0, `${p} holds nothing`);
      }
      assert.equal(cluster.coordinator.machine.liveCount, 0);
    });

    it('releases an enlisted participant when the initiator aborts before Commit', () => {
      const cluster = new Cluster(['a', 'b']);
      cluster.connectAll();
      let txId = '';
      cluster.withCoordinator((c) => {
        const begun = c.begin();
        txId = begun.txId;
        return [...begun.effects, ...c.enlist('a', txId).effects];
      });
      cluster.participants.get('a')?.handle({ type: 'enlisted', txId });
      assert.equal(cluster.participants.get('a')?.machine.liveCount, 1);
      cluster.withCoordinator((c) => c.abort(txId).effects);
      assert.equal(cluster.timesApplied('a', txId, A), 1, 'the abort hook releases the work');
      assert.equal(cluster.participants.get('a')?.machine.liveCount, 0);
    });

    it('recovers a prepared participant whose YES was lost: its inquiry becomes the vote', () => {
      const cluster = new Cluster(['a', 'b']);
      cluster.connectAll();
      cluster.drop = (from, _to, message) => from === 'b' && message.type === 'vote';
      let txId = '';
      cluster.withCoordinator((c) => {
        const shot = c.oneShot([branch('a'), branch('b')]);
        txId = shot.txId;
        return shot.effects;
      });
      assert.deepEqual(cluster.participants.get('b')?.machine.inDoubt(), [txId]);
      cluster.drop = undefined;
      cluster.connect('b');
      for (const p of ['a', 'b']) assert.equal(cluster.timesApplied(p, txId, C), 1, p);
      assert.equal(cluster.coordinator.machine.liveCount, 0);
    });

    it('resolves a one-phase transaction whose vote was lost as committed, as the participant did', () => {
      const cluster = new Cluster(['a']);
      cluster.connectAll();
      cluster.drop = (from, _to, message) => from === 'a' && message.type === 'vote';
      let txId = '';
      let requestId = 0;
      cluster.withCoordinator((c) => {
        const shot = c.oneShot([branch('a')]);
        txId = shot.txId;
        requestId = shot.requestId;
        return shot.effects;
      });
      assert.equal(cluster.recordOf('a', txId)?.state, 'committed');
      assert.equal(cluster.replies.get(requestId), undefined);
      cluster.fireTimers('deadline/');
      assert.deepEqual(cluster.replies.get(requestId), [{ type: 'committed', txId }]);
      assert.equal(cluster.timesApplied('a', txId, C), 1);
      assert.equal(cluster.timesApplied('a', txId, A), 0);
      assert.equal(cluster.done.get(txId)?.outcome, C);
    });
  });
});
