// The participant state machine, transition by transition: prepare and the three votes, the
// write-ahead PREPARED record, one-phase commit, decisions applied exactly once, out-of-order and
// duplicate messages, transactions it no longer holds (answered from its log), hook retries,
// recovery of in-doubt transactions and inquiries.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ParticipantRecordState, type ParticipantEffect, type ParticipantRecord } from '../../src/protocol/participant-events.js';
import { ParticipantMachine } from '../../src/protocol/participant-machine.js';
import { Outcome, Vote } from '../../src/protocol/types.js';
import { bytes, ignoredWhy, one, only, ParticipantHarness, sent } from './helpers.js';

const C = Outcome.COMMITTED;
const A = Outcome.ABORTED;
const TX = 'tx-5-1';

function participant(): ParticipantHarness {
  return new ParticipantHarness({ inquiryIntervalMs: 1_000, hookRetryInitialMs: 50, hookRetryMaxMs: 400 });
}

/** A participant holding TX prepared (voted YES). */
function prepared(): ParticipantHarness {
  const p = participant();
  p.prepareYes(TX, { payload: bytes('order-7') });
  return p;
}

function types(effects: readonly ParticipantEffect[]): string[] {
  return effects.map((e) => (e.type === 'send' ? `send ${e.message.type}` : e.type));
}

const record = (state: ParticipantRecord['state'], onePhase = false): ParticipantRecord => ({ txId: TX, state, onePhase });

