// The participant session stream, driven frame by frame through the raw generated client. A
// malformed frame (no hello first, a bad name, hello again, an enum that is not a vote or an
// outcome, a malformed tx id) ends the stream with INVALID_ARGUMENT and applies nothing of it; a
// name already connected is refused with ALREADY_EXISTS without disturbing the live session.
// Well-formed messages that do not fit (unknown, duplicate, conflicting, late, from a stranger,
// acknowledging the wrong outcome) change no decision: they are counted and ignored, or answered
// with the decision, and the session stays up.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';

import type { CoordinatorStats } from '../../src/coordinator/index.js';
import { Outcome, Vote } from '../../src/gen/verdict/v1/common.js';
import { TransactionState, type CommitResponse } from '../../src/gen/verdict/v1/transaction.js';
import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';
import { expectStatus, RawSessions, RawTransactions, type RawSession } from '../support/raw-grpc.js';

const MAX_MESSAGE_BYTES = 2 * 1024 * 1024;
const { OUTCOME_COMMITTED: COMMITTED, OUTCOME_ABORTED: ABORTED } = Outcome;
const { VOTE_YES: YES, VOTE_NO: NO } = Vote;

describe('the participant session protocol', () => {
  let cluster: TestCluster;
  let raw: RawTransactions;
  let sessions: RawSessions;
  let epoch = 0;

  const stats = (): CoordinatorStats => cluster.coordinator.stats;

  /**
   * Waits until every END record is written and returns the counters. Each transaction of this
   * suite is a committed one (one forced COMMIT or ONE_PHASE record) or an abort without a forced
   * record, and writes one END record once it ended, lazily: the log is idle exactly when
   * writes = committed + ended. A record written for an ignored message breaks the equation.
   */
  function settled(): Promise<CoordinatorStats> {
    return waitFor('the decision log to settle (writes = committed + ended)', () => {
      const s = stats();
      return s.log.writes === s.committed + s.ended ? s : undefined;
    });
  }

  /** Begins a transaction and starts committing it over `names`; the Commit answer comes later. */
  /** Capabilities Begin returned, by transaction. */
  const capabilities = new Map<string, string>();

  async function preparing(names: readonly string[], timeoutMs = 10_000): Promise<{ txId: string; commit: Promise<CommitResponse> }> {
    const { txId, capability } = await raw.begin({ timeoutMs });
    capabilities.set(txId, capability);
    const commit = raw.commit({ txId, branches: names.map((participant) => ({ participant, payload: Buffer.from(`work of ${participant}`) })) });
    // Handled when the test awaits it; never an unhandled rejection in between.
    commit.catch(() => undefined);
    return { txId, commit };
  }

  /** Runs a two-branch transaction over `a` and `b` to its end: prepared, voted, committed, acknowledged. */
  async function committedAndEnded(a: RawSession, b: RawSession, names: readonly [string, string]): Promise<string> {
    const { txId, commit } = await preparing(names);
    await Promise.all([a.prepareFor(txId), b.prepareFor(txId)]);
    a.vote(txId, YES);
    b.vote(txId, YES);
    assert.deepEqual(await commit, { txId, outcome: COMMITTED });
    await Promise.all([a.decisionCount(txId, 1), b.decisionCount(txId, 1)]);
    a.ack(txId, COMMITTED);
    b.ack(txId, COMMITTED);
    await waitFor(`${txId} to end`, () => cluster.coordinator.describe(txId) === undefined);
    return txId;
  }

  /** Acknowledges the decision of `txId` from every session (once it arrived) and waits for the end. */
  async function acknowledge(txId: string, ...voters: RawSession[]): Promise<void> {
    for (const v of voters) {
      const [outcome] = await v.decisionCount(txId, 1);
      v.ack(txId, outcome ?? Outcome.OUTCOME_UNSPECIFIED);
    }
    await waitFor(`${txId} to end`, () => cluster.coordinator.describe(txId) === undefined);
  }

  /** Asserts that `session` is still registered and working: it commits a one-phase transaction. */
  async function assertWorks(session: RawSession, name: string): Promise<void> {
    assert.equal(session.ended, false, `the session of ${name} ended`);
    const { txId, commit } = await preparing([name]);
    const prepare = await session.prepareFor(txId);
    assert.equal(prepare.onePhase, true);
    assert.equal(prepare.payload.toString(), `work of ${name}`);
    session.vote(txId, YES);
    assert.deepEqual(await commit, { txId, outcome: COMMITTED });
    await waitFor(`${txId} to end`, () => cluster.coordinator.describe(txId) === undefined);
  }

  before(async () => {
    // No phase-2 retries within a test: every decision a session receives is one the test caused.
    const options = { protocol: { retryInitialMs: 60_000 }, maxMessageBytes: MAX_MESSAGE_BYTES };
    cluster = await TestCluster.start(options);
    // A second incarnation, so that ids of an earlier epoch exist to be asked about.
    await cluster.coordinator.close();
    await cluster.startCoordinator(options);
    epoch = cluster.coordinator.epoch;
    assert.equal(epoch, 2);
    raw = new RawTransactions(cluster.coordinator.address);
  });

  after(async () => {
    raw?.close();
    await cluster?.close();
  });

  beforeEach(() => {
    sessions = new RawSessions(cluster.coordinator.address);
  });

  afterEach(() => {
    sessions.close();
  });

  it('refuses a session whose first frame has no hello with INVALID_ARGUMENT, and registers nothing', async () => {
    const name = uniqueName('nohello');
    const before = stats();
    const firstFrames = [{}, { votes: [{ txId: `tx-${epoch}-1`, vote: YES, reason: '' }], inquiries: [{ txId: 'tx-1-1' }] }];
    for (const frame of firstFrames) {
      const s = sessions.open();
      s.send(frame);
      // A hello right behind the bad frame must not register the refused stream after all.
      s.hello(name);
      const status = await s.final();
      assert.equal(status.code, Status.INVALID_ARGUMENT);
      assert.equal(status.details, 'the first frame of a session must carry hello');
      assert.deepEqual(s.frames, [], 'a refused stream got a welcome');
    }
    assert.equal(stats().sessions.refused, before.sessions.refused + firstFrames.length);
    assert.deepEqual(stats().ignored, before.ignored, 'a message of a refused frame was dispatched');
    // The name is free.
    const s = await sessions.connect(name);
    assert.deepEqual(s.frames[0]?.welcome, { epoch });
    await assertWorks(s, name);
  });

  it('refuses invalid participant names with INVALID_ARGUMENT', async () => {
    const before = stats();
    const names = ['', 'Upper', 'a/b', '../etc', 'bank!a', 'bank\u0000', '-lead', 'a'.repeat(65)];
    for (const name of names) {
      const s = sessions.open();
      s.hello(name);
      const status = await s.final();
      assert.equal(status.code, Status.INVALID_ARGUMENT, `name ${JSON.stringify(name)}: ${status.details}`);
      assert.match(status.details, name === '' ? /^participant name is empty$/ : /^participant name ".*" is invalid/);
      assert.deepEqual(s.frames, []);
    }
    assert.equal(stats().sessions.refused, before.sessions.refused + names.length);
    // The longest valid name is accepted.
    const longest = 'z'.repeat(64);
    await assertWorks(await sessions.connect(longest), longest);
  });

  it('refuses a second session under a connected name with ALREADY_EXISTS; the first keeps preparing and voting', async () => {
    const [a, b] = [uniqueName('owner'), uniqueName('peer')];
    const first = await sessions.connect(a);
    const peer = await sessions.connect(b);
    const before = stats();

    const dup = sessions.open();
    dup.hello(a);
    const status = await dup.final();
    assert.equal(status.code, Status.ALREADY_EXISTS);
    assert.equal(status.details, `participant ${a} already has a live session`);
    assert.deepEqual(dup.frames, []);
    assert.equal(stats().sessions.refused, before.sessions.refused + 1);

    const txId = await committedAndEnded(first, peer, [a, b]);
    assert.deepEqual(first.decisionsFor(txId), [COMMITTED]);
    assert.deepEqual(dup.frames, [], 'the refused stream received traffic of the live session');
  });

  it('accepts a new session under a name once the previous one ended', async () => {
    const a = uniqueName('returning');
    const first = await sessions.connect(a);
    const dup = sessions.open();
    dup.hello(a);
    assert.equal((await dup.final()).code, Status.ALREADY_EXISTS);

    const ended = await first.end();
    assert.equal(ended.code, Status.OK);
    const second = await sessions.connect(a);
    assert.deepEqual(second.frames[0]?.welcome, { epoch });
    await assertWorks(second, a);
    assert.deepEqual(first.prepares, [], 'the ended session was still sent work');
  });

  it('refuses hello repeated in a later frame with INVALID_ARGUMENT, applying nothing of that frame', async () => {
    const [a, b] = [uniqueName('rehello'), uniqueName('steady')];
    const first = await sessions.connect(a);
    const peer = await sessions.connect(b);
    const { txId, commit } = await preparing([a, b]);
    await Promise.all([first.prepareFor(txId), peer.prepareFor(txId)]);

    first.send({ hello: { participant: a }, votes: [{ txId, vote: YES, reason: '' }] });
    const status = await first.final();
    assert.equal(status.code, Status.INVALID_ARGUMENT);
    assert.equal(status.details, 'hello may only be sent in the first frame');
    const view = cluster.coordinator.describe(txId);
    assert.equal(view?.state, 'preparing');
    assert.equal(view?.branches.find((x) => x.participant === a)?.vote, undefined, 'the vote of the refused frame counted');

    // Reconnected, the participant is asked again and its vote decides.
    const again = await sessions.connect(a);
    await again.prepareFor(txId);
    again.vote(txId, YES);
    peer.vote(txId, YES);
    assert.deepEqual(await commit, { txId, outcome: COMMITTED });
    await acknowledge(txId, again, peer);
  });

  it('refuses a vote or an ack whose enum is out of range or unspecified with INVALID_ARGUMENT; the transaction is untouched', async () => {
    const [a, b] = [uniqueName('garbled'), uniqueName('sound')];
    const peer = await sessions.connect(b);
    let session = await sessions.connect(a);
    const { txId, commit } = await preparing([a, b]);
    await Promise.all([session.prepareFor(txId), peer.prepareFor(txId)]);
    peer.vote(txId, YES);
    await waitFor('the YES of b', () => cluster.coordinator.describe(txId)?.branches.find((x) => x.participant === b)?.vote === 'yes');
    const before = stats();

    const bad: readonly [string, Parameters<RawSession['send']>[0], RegExp][] = [
      ['vote 7', { votes: [{ txId, vote: 7 as Vote, reason: '' }] }, new RegExp(`^vote 7 for ${txId} is not a valid vote$`)],
      ['VOTE_UNSPECIFIED', { votes: [{ txId, vote: Vote.VOTE_UNSPECIFIED, reason: '' }] }, new RegExp(`^vote 0 for ${txId} is not a valid vote$`)],
      ['vote -1', { votes: [{ txId, vote: -1 as Vote, reason: '' }] }, new RegExp(`^vote -1 for ${txId} is not a valid vote$`)],
      [
        'a YES followed by vote 7 in one frame',
        { votes: [{ txId, vote: YES, reason: '' }, { txId, vote: 7 as Vote, reason: '' }] },
        /^vote 7 for .* is not a valid vote$/,
      ],
      ['ack outcome 9', { acks: [{ txId, outcome: 9 as Outcome }] }, new RegExp(`^ack outcome 9 for ${txId} is not a valid outcome$`)],
      ['OUTCOME_UNSPECIFIED', { acks: [{ txId, outcome: Outcome.OUTCOME_UNSPECIFIED }] }, new RegExp(`^ack outcome 0 for ${txId} is not a valid outcome$`)],
    ];
    for (const [what, frame, details] of bad) {
      session.send(frame);
      const status = await session.final();
      assert.equal(status.code, Status.INVALID_ARGUMENT, `${what}: ${status.details}`);
      assert.match(status.details, details, what);
      const view = cluster.coordinator.describe(txId);
      assert.equal(view?.state, 'preparing', `${what} moved the transaction`);
      assert.equal(view?.branches.find((x) => x.participant === a)?.vote, undefined, `${what} recorded a vote`);
      session = await sessions.connect(a);
      await session.prepareFor(txId);
    }
    assert.deepEqual(stats().ignored, before.ignored);
    assert.equal(stats().sessions.refused, before.sessions.refused + bad.length);

    session.vote(txId, YES);
    assert.deepEqual(await commit, { txId, outcome: COMMITTED });
    assert.equal(peer.ended, false);
    await acknowledge(txId, session, peer);
  });

  it('ends a session whose frame is above maxMessageBytes with RESOURCE_EXHAUSTED; the name is free again', async () => {
    const a = uniqueName('bulky');
    const s = await sessions.connect(a);
    const { txId, capability } = await raw.begin({ timeoutMs: 10_000 });
    const before = stats();
    s.enlist(1, txId, capability, Buffer.alloc(MAX_MESSAGE_BYTES + 1));
    const status = await s.final();
    assert.equal(status.code, Status.RESOURCE_EXHAUSTED);
    assert.match(status.details, new RegExp(`^Received message larger than max \\(\\d+ vs ${MAX_MESSAGE_BYTES}\\)$`));
    assert.deepEqual(s.enlistResults, []);
    assert.deepEqual(cluster.coordinator.describe(txId)?.branches, [], 'the oversized enlist joined the transaction');
    assert.equal(stats().live, before.live);
    await raw.abort({ txId });
    await assertWorks(await sessions.connect(a), a);
  });

  it('refuses a malformed tx id in a vote, an ack or an inquiry with INVALID_ARGUMENT', async () => {
    const a = uniqueName('sloppy');
    const before = stats();
    const cases: readonly [Parameters<RawSession['send']>[0], RegExp][] = [
      [{ votes: [{ txId: '../tx-2-1', vote: YES, reason: '' }] }, /^vote: tx id "\.\.\/tx-2-1" is malformed \(expected tx-<epoch>-<seq>\)$/],
      [{ votes: [{ txId: '', vote: NO, reason: '' }] }, /^vote: tx id is empty$/],
      [{ acks: [{ txId: 'tx-2-1!x', outcome: COMMITTED }] }, /^ack: tx id "tx-2-1!x" is malformed/],
      [{ inquiries: [{ txId: 'tx-2-1\u0000' }] }, /^inquiry: tx id ".*" is malformed/],
      [{ inquiries: [{ txId: `tx-2-${'1'.repeat(500)}` }] }, /^inquiry: tx id ".{1,60}" is malformed/],
    ];
    for (const [frame, details] of cases) {
      const s = await sessions.connect(a);
      s.send(frame);
      const status = await s.final();
      assert.equal(status.code, Status.INVALID_ARGUMENT, status.details);
      assert.match(status.details, details);
    }
    assert.deepEqual(stats().ignored, before.ignored);
    assert.equal(stats().live, before.live);
    await assertWorks(await sessions.connect(a), a);
  });

  it('ignores and counts votes, acks and inquiries for transactions never issued or long gone; the session stays up', async () => {
    const a = uniqueName('confused');
    const s = await sessions.connect(a);
    const { txId: gone } = await raw.begin({ timeoutMs: 10_000 });
    await raw.abort({ txId: gone });
    await waitFor(`${gone} to end`, () => cluster.coordinator.describe(gone) === undefined);
    const before = await settled();

    const neverSeq = `tx-${epoch}-999999`;
    const neverEpoch = `tx-${epoch + 1}-1`;
    s.send({
      votes: [
        { txId: neverSeq, vote: YES, reason: '' },
        { txId: neverEpoch, vote: NO, reason: 'whatever' },
      ],
      acks: [{ txId: neverSeq, outcome: COMMITTED }],
      inquiries: [{ txId: neverEpoch }],
    });
    await waitFor('4 never-issued messages to be counted', () => stats().ignored['never-issued'] === before.ignored['never-issued'] + 4);
    // Issued, but ended: a NO vote and an ack have nothing to act on.
    s.send({ votes: [{ txId: gone, vote: NO, reason: '' }], acks: [{ txId: gone, outcome: ABORTED }] });
    await waitFor('2 unknown-tx messages to be counted', () => stats().ignored['unknown-tx'] === before.ignored['unknown-tx'] + 2);

    assert.deepEqual(s.decisions, [], 'an ignored message was answered');
    assert.equal(stats().live, before.live);
    assert.equal((await settled()).log.writes, before.log.writes, 'an ignored message wrote to the log');
    await expectStatus(raw.get(neverSeq), Status.NOT_FOUND, /never begun/);
    await assertWorks(s, a);
  });

  it('records one vote for a duplicate YES and one ack for a duplicate ack', async () => {
    const [a, b] = [uniqueName('stutter'), uniqueName('calm')];
    const sa = await sessions.connect(a);
    const sb = await sessions.connect(b);
    const { txId, commit } = await preparing([a, b]);
    await Promise.all([sa.prepareFor(txId), sb.prepareFor(txId)]);
    const before = stats();

    sa.send({ votes: [{ txId, vote: YES, reason: '' }, { txId, vote: YES, reason: '' }] });
    sa.vote(txId, YES);
    await waitFor('2 duplicate votes to be counted', () => stats().ignored.duplicate === before.ignored.duplicate + 2);
    const view = cluster.coordinator.describe(txId);
    assert.equal(view?.state, 'preparing', 'duplicates of one YES decided the transaction');
    assert.deepEqual(
      view?.branches.map((x) => [x.participant, x.vote]),
      [
        [a, 'yes'],
        [b, undefined],
      ],
    );

    sb.vote(txId, YES);
    assert.deepEqual(await commit, { txId, outcome: COMMITTED });
    await sb.decisionCount(txId, 1);
    sa.send({ acks: [{ txId, outcome: COMMITTED }, { txId, outcome: COMMITTED }] });
    await waitFor('the duplicate ack to be counted', () => stats().ignored.duplicate === before.ignored.duplicate + 3);
    assert.equal(cluster.coordinator.describe(txId)?.state, 'decided', 'the duplicate ack stood in for b');
    sb.ack(txId, COMMITTED);
    await waitFor(`${txId} to end`, () => cluster.coordinator.describe(txId) === undefined);
    assert.deepEqual(sa.decisionsFor(txId), [COMMITTED]);
    assert.deepEqual(sa.prepares.filter((p) => p.txId === txId).length, 1);
    assert.equal(stats().committed, before.committed + 1);
  });

  it('lets the first vote stand against a conflicting one: YES then NO commits, NO then YES aborts', async () => {
    const [a, b] = [uniqueName('fickle'), uniqueName('firm')];
    const sa = await sessions.connect(a);
    const sb = await sessions.connect(b);
    const before = stats();

    // YES then NO, in one frame.
    const yesFirst = await preparing([a, b]);
    await Promise.all([sa.prepareFor(yesFirst.txId), sb.prepareFor(yesFirst.txId)]);
    sa.send({ votes: [{ txId: yesFirst.txId, vote: YES, reason: '' }, { txId: yesFirst.txId, vote: NO, reason: 'second thoughts' }] });
    await waitFor('the conflicting vote to be counted', () => stats().ignored['conflicting-vote'] === before.ignored['conflicting-vote'] + 1);
    assert.equal(cluster.coordinator.describe(yesFirst.txId)?.branches.find((x) => x.participant === a)?.vote, 'yes');
    sb.vote(yesFirst.txId, YES);
    assert.deepEqual(await yesFirst.commit, { txId: yesFirst.txId, outcome: COMMITTED });
    await sa.decisionCount(yesFirst.txId, 1);
    assert.deepEqual(sa.decisionsFor(yesFirst.txId), [COMMITTED]);
    sa.ack(yesFirst.txId, COMMITTED);
    sb.ack(yesFirst.txId, COMMITTED);

    // NO then YES, while b's YES keeps the aborted transaction live.
    const noFirst = await preparing([a, b]);
    await Promise.all([sa.prepareFor(noFirst.txId), sb.prepareFor(noFirst.txId)]);
    sb.vote(noFirst.txId, YES);
    await waitFor('the YES of b', () => cluster.coordinator.describe(noFirst.txId)?.branches.find((x) => x.participant === b)?.vote === 'yes');
    sa.send({ votes: [{ txId: noFirst.txId, vote: NO, reason: 'no funds' }, { txId: noFirst.txId, vote: YES, reason: '' }] });
    const e = await expectStatus(noFirst.commit, Status.ABORTED, new RegExp(`aborted: participant ${a} voted NO: no funds$`));
    assert.ok(e);
    assert.equal(stats().ignored['conflicting-vote'], before.ignored['conflicting-vote'] + 2);
    assert.deepEqual(await sb.decisionCount(noFirst.txId, 1), [ABORTED]);
    sb.ack(noFirst.txId, ABORTED);
    await waitFor('both transactions to end', () => [yesFirst.txId, noFirst.txId].every((id) => cluster.coordinator.describe(id) === undefined));
    assert.deepEqual(sa.decisionsFor(noFirst.txId), [], 'the NO voter was asked to act on its ignored YES');
    assert.equal(stats().committed, before.committed + 1);
    assert.equal(stats().aborted, before.aborted + 1);
  });

  it('ignores votes and acks from a participant that is not a branch', async () => {
    const [a, b, c] = [uniqueName('member-a'), uniqueName('member-b'), uniqueName('outsider')];
    const [sa, sb, sc] = [await sessions.connect(a), await sessions.connect(b), await sessions.connect(c)];
    const { txId, commit } = await preparing([a, b]);
    await Promise.all([sa.prepareFor(txId), sb.prepareFor(txId)]);
    const before = stats();

    sc.send({ votes: [{ txId, vote: NO, reason: 'let me in' }, { txId, vote: YES, reason: '' }], acks: [{ txId, outcome: ABORTED }] });
    await waitFor('3 not-a-branch messages to be counted', () => stats()['ignored']['not-a-branch'] === before.ignored['not-a-branch'] + 3);
    const view = cluster.coordinator.describe(txId);
    assert.equal(view?.state, 'preparing', 'an outsider NO aborted the transaction');
    assert.deepEqual(
      view?.branches.map((x) => [x.participant, x.vote]),
      [
        [a, undefined],
        [b, undefined],
      ],
    );

    sa.vote(txId, YES);
    sb.vote(txId, YES);
    assert.deepEqual(await commit, { txId, outcome: COMMITTED });
    await Promise.all([sa.decisionCount(txId, 1), sb.decisionCount(txId, 1)]);
    sa.ack(txId, COMMITTED);
    sb.ack(txId, COMMITTED);
    await waitFor(`${txId} to end`, () => cluster.coordinator.describe(txId) === undefined);
    assert.deepEqual(sc.prepares, []);
    assert.deepEqual(sc.decisions, []);
    assert.equal(sc.ended, false);
  });

  it('answers a late YES after a deadline abort with an ABORTED decision, while live and after the end', async () => {
    const [a, b] = [uniqueName('slow'), uniqueName('quick')];
    const sa = await sessions.connect(a);
    const sb = await sessions.connect(b);
    const { txId, commit } = await preparing([a, b], 1_000);
    await Promise.all([sa.prepareFor(txId), sb.prepareFor(txId)]);
    sb.vote(txId, YES);
    await waitFor('the YES of b, before the deadline', () => cluster.coordinator.describe(txId)?.branches.find((x) => x.participant === b)?.vote === 'yes');
    assert.equal(cluster.coordinator.describe(txId)?.state, 'preparing', 'the deadline passed before b could vote');

    const reason = `prepare deadline exceeded waiting for ${a}`;
    await expectStatus(commit, Status.ABORTED, new RegExp(`^transaction ${txId} aborted: ${reason}$`));
    // Both were asked to prepare, so both learn the abort.
    assert.deepEqual(await sa.decisionCount(txId, 1), [ABORTED]);
    assert.deepEqual(await sb.decisionCount(txId, 1), [ABORTED]);
    const before = stats();

    // Late, while b's acknowledgement keeps the transaction live.
    sa.vote(txId, YES);
    assert.deepEqual(await sa.decisionCount(txId, 2), [ABORTED, ABORTED]);
    const view = cluster.coordinator.describe(txId);
    assert.equal(view?.outcome, 'aborted');
    assert.equal(view?.reason, reason);
    assert.equal(stats().committed, before.committed);

    sa.ack(txId, ABORTED);
    sb.ack(txId, ABORTED);
    await waitFor(`${txId} to end`, () => cluster.coordinator.describe(txId) === undefined);
    // Late again, after the end: the decision comes from the log.
    sa.vote(txId, YES);
    assert.deepEqual(await sa.decisionCount(txId, 3), [ABORTED, ABORTED, ABORTED]);
    const ended = (await raw.get(txId)).transaction;
    assert.equal(ended?.state, TransactionState.TRANSACTION_STATE_ENDED);
    assert.equal(ended?.outcome, ABORTED);
    assert.equal(ended?.reason, reason);
    assert.equal(stats().aborted, before.aborted);
    assert.equal(stats().committed, before.committed);
  });

  it('counts an ack of the wrong outcome and keeps the transaction until the right one', async () => {
    const [a, b] = [uniqueName('mistaken'), uniqueName('right')];
    const sa = await sessions.connect(a);
    const sb = await sessions.connect(b);
    const { txId, commit } = await preparing([a, b]);
    await Promise.all([sa.prepareFor(txId), sb.prepareFor(txId)]);
    sa.vote(txId, YES);
    sb.vote(txId, YES);
    assert.deepEqual(await commit, { txId, outcome: COMMITTED });
    await Promise.all([sa.decisionCount(txId, 1), sb.decisionCount(txId, 1)]);
    const before = stats();

    sa.ack(txId, ABORTED);
    sb.ack(txId, COMMITTED);
    await waitFor('b to be acknowledged', () => cluster.coordinator.describe(txId)?.branches.find((x) => x.participant === b)?.acknowledged);
    assert.equal(stats().ignored['outcome-mismatch'], before.ignored['outcome-mismatch'] + 1);
    const view = cluster.coordinator.describe(txId);
    assert.equal(view?.state, 'decided', 'the transaction ended on a wrong acknowledgement');
    assert.equal(view?.outcome, 'committed');
    const branchA = view?.branches.find((x) => x.participant === a);
    assert.equal(branchA?.acknowledged, false);
    assert.equal(branchA?.lastError, 'acknowledged aborted but the decision is committed');
    const wire = (await raw.get(txId)).transaction;
    assert.equal(wire?.state, TransactionState.TRANSACTION_STATE_DECIDED);
    assert.equal(wire?.outcome, COMMITTED);

    sa.ack(txId, COMMITTED);
    await waitFor(`${txId} to end`, () => cluster.coordinator.describe(txId) === undefined);
    assert.equal((await raw.get(txId)).transaction?.outcome, COMMITTED);
    assert.equal(stats().ended, before.ended + 1);
  });

  it('answers an inquiry for a committed transaction with COMMITTED, before and after the asker acknowledged and after the end', async () => {
    const [a, b] = [uniqueName('asker'), uniqueName('other')];
    const sa = await sessions.connect(a);
    const sb = await sessions.connect(b);
    const { txId, commit } = await preparing([a, b]);
    await Promise.all([sa.prepareFor(txId), sb.prepareFor(txId)]);
    sa.vote(txId, YES);
    sb.vote(txId, YES);
    assert.deepEqual(await commit, { txId, outcome: COMMITTED });
    await sa.decisionCount(txId, 1);

    // Decided, not yet acknowledged by the asker: the decision is delivered again.
    sa.inquire(txId);
    assert.deepEqual(await sa.decisionCount(txId, 2), [COMMITTED, COMMITTED]);
    // Acknowledged by the asker, still waiting for b: answered all the same.
    sa.ack(txId, COMMITTED);
    await waitFor('the ack of a', () => cluster.coordinator.describe(txId)?.branches.find((x) => x.participant === a)?.acknowledged);
    sa.inquire(txId);
    assert.deepEqual(await sa.decisionCount(txId, 3), [COMMITTED, COMMITTED, COMMITTED]);
    sb.ack(txId, COMMITTED);
    await waitFor(`${txId} to end`, () => cluster.coordinator.describe(txId) === undefined);
    // Ended: answered from the END summary in the log.
    const { writes } = (await settled()).log;
    sa.inquire(txId);
    assert.deepEqual(await sa.decisionCount(txId, 4), [COMMITTED, COMMITTED, COMMITTED, COMMITTED]);
    assert.equal((await settled()).log.writes, writes, 'answering from the log wrote to it');
  });

  it('answers an inquiry or a YES for an unknown id of an earlier epoch with ABORTED (presumed abort)', async () => {
    const a = uniqueName('indoubt');
    const s = await sessions.connect(a);
    const before = await settled();
    s.inquire('tx-1-4242');
    s.vote('tx-1-4243', YES);
    assert.deepEqual(await s.decisionCount('tx-1-4242', 1), [ABORTED]);
    assert.deepEqual(await s.decisionCount('tx-1-4243', 1), [ABORTED]);
    assert.equal(stats().live, before.live);
    assert.equal((await settled()).log.writes, before.log.writes, 'a presumption was written down');
    assert.equal(stats().aborted, before.aborted);
    await assertWorks(s, a);
  });

  it('answers Enlist on unknown, malformed, finished or preparing transactions with a non-zero code, keeping the session', async () => {
    const [a, b, c] = [uniqueName('joiner'), uniqueName('worker-a'), uniqueName('worker-b')];
    const s = await sessions.connect(a);
    const [sb, sc] = [await sessions.connect(b), await sessions.connect(c)];
    const finished = await committedAndEnded(sb, sc, [b, c]);
    const inFlight = await preparing([b, c]);
    await Promise.all([sb.prepareFor(inFlight.txId), sc.prepareFor(inFlight.txId)]);
    const { txId: active, capability } = await raw.begin({ timeoutMs: 10_000 });
    const before = stats();
    const cap = (txId: string): string => capabilities.get(txId) ?? assert.fail(`no capability for ${txId}`);
    const forged = `${capability.slice(0, -1)}${capability.endsWith('A') ? 'B' : 'A'}`;

    s.send({
      enlists: [
        { requestId: 1, txId: `tx-${epoch}-999999`, payload: Buffer.alloc(0), capability: '' },
        { requestId: 2, txId: '../etc', payload: Buffer.alloc(0), capability },
        { requestId: 3, txId: finished, payload: Buffer.alloc(0), capability: cap(finished) },
        { requestId: 4, txId: 'tx-1-77', payload: Buffer.alloc(0), capability },
        { requestId: 5, txId: inFlight.txId, payload: Buffer.alloc(0), capability: cap(inFlight.txId) },
        { requestId: 6, txId: active, payload: Buffer.alloc(1024 * 1024 + 1), capability },
        { requestId: 7, txId: active, payload: Buffer.from('ok'), capability },
        { requestId: 8, txId: active, payload: Buffer.alloc(0), capability: forged },
        { requestId: 9, txId: active, payload: Buffer.alloc(0), capability: cap(finished) },
      ],
    });
    const results = await s.until('9 enlist results', () => (s.enlistResults.length >= 9 ? s.enlistResults : undefined));
    const byId = new Map(results.map((r) => [r.requestId, r]));
    const expect = (id: number, code: number, message: RegExp): void => {
      const r = byId.get(id);
      assert.equal(r?.code, code, `enlist #${id}: ${r?.message}`);
      assert.match(r?.message ?? '', message, `enlist #${id}`);
    };
    // Without the transaction's own capability, nothing gets past the session hub.
    expect(1, Status.PERMISSION_DENIED, new RegExp(`^enlisting in tx-${epoch}-999999 takes the capability Begin returned for it$`));
    expect(2, Status.PERMISSION_DENIED, /^enlisting in \.\.\/etc takes the capability/);
    expect(3, Status.FAILED_PRECONDITION, new RegExp(`^transaction ${finished} is no longer active$`));
    expect(4, Status.PERMISSION_DENIED, /^enlisting in tx-1-77 takes the capability/);
    expect(5, Status.FAILED_PRECONDITION, new RegExp(`^transaction ${inFlight.txId} is no longer active \\(it is preparing\\)$`));
    expect(6, Status.RESOURCE_EXHAUSTED, /^payload is 1048577 bytes \(limit 1048576\)$/);
    expect(7, Status.OK, /^$/);
    expect(8, Status.PERMISSION_DENIED, /takes the capability/);
    expect(9, Status.PERMISSION_DENIED, /takes the capability/);
    assert.equal(s.ended, false);

    // Nothing joined what it was refused: the preparing transaction still has its two branches.
    assert.deepEqual(
      cluster.coordinator.describe(inFlight.txId)?.branches.map((x) => x.participant),
      [b, c],
    );
    assert.deepEqual(
      cluster.coordinator.describe(active)?.branches.map((x) => x.participant),
      [a],
    );
    assert.equal(stats().live, before.live);

    // Clean up: the in-flight one commits, the active one is aborted and its enlisted branch told.
    sb.vote(inFlight.txId, YES);
    sc.vote(inFlight.txId, YES);
    assert.deepEqual(await inFlight.commit, { txId: inFlight.txId, outcome: COMMITTED });
    await acknowledge(inFlight.txId, sb, sc);
    await raw.abort({ txId: active, reason: 'done testing' });
    assert.deepEqual(await s.decisionCount(active, 1), [ABORTED]);
    await waitFor(`${active} to end`, () => cluster.coordinator.describe(active) === undefined);
    assert.equal(stats().live, 0);
  });
});
