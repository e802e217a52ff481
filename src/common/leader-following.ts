// How an initiator's call follows the leader of a coordinator group: the call goes to the current
// target; a NOT_LEADER answer (the member names the leader, or not) or, with a group, a call that
// provably never reached its address moves the target and sends the call again after a jittered
// backoff delay, while its deadline allows and at most MAX_MOVES times. A call broken after it was
// sent is never sent again. The client SDK runs this over gRPC, the simulator over its network:
// the same policy, on the same clock seam.

import type { Clock } from './clock.js';
import type { CoordinatorTargets } from './coordinator-targets.js';
import { notLeader } from './grpc-errors.js';
import { backoffDelayMs } from '../protocol/types.js';

/** The most times one call moves to another coordinator (its deadline bounds it too). */
export const MAX_MOVES = 16;

/** A failed call as the policy reads it: a status code and its metadata (a grpc-js ServiceError, or a simulated one). */
export type FollowedFailure = Parameters<typeof notLeader>[0];

/** Options of a LeaderFollower. */
export interface LeaderFollowerOptions {
  /** Backoff between moves: first delay, in ms. */
  readonly initialMs: number;
  /** Backoff between moves: longest delay, in ms. */
  readonly maxMs: number;
  /** Whether a failed call provably never reached its address (nothing sent: safe to send elsewhere). */
  readonly neverSent: (e: FollowedFailure) => boolean;
  /** Called when the target moves from `from` to `to` (to drop what belonged to the old one). */
  readonly onMove?: (from: string, to: string) => void;
}

/** The target of one SDK's calls, and the rule by which a call follows the leader. */
export class LeaderFollower {
  readonly #targets: CoordinatorTargets;
  readonly #clock: Clock;
  readonly #options: LeaderFollowerOptions;

  /** Follows the leader among `targets`, waiting between moves on `clock`. */
  constructor(targets: CoordinatorTargets, clock: Clock, options: LeaderFollowerOptions) {
    this.#targets = targets;
    this.#clock = clock;
    this.#options = options;
  }

  /** The address calls go to now. */
  get target(): string {
    return this.#targets.current;
  }

  /** Whether there is more than one address (a group). */
  get group(): boolean {
    return this.#targets.group;
  }

  /**
   * Runs `attempt` on the current target and calls `done` with its result; a NOT_LEADER answer,
   * or (with a group) a failure that never left, is attempted again on the next target after a
   * backoff delay while `deadlineMs` allows. `stopped` ends the retries (a closed client).
   */
  send<E extends FollowedFailure, T>(
    deadlineMs: number,
    attempt: (target: string, answer: (e: E | null, res?: T) => void) => void,
    done: (e: E | null, res?: T) => void,
    stopped: () => E | undefined = () => undefined,
  ): void {
    let moves = 0;
    const go = (): void => {
      const stop = stopped();
      if (stop) return done(stop);
      const target = this.#targets.current;
      attempt(target, (e, res) => {
        if (!e) return done(null, res);
        const hint = notLeader(e);
        if (hint || (this.#targets.group && this.#options.neverSent(e))) {
          this.moveFrom(target, hint?.leader);
          const delay = this.delay(moves++);
          if (moves <= MAX_MOVES && this.#clock.now() + delay < deadlineMs) {
            this.#clock.setTimer(go, delay);
            return;
          }
        }
        done(e, res);
      });
    };
    go();
  }

  /** Leaves `from` for the named leader or the next address, unless another call already left it. */
  moveFrom(from: string, leader: string | undefined): void {
    if (this.#targets.current !== from) return;
    const to = this.#targets.moveTo(leader);
    if (to !== from) this.#options.onMove?.(from, to);
  }

  /** Whether `address` is one of the configured addresses (not only named by a member). */
  configured(address: string): boolean {
    return this.#targets.configured(address);
  }

  /** The delay before the `attempt`-th move (from 0): the reconnect backoff, jittered. */
  delay(attempt: number): number {
    const base = backoffDelayMs(attempt + 1, this.#options.initialMs, this.#options.maxMs);
    return Math.round(base / 2 + this.#clock.random() * (base / 2));
  }
}
