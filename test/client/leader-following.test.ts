// The leader-following policy both the client SDK and the simulator run (src/common/leader-following.ts),
// on a hand-driven clock: where a call goes after NOT_LEADER or a failure that never left, that a
// call broken after it left is never sent again, and that moves are spaced by backoff and bounded.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metadata, status as Status } from '@grpc/grpc-js';

import type { Clock } from '../../src/common/clock.js';
import { CoordinatorTargets } from '../../src/common/coordinator-targets.js';
import { notLeaderStatus } from '../../src/common/grpc-errors.js';
import { LeaderFollower, MAX_MOVES, type FollowedFailure } from '../../src/common/leader-following.js';

interface Failure extends FollowedFailure {
  readonly code: number;
  readonly metadata?: Metadata;
  readonly neverSent?: boolean;
}

/** A clock whose timers run only when the test advances it. */
class ManualClock implements Clock {
  time = 0;
  readonly #timers: { at: number; fn: () => void }[] = [];
  now(): number {
    return this.time;
  }
  setTimer(fn: () => void, ms: number): object {
    this.#timers.push({ at: this.time + ms, fn });
    return {};
  }
  clearTimer(): void {}
  defer(fn: () => void): void {
    fn();
  }
  random(): number {
    return 0.5;
  }
  /** Runs every due timer, earliest first, until none is left; returns the delays seen. */
  runAll(): number[] {
    const delays: number[] = [];
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const t = this.#timers.shift();
      if (!t) return delays;
      delays.push(t.at - this.time);
      this.time = t.at;
      t.fn();
    }
  }
}

const notLeader = (leader?: string): Failure => ({ code: Status.UNAVAILABLE, metadata: notLeaderStatus(leader).metadata as Metadata });
const refused: Failure = { code: Status.UNAVAILABLE, metadata: new Metadata(), neverSent: true };
const broken: Failure = { code: Status.UNAVAILABLE, metadata: new Metadata() };

function follower(addresses: string[], clock: ManualClock, moves: string[] = []): LeaderFollower {
  return new LeaderFollower(new CoordinatorTargets(addresses), clock, {
    initialMs: 100,
    maxMs: 1_000,
    neverSent: (e) => (e as Failure).neverSent === true,
    onMove: (from, to) => moves.push(`${from}>${to}`),
  });
}

describe('leader following', () => {
  it('goes to the leader a member names, and to the next address in turn when none is named or nothing was sent: a stale hint cannot trap it between two addresses', () => {
    const clock = new ManualClock();
    const moves: string[] = [];
    const f = follower(['a:1', 'b:1', 'c:1'], clock, moves);
    const answers: Record<string, Failure | null> = { 'a:1': notLeader('c:1'), 'c:1': refused, 'b:1': null };
    const asked: string[] = [];
    let result: string | undefined;
    f.send<Failure, string>(
      60_000,
      (target, answer) => {
        asked.push(target);
        const a = answers[target] ?? null;
        answer(a, a ? undefined : `answered by ${target}`);
      },
      (e, res) => (result = e ? `failed ${e.code}` : res),
    );
    clock.runAll();
    assert.deepEqual(asked, ['a:1', 'c:1', 'b:1']);
    assert.deepEqual(moves, ['a:1>c:1', 'c:1>b:1']);
    assert.equal(result, 'answered by b:1');
    assert.equal(f.target, 'b:1');
  });

  it('never sends again a call broken after it left, and with one address does not move on a refusal', () => {
    const clock = new ManualClock();
    const f = follower(['a:1', 'b:1'], clock);
    let asked = 0;
    let failure: Failure | null | undefined;
    f.send<Failure, unknown>(60_000, (_t, answer) => (asked++, answer(broken)), (e) => (failure = e));
    clock.runAll();
    assert.equal(asked, 1);
    assert.equal(failure, broken);
    assert.equal(f.target, 'a:1');

    const single = follower(['a:1'], clock);
    asked = 0;
    single.send<Failure, unknown>(60_000, (_t, answer) => (asked++, answer(refused)), (e) => (failure = e));
    clock.runAll();
    assert.equal(asked, 1, 'one address: a refused call is the answer');
  });

  it(`spaces moves by the jittered backoff and stops after ${MAX_MOVES} moves or at the deadline`, () => {
    const clock = new ManualClock();
    const f = follower(['a:1', 'b:1'], clock);
    let asked = 0;
    let failure: Failure | null | undefined;
    f.send<Failure, unknown>(Number.MAX_SAFE_INTEGER, (target, answer) => (asked++, answer(notLeader(target))), (e) => (failure = e));
    const delays = clock.runAll();
    assert.equal(asked, MAX_MOVES + 1);
    assert.ok(failure && failure.code === Status.UNAVAILABLE);
    assert.deepEqual(delays.slice(0, 5), [75, 150, 300, 600, 750], 'half the backoff plus half of it jittered (random 0.5), capped at maxMs');

    const bounded = follower(['a:1', 'b:1'], clock);
    asked = 0;
    const start = clock.time;
    bounded.send<Failure, unknown>(start + 500, (_t, answer) => (asked++, answer(refused)), () => undefined);
    clock.runAll();
    assert.equal(asked, 3, 'attempts at +0, +75 and +225: the next, at +525, would pass the deadline at +500');
  });
});