describe('ParticipantMachine', () => {
  describe('prepare', () => {
    it('looks up its log for a transaction it does not hold, then runs the prepare hook', () => {
      const p = participant();
      const deadline = p.now + 3_000;
      const effects = p.prepare(TX, { payload: bytes('work'), deadline });
      assert.deepEqual(effects, [
        { type: 'lookup', txId: TX, pending: { type: 'message', message: { type: 'prepare', txId: TX, payload: bytes('work'), deadline, onePhase: false } } },
      ]);
      assert.equal(p.machine.liveCount, 0, 'nothing is held before the log answered');
      const run = p.answerLookup(effects, undefined);
      assert.deepEqual(run, [{ type: 'run-prepare', txId: TX, payload: bytes('work'), deadline, onePhase: false }]);
      assert.equal(p.machine.liveCount, 1);
      assert.deepEqual(p.machine.inDoubt(), [], 'preparing is not in doubt yet');
    });

    it('runs the prepare hook at once for a transaction it enlisted in, with the Prepare payload', () => {
      const p = participant();
      const first = p.handle({ type: 'enlisted', txId: TX });
      assert.deepEqual(
        first.map((e) => e.type),
        ['set-timer'],
        'an enlisted transaction is asked about on the inquiry timer, in case its abort is lost',
      );
      assert.deepEqual(p.handle({ type: 'enlisted', txId: TX }), [], 'enlisting twice is harmless');
      assert.equal(p.machine.liveCount, 1);
      const effects = p.prepare(TX, { payload: bytes('from-coordinator'), deadline: p.now + 10 });
      assert.deepEqual(effects, [{ type: 'run-prepare', txId: TX, payload: bytes('from-coordinator'), deadline: p.now + 10, onePhase: false }]);
    });

    it('forces the PREPARED record on YES, and votes YES only once it is durable', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX, { payload: bytes('order-7') }), undefined);
      const done = p.prepareDone(TX, Vote.YES);
      assert.deepEqual(done, [
        {
          type: 'persist',
          record: { txId: TX, state: ParticipantRecordState.PREPARED, onePhase: false, payload: bytes('order-7') },
          force: true,
          token: { kind: 'prepared', txId: TX },
        },
      ]);
      assert.deepEqual(sent(done), []);
      assert.deepEqual(p.machine.inDoubt(), []);

      const durable = p.persisted('prepared', TX);
      assert.deepEqual(sent(durable), [{ type: 'vote', txId: TX, vote: Vote.YES, reason: '' }]);
      assert.deepEqual(one(durable, 'set-timer'), { type: 'set-timer', key: 'inquire', at: p.now + 1_000, jitterMs: 250 });
      assert.deepEqual(p.machine.inDoubt(), [TX]);

      const votedAt = p.trace.findIndex((t) => t.kind === 'effect' && t.effect.type === 'send' && t.effect.message.type === 'vote');
      const durableAt = p.trace.findIndex((t) => t.kind === 'input' && t.input.type === 'persisted');
      assert.ok(durableAt >= 0 && durableAt < votedAt);
    });

    it('on NO runs the abort hook, logs the abort, then votes NO with the reason', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX), undefined);
      const no = p.prepareDone(TX, Vote.NO, 'out of stock');
      assert.deepEqual(no, [{ type: 'run-apply', txId: TX, outcome: A }]);
      const applied = p.applyDone(TX);
      assert.deepEqual(applied, [
        { type: 'persist', record: { txId: TX, state: ParticipantRecordState.ABORTED, onePhase: false }, force: false, token: { kind: 'outcome', txId: TX } },
      ]);
      const logged = p.persisted('outcome', TX);
      assert.deepEqual(sent(logged), [{ type: 'vote', txId: TX, vote: Vote.NO, reason: 'out of stock' }]);
      assert.deepEqual(one(logged, 'finished'), { type: 'finished', txId: TX, outcome: A });
      assert.equal(p.machine.liveCount, 0);
    });

    it('gives a NO vote a reason even when the hook gave none', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX), undefined);
      p.prepareDone(TX, Vote.NO, '');
      p.applyDone(TX);
      assert.deepEqual(sent(p.persisted('outcome', TX)), [{ type: 'vote', txId: TX, vote: Vote.NO, reason: 'the prepare hook refused' }]);
    });

    it('on READ_ONLY votes at once and forgets the transaction: no record, no hook', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX), undefined);
      const effects = p.prepareDone(TX, Vote.READ_ONLY);
      assert.deepEqual(effects, [
        { type: 'send', message: { type: 'vote', txId: TX, vote: Vote.READ_ONLY, reason: '' } },
        { type: 'finished', txId: TX, outcome: undefined },
      ]);
      assert.equal(p.machine.liveCount, 0);
    });

    it('votes NO without running the hook when the Prepare arrives at or after its deadline', () => {
      for (const late of [0, 1]) {
        const p = participant();
        const effects = p.answerLookup(p.prepare(TX, { deadline: p.now - late }), undefined);
        assert.deepEqual(effects, [
          { type: 'send', message: { type: 'vote', txId: TX, vote: Vote.NO, reason: 'the prepare deadline had passed when the request arrived' } },
        ]);
        assert.equal(p.machine.liveCount, 0);
      }
    });

    it('ignores a repeated Prepare while working on it, and answers YES again once prepared', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX), undefined);
      assert.deepEqual(p.prepare(TX), [{ type: 'ignored', why: 'duplicate', what: 'prepare', txId: TX }]);
      p.prepareDone(TX, Vote.YES);
      assert.deepEqual(ignoredWhy(p.prepare(TX)), ['duplicate'], 'while PREPARED is being forced');
      p.persisted('prepared', TX);
      assert.deepEqual(p.prepare(TX), [{ type: 'send', message: { type: 'vote', txId: TX, vote: Vote.YES, reason: '' } }]);
    });

    it('ignores reports for transactions it does not hold or in the wrong stage', () => {
      const p = participant();
      assert.deepEqual(p.prepareDone('tx-5-9', Vote.YES), []);
      assert.deepEqual(p.applyDone('tx-5-9'), []);
      assert.deepEqual(p.applyFailed('tx-5-9'), []);
      assert.deepEqual(p.persisted('prepared', 'tx-5-9'), []);
      const q = prepared();
      assert.deepEqual(q.prepareDone(TX, Vote.NO), [], 'a second prepare-done changes nothing');
      assert.deepEqual(q.applyDone(TX), [], 'no hook is running');
      assert.deepEqual(q.persisted('outcome', TX), [], 'no outcome is being written');
      assert.deepEqual(q.persisted('prepared', TX), [], 'PREPARED is already durable');
      assert.deepEqual(q.machine.inDoubt(), [TX]);
      assert.deepEqual(q.handle({ type: 'disconnected' }), []);
    });
  });

  describe('one-phase commit', () => {
    it('on YES commits at once: commit hook, forced COMMITTED record, then the YES vote', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX, { onePhase: true }), undefined);
      const yes = p.prepareDone(TX, Vote.YES);
      assert.deepEqual(yes, [{ type: 'run-apply', txId: TX, outcome: C }]);
      const applied = p.applyDone(TX);
      assert.deepEqual(applied, [
        { type: 'persist', record: { txId: TX, state: ParticipantRecordState.COMMITTED, onePhase: true }, force: true, token: { kind: 'outcome', txId: TX } },
      ]);
      assert.deepEqual(sent(applied), []);
      const logged = p.persisted('outcome', TX);
      assert.deepEqual(sent(logged), [{ type: 'vote', txId: TX, vote: Vote.YES, reason: '' }]);
      assert.deepEqual(one(logged, 'finished'), { type: 'finished', txId: TX, outcome: C });
      assert.deepEqual(p.machine.inDoubt(), [], 'a one-phase participant is never in doubt');
    });

    it('on NO aborts and votes NO; the abort record need not be forced', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX, { onePhase: true }), undefined);
      assert.deepEqual(p.prepareDone(TX, Vote.NO, 'bad'), [{ type: 'run-apply', txId: TX, outcome: A }]);
      const persist = one(p.applyDone(TX), 'persist');
      assert.equal(persist.force, false);
      assert.deepEqual(persist.record, { txId: TX, state: ParticipantRecordState.ABORTED, onePhase: true });
      assert.deepEqual(sent(p.persisted('outcome', TX)), [{ type: 'vote', txId: TX, vote: Vote.NO, reason: 'bad' }]);
    });

    it('treats the coordinator asking with an abort while committing as a duplicate, and still votes YES', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX, { onePhase: true }), undefined);
      p.prepareDone(TX, Vote.YES);
      assert.deepEqual(p.decide(TX, A), [{ type: 'ignored', why: 'duplicate', what: 'decision', txId: TX }]);
      p.applyDone(TX);
      assert.deepEqual(ignoredWhy(p.decide(TX, A)), ['duplicate']);
      assert.deepEqual(sent(p.persisted('outcome', TX)), [{ type: 'vote', txId: TX, vote: Vote.YES, reason: '' }]);
    });

    it('applies the abort and acknowledges it when asked before the prepare hook returned', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX, { onePhase: true }), undefined);
      assert.deepEqual(p.decide(TX, A), []);
      assert.deepEqual(p.prepareDone(TX, Vote.YES), [{ type: 'run-apply', txId: TX, outcome: A }]);
      p.applyDone(TX);
      assert.deepEqual(sent(p.persisted('outcome', TX)), [{ type: 'ack', txId: TX, outcome: A }]);
    });

    it('answers an outcome query for a finished one-phase commit from its record: COMMITTED, never an abort applied', () => {
      const p = participant();
      const effects = p.handle({ type: 'message', message: { type: 'outcome-query', txId: TX } });
      assert.deepEqual(p.answerLookup(effects, record(ParticipantRecordState.COMMITTED, true)), [
        { type: 'send', message: { type: 'ack', txId: TX, outcome: C } },
      ]);
    });

    it('decides ABORTED on an outcome query for a transaction it never saw, durably before it answers', () => {
      const p = participant();
      const effects = p.answerLookup(p.handle({ type: 'message', message: { type: 'outcome-query', txId: TX } }), undefined);
      assert.deepEqual(one(effects, 'persist').record, { txId: TX, state: ParticipantRecordState.ABORTED, onePhase: false });
      assert.deepEqual(sent(effects), []);
      assert.deepEqual(sent(p.persisted('outcome', TX)), [{ type: 'ack', txId: TX, outcome: A }]);
    });

    it('ignores an outcome query for a transaction it holds prepared in two phases (not its to decide)', () => {
      const p = participant();
      p.prepareYes(TX);
      const effects = p.handle({ type: 'message', message: { type: 'outcome-query', txId: TX } });
      assert.deepEqual(ignoredWhy(effects), ['query-for-two-phase']);
      assert.deepEqual(p.machine.inDoubt(), [TX]);
    });

    it('answers the resolving abort for a finished one-phase commit from its record', () => {
      const p = participant();
      const effects = p.decide(TX, A);
      assert.deepEqual(p.answerLookup(effects, record(ParticipantRecordState.COMMITTED, true)), [
        { type: 'send', message: { type: 'ack', txId: TX, outcome: C } },
      ]);
    });
  });

  describe('decisions on a prepared transaction', () => {
    it('commits exactly once: one hook run even when the decision arrives twice, then the ack', () => {
      const p = prepared();
      assert.deepEqual(p.decide(TX, C), [{ type: 'run-apply', txId: TX, outcome: C }]);
      assert.deepEqual(p.machine.inDoubt(), []);
      assert.deepEqual(p.decide(TX, C), [{ type: 'ignored', why: 'duplicate', what: 'decision', txId: TX }]);
      const applied = p.applyDone(TX);
      // Forced: once acknowledged, the coordinator may forget the transaction, so a power loss must
      // not take this participant back to PREPARED.
      assert.deepEqual(applied, [
        { type: 'persist', record: { txId: TX, state: ParticipantRecordState.COMMITTED, onePhase: false }, force: true, token: { kind: 'outcome', txId: TX } },
      ]);
      assert.deepEqual(ignoredWhy(p.decide(TX, C)), ['duplicate'], 'while the outcome is being written');
      assert.deepEqual(sent(applied), [], 'no ack before the outcome is logged');
      const logged = p.persisted('outcome', TX);
      assert.deepEqual(logged, [
        { type: 'cancel-timer', key: `apply/${TX}` },
        { type: 'send', message: { type: 'ack', txId: TX, outcome: C } },
        { type: 'finished', txId: TX, outcome: C },
      ]);
      const runs = p.trace.filter((t) => t.kind === 'effect' && t.effect.type === 'run-apply');
      assert.equal(runs.length, 1);
      assert.equal(p.machine.liveCount, 0);
    });

    it('aborts on an abort decision and acknowledges it; the abort record need not be forced', () => {
      const p = prepared();
      assert.deepEqual(p.decide(TX, A), [{ type: 'run-apply', txId: TX, outcome: A }]);
      assert.equal(one(p.applyDone(TX), 'persist').force, false);
      assert.deepEqual(sent(p.persisted('outcome', TX)), [{ type: 'ack', txId: TX, outcome: A }]);
    });

    it('reports a decision that contradicts the one being applied, and keeps the first', () => {
      const p = prepared();
      p.decide(TX, C);
      assert.deepEqual(p.decide(TX, A), [{ type: 'ignored', why: 'conflicting-decision', what: 'decision', txId: TX }]);
      p.applyDone(TX);
      assert.equal(one(p.persisted('outcome', TX), 'finished').outcome, C);
    });

    it('answers a decision for a finished transaction from its record, without running a hook', () => {
      const p = prepared();
      p.decide(TX, C);
      p.applyDone(TX);
      p.persisted('outcome', TX);
      const again = p.decide(TX, C);
      assert.deepEqual(types(again), ['lookup']);
      assert.deepEqual(p.answerLookup(again, record(ParticipantRecordState.COMMITTED)), [
        { type: 'send', message: { type: 'ack', txId: TX, outcome: C } },
      ]);
      assert.equal(p.trace.filter((t) => t.kind === 'effect' && t.effect.type === 'run-apply').length, 1);
    });

    it('retries a commit hook that failed, with growing delays, until it succeeds', () => {
      const p = prepared();
      p.decide(TX, C);
      const first = p.applyFailed(TX, 'db down');
      assert.deepEqual(first, [{ type: 'set-timer', key: `apply/${TX}`, at: p.now + 50, jitterMs: 25 }]);
      assert.deepEqual(ignoredWhy(p.decide(TX, C)), ['duplicate'], 'a re-sent decision does not start a second run');
      assert.deepEqual(p.fire(`apply/${TX}`, p.now + 50), [{ type: 'run-apply', txId: TX, outcome: C }]);
      const second = p.applyFailed(TX);
      assert.deepEqual(second, [{ type: 'set-timer', key: `apply/${TX}`, at: p.now + 100, jitterMs: 50 }]);
      p.fire(`apply/${TX}`, p.now + 100);
      assert.equal(one(p.applyDone(TX), 'persist').record.state, ParticipantRecordState.COMMITTED);
      assert.ok(p.persisted('outcome', TX).some((e) => e.type === 'cancel-timer' && e.key === `apply/${TX}`));
      assert.deepEqual(p.fire(`apply/${TX}`), [], 'a stale retry timer does nothing');
    });

    it('caps the hook retry delay', () => {
      const p = prepared();
      p.decide(TX, A);
      let last = 0;
      for (let i = 0; i < 6; i++) {
        const timer = one(p.applyFailed(TX), 'set-timer');
        last = timer.at - p.now;
        p.fire(`apply/${TX}`, timer.at);
      }
      assert.equal(last, 400);
    });
  });

  describe('out-of-order and premature messages', () => {
    it('applies an abort that arrived while the prepare hook ran, and acknowledges it instead of voting', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX), undefined);
      assert.deepEqual(p.decide(TX, A), [], 'noted, applied once the hook returns');
      const done = p.prepareDone(TX, Vote.YES);
      assert.deepEqual(done, [{ type: 'run-apply', txId: TX, outcome: A }], 'no PREPARED record and no YES');
      p.applyDone(TX);
      assert.deepEqual(sent(p.persisted('outcome', TX)), [{ type: 'ack', txId: TX, outcome: A }]);
      assert.ok(!p.trace.some((t) => t.kind === 'effect' && t.effect.type === 'send' && t.effect.message.type === 'vote'));
    });

    it('applies an abort that arrived while PREPARED was being forced, without voting YES', () => {
      const p = participant();
      p.answerLookup(p.prepare(TX), undefined);
      p.prepareDone(TX, Vote.YES);
      assert.deepEqual(p.decide(TX, A), []);
      assert.deepEqual(p.persisted('prepared', TX), [{ type: 'run-apply', txId: TX, outcome: A }]);
      assert.deepEqual(p.machine.inDoubt(), []);
      p.applyDone(TX);
      assert.deepEqual(sent(p.persisted('outcome', TX)), [{ type: 'ack', txId: TX, outcome: A }]);
    });

    it('never applies a commit for a transaction it has not prepared', () => {
      const p = participant();
      p.handle({ type: 'enlisted', txId: TX });
      assert.deepEqual(p.decide(TX, C), [{ type: 'ignored', why: 'premature-commit', what: 'decision', txId: TX }]);
      p.prepare(TX);
      assert.deepEqual(ignoredWhy(p.decide(TX, C)), ['premature-commit'], 'while preparing');
      p.prepareDone(TX, Vote.YES);
      assert.deepEqual(ignoredWhy(p.decide(TX, C)), ['premature-commit'], 'while PREPARED is being forced');
      assert.ok(!p.trace.some((t) => t.kind === 'effect' && t.effect.type === 'run-apply'));
    });

    it('ignores a commit for a transaction it has no record of', () => {
      const p = participant();
      const effects = p.decide(TX, C);
      assert.deepEqual(types(effects), ['lookup']);
      assert.deepEqual(p.answerLookup(effects, undefined), [{ type: 'ignored', why: 'commit-unknown-tx', what: 'decision', txId: TX }]);
      assert.equal(p.machine.liveCount, 0);
    });

    it('aborts an enlisted transaction that is aborted before Prepare', () => {
      const p = participant();
      p.handle({ type: 'enlisted', txId: TX });
      assert.deepEqual(p.decide(TX, A), [{ type: 'run-apply', txId: TX, outcome: A }]);
      p.applyDone(TX);
      assert.deepEqual(sent(p.persisted('outcome', TX)), [{ type: 'ack', txId: TX, outcome: A }]);
      assert.equal(p.machine.liveCount, 0);
    });

    it('writes a tombstone for an abort of a transaction it never saw, acks it, and later votes NO to its Prepare', () => {
      const p = participant();
      const effects = p.decide(TX, A);
      const tomb = p.answerLookup(effects, undefined);
      assert.deepEqual(tomb, [
        { type: 'persist', record: { txId: TX, state: ParticipantRecordState.ABORTED, onePhase: false }, force: false, token: { kind: 'outcome', txId: TX } },
      ]);
      assert.ok(!tomb.some((e) => e.type === 'run-apply'), 'there is nothing to undo');
      assert.deepEqual(ignoredWhy(p.prepare(TX)), ['duplicate'], 'a Prepare racing the tombstone is dropped');
      const logged = p.persisted('outcome', TX);
      assert.deepEqual(sent(logged), [{ type: 'ack', txId: TX, outcome: A }]);
      assert.deepEqual(one(logged, 'finished'), { type: 'finished', txId: TX, outcome: A });

      const late = p.prepare(TX);
      assert.deepEqual(p.answerLookup(late, record(ParticipantRecordState.ABORTED)), [
        { type: 'send', message: { type: 'vote', txId: TX, vote: Vote.NO, reason: 'already aborted here' } },
      ]);
      assert.ok(!p.trace.some((t) => t.kind === 'effect' && t.effect.type === 'run-prepare'));
    });

    it('answers a Prepare for a transaction it already committed with YES from its record', () => {
      const p = participant();
      const effects = p.prepare(TX);
      assert.deepEqual(p.answerLookup(effects, record(ParticipantRecordState.COMMITTED)), [
        { type: 'send', message: { type: 'vote', txId: TX, vote: Vote.YES, reason: '' } },
      ]);
    });

    it('answers an abort for a transaction it already aborted from its record', () => {
      const p = participant();
      assert.deepEqual(p.answerLookup(p.decide(TX, A), record(ParticipantRecordState.ABORTED)), [
        { type: 'send', message: { type: 'ack', txId: TX, outcome: A } },
      ]);
    });

    it('handles a lookup answer as a repeat when another message made the transaction live meanwhile', () => {
      const p = participant();
      const first = p.prepare(TX);
      const second = p.decide(TX, A);
      assert.deepEqual(types(p.answerLookup(first, undefined)), ['run-prepare']);
      assert.deepEqual(p.answerLookup(second, undefined), [], 'the abort is noted for the running prepare');
      assert.deepEqual(p.prepareDone(TX, Vote.YES), [{ type: 'run-apply', txId: TX, outcome: A }]);
    });

    it('runs the prepare hook for a Prepare whose lookup raced the enlistment', () => {
      const p = participant();
      const lookup = p.prepare(TX, { payload: bytes('late-enlist') });
      p.handle({ type: 'enlisted', txId: TX });
      const effects = p.answerLookup(lookup, undefined);
      assert.deepEqual(types(effects), ['run-prepare']);
      p.prepareDone(TX, Vote.YES);
      assert.deepEqual(sent(p.persisted('prepared', TX)), [{ type: 'vote', txId: TX, vote: Vote.YES, reason: '' }]);
    });

    it('re-sends the YES for a repeated Prepare whose lookup finished after the transaction was prepared', () => {
      const p = participant();
      const first = p.prepare(TX);
      const second = p.prepare(TX);
      p.answerLookup(first, undefined);
      p.prepareDone(TX, Vote.YES);
      p.persisted('prepared', TX);
      assert.deepEqual(sent(p.answerLookup(second, undefined)), [{ type: 'vote', txId: TX, vote: Vote.YES, reason: '' }]);
    });

    it('runs the prepare hook only once when the same Prepare is looked up twice', () => {
      const p = participant();
      const first = p.prepare(TX);
      const second = p.prepare(TX);
      p.answerLookup(first, undefined);
      assert.deepEqual(ignoredWhy(p.answerLookup(second, undefined)), ['duplicate']);
      assert.equal(p.trace.filter((t) => t.kind === 'effect' && t.effect.type === 'run-prepare').length, 1);
    });

    it('ignores a lookup answer for something that is not a message', () => {
      const p = participant();
      assert.deepEqual(p.handle({ type: 'lookup-result', txId: TX, record: undefined, pending: { type: 'connected' } }), []);
      assert.equal(p.machine.liveCount, 0);
    });
  });

  describe('recovery and inquiries', () => {
    const records: ParticipantRecord[] = [
      { txId: 'tx-4-1', state: ParticipantRecordState.PREPARED, onePhase: false, payload: bytes('p1') },
      { txId: 'tx-4-2', state: ParticipantRecordState.COMMITTED, onePhase: false },
      { txId: 'tx-4-3', state: ParticipantRecordState.PREPARED, onePhase: false },
      { txId: 'tx-4-4', state: ParticipantRecordState.ABORTED, onePhase: true },
    ];

    it('holds every PREPARED record in doubt, and only those', () => {
      const p = participant();
      const effects = p.recover(records);
      assert.deepEqual(p.machine.inDoubt(), ['tx-4-1', 'tx-4-3']);
      assert.equal(p.machine.liveCount, 2);
      assert.deepEqual(effects, [{ type: 'set-timer', key: 'inquire', at: p.now + 1_000, jitterMs: 250 }]);
    });

    it('asks the coordinator about each in-doubt transaction when connected', () => {
      const p = participant();
      p.recover(records);
      assert.deepEqual(sent(p.handle({ type: 'connected' })), [
        { type: 'inquiry', txId: 'tx-4-1' },
        { type: 'inquiry', txId: 'tx-4-3' },
      ]);
    });

    it('asks again on the inquiry timer, and stops once nothing is in doubt', () => {
      const p = participant();
      p.recover(records);
      const first = p.fire('inquire', p.now + 1_000);
      assert.deepEqual(sent(first), [
        { type: 'inquiry', txId: 'tx-4-1' },
        { type: 'inquiry', txId: 'tx-4-3' },
      ]);
      assert.deepEqual(one(first, 'set-timer'), { type: 'set-timer', key: 'inquire', at: p.now + 1_000, jitterMs: 250 });

      for (const txId of ['tx-4-1', 'tx-4-3']) {
        p.decide(txId, C);
        p.applyDone(txId);
        p.persisted('outcome', txId);
      }
      assert.deepEqual(p.fire('inquire', p.now + 1_000), [], 'nothing to ask, no new timer');
    });

    it('asks on the timer only about transactions in doubt for a full interval', () => {
      const p = participant();
      p.prepareYes('tx-5-1');
      p.now += 600;
      p.prepareYes('tx-5-2');
      const timer = p.fire('inquire', p.now + 400);
      assert.deepEqual(sent(timer), [{ type: 'inquiry', txId: 'tx-5-1' }]);
      assert.deepEqual(sent(p.fire('inquire', p.now + 1_000)), [
        { type: 'inquiry', txId: 'tx-5-1' },
        { type: 'inquiry', txId: 'tx-5-2' },
      ]);
    });

    it('arms one inquiry timer however many transactions become prepared', () => {
      const p = participant();
      const all = [...p.prepareYes('tx-5-1'), ...p.prepareYes('tx-5-2'), ...p.prepareYes('tx-5-3')];
      assert.equal(only(all, 'set-timer').length, 1);
    });

    it('applies the coordinator decision to a recovered transaction and answers a repeated Prepare with YES', () => {
      const p = participant();
      p.recover(records);
      assert.deepEqual(p.prepare('tx-4-1'), [{ type: 'send', message: { type: 'vote', txId: 'tx-4-1', vote: Vote.YES, reason: '' } }]);
      assert.deepEqual(p.decide('tx-4-1', A), [{ type: 'run-apply', txId: 'tx-4-1', outcome: A }]);
      p.applyDone('tx-4-1');
      assert.deepEqual(sent(p.persisted('outcome', 'tx-4-1')), [{ type: 'ack', txId: 'tx-4-1', outcome: A }]);
      assert.deepEqual(p.machine.inDoubt(), ['tx-4-3']);
    });

    it('never decides an in-doubt transaction on its own, however long it waits', () => {
      const p = participant();
      p.recover(records);
      for (let i = 0; i < 20; i++) {
        const effects = p.fire('inquire', p.now + 10_000);
        assert.ok(!effects.some((e) => e.type === 'run-apply' || e.type === 'persist'));
      }
      assert.deepEqual(p.machine.inDoubt(), ['tx-4-1', 'tx-4-3']);
    });

    it('ignores repeated records and sends nothing on connect when nothing is in doubt', () => {
      const p = participant();
      assert.deepEqual(p.recover([]), []);
      assert.deepEqual(p.handle({ type: 'connected' }), []);
      const q = participant();
      q.recover([records[0] as ParticipantRecord, records[0] as ParticipantRecord]);
      assert.deepEqual(q.machine.inDoubt(), ['tx-4-1']);
    });

    it('uses the default configuration when given none', () => {
      const m = new ParticipantMachine();
      const effects = m.recover([records[0] as ParticipantRecord], 0);
      assert.deepEqual(effects, [{ type: 'set-timer', key: 'inquire', at: 2_000, jitterMs: 500 }]);
    });
  });
});
