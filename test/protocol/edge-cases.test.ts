// Edge cases found by review and randomised runs, kept as regressions.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Outcome, ParticipantRecordState, TxState, Vote } from '../../src/protocol/index.js';
import { branch, CoordinatorHarness, one, ParticipantHarness, sent } from './helpers.js';

const TX = 'tx-1-1';

describe('participant edge cases', () => {
  it('keeps a forced COMMITTED record for a one-phase READ_ONLY, so recovery never reads it as aborted', () => {
    const p = new ParticipantHarness();
    p.answerLookup(p.prepare(TX, { onePhase: true }), undefined);
    const effects = p.prepareDone(TX, Vote.READ_ONLY);
    const persist = one(effects, 'persist');
    assert.equal(persist.record.state, ParticipantRecordState.COMMITTED);
    assert.equal(persist.record.onePhase, true);
    assert.equal(persist.force, true);
    assert.deepEqual(sent(effects), [], 'no vote before the record is durable');
    assert.deepEqual(sent(p.persisted('outcome', TX)), [{ type: 'vote', txId: TX, vote: Vote.YES, reason: '' }]);
  });

  it('asks about an enlisted transaction on the inquiry timer and applies a lost abort', () => {
    const p = new ParticipantHarness({ inquiryIntervalMs: 100 });
    const armed = one(p.handle({ type: 'enlisted', txId: TX }), 'set-timer');
    assert.deepEqual(sent(p.fire(armed.key, armed.at)), [{ type: 'inquiry', txId: TX }]);
    const applied = p.decide(TX, Outcome.ABORTED);
    assert.deepEqual(one(applied, 'run-apply'), { type: 'run-apply', txId: TX, outcome: Outcome.ABORTED });
  });

  it('does not prepare an enlisted transaction after its deadline: aborts it and votes NO', () => {
    const p = new ParticipantHarness();
    p.handle({ type: 'enlisted', txId: TX });
    const effects = p.prepare(TX, { deadline: p.now - 1 });
    assert.equal(effects.some((e) => e.type === 'run-prepare'), false);
    assert.deepEqual(one(effects, 'run-apply'), { type: 'run-apply', txId: TX, outcome: Outcome.ABORTED });
    p.applyDone(TX);
    const [vote] = sent(p.persisted('outcome', TX));
    assert.equal(vote?.type === 'vote' && vote.vote, Vote.NO);
  });
});

describe('coordinator edge cases', () => {
  it('aborts when the last vote arrives after the deadline but before its timer fired', () => {
    const c = new CoordinatorHarness();
    c.connect('a', 'b');
    const { txId, effects } = c.oneShot([branch('a'), branch('b')], { timeoutMs: 1_000 });
    assert.ok(effects.length > 0);
    c.vote('a', txId, Vote.YES);
    c.now += 1_001;
    const late = c.vote('b', txId, Vote.YES);
    assert.equal(late.some((e) => e.type === 'persist' && e.force), false, 'no COMMIT record');
    assert.equal(c.machine.view(txId)?.outcome, Outcome.ABORTED);
    assert.equal(c.machine.view(txId)?.state, TxState.DECIDED);
  });
});
