// What a simulated process may use from the world: simulated time, its own timers, the seeded
// randomness, the trace, and the observer (the property checker) that watches its every step.

import type {
  CoordinatorEffect,
  CoordinatorInput,
  CoordinatorMessage,
  CoordinatorRecord,
  CoordinatorReply,
  ParticipantMessage,
  TxState,
} from '../protocol/coordinator-events.js';
import type { ParticipantEffect, ParticipantInput, ParticipantRecord } from '../protocol/participant-events.js';
import type { Outcome, Vote } from '../protocol/types.js';
import type { MutantName } from './mutants.js';
import type { Prng } from './prng.js';
import type { SimConfig } from './sim-options.js';
import type { DiskOp } from './sim-storage.js';

/** The watcher of every process step: the property checker implements it. */
export interface SimObserver {
  /** `before`: the state of the input's transaction before the step (undefined: not live). */
  coordinatorStep(input: CoordinatorInput | undefined, effects: readonly CoordinatorEffect[], before: TxState | undefined): void;
  coordinatorSend(to: string, message: CoordinatorMessage): void;
  coordinatorWrite(ops: readonly DiskOp[]): void;
  coordinatorRecovered(open: readonly CoordinatorRecord[], live: readonly string[]): void;
  participantStep(participant: string, input: ParticipantInput | undefined, effects: readonly ParticipantEffect[]): void;
  participantSend(participant: string, message: ParticipantMessage): void;
  participantReceived(participant: string, message: CoordinatorMessage): void;
  participantHookVote(participant: string, txId: string, vote: Vote): void;
  participantWrite(participant: string, record: ParticipantRecord, ops: readonly DiskOp[]): void;
  participantApplied(participant: string, txId: string, outcome: Outcome): void;
  reply(requestId: number, reply: CoordinatorReply): void;
}

/** A process's view of the world. */
export interface NodeHost {
  readonly name: string;
  readonly now: number;
  readonly prng: Prng;
  readonly config: SimConfig;
  readonly tracing: boolean;
  readonly observer: SimObserver;
  has(mutant: MutantName): boolean;
  /** Runs `fn` after `delayMs` in this process (never if the process died meanwhile). */
  after(delayMs: number, fn: () => void): void;
  trace(text: string, txIds?: readonly string[]): void;
}

/** Keyed timers of one process, as the state machines ask for them, on simulated time. */
export class SimTimers {
  readonly #host: NodeHost;
  readonly #fire: (key: string) => void;
  readonly #live = new Map<string, number>();
  #seq = 0;

  constructor(host: NodeHost, fire: (key: string) => void) {
    this.#host = host;
    this.#fire = fire;
  }

  /** Fires `key` at `at` plus a random delay up to `jitterMs`; replaces a timer with the same key. */
  set(key: string, at: number, jitterMs: number): void {
    const token = ++this.#seq;
    this.#live.set(key, token);
    const delay = Math.max(0, at - this.#host.now) + (jitterMs > 0 ? this.#host.prng.int(0, Math.floor(jitterMs)) : 0);
    this.#host.after(delay, () => {
      if (this.#live.get(key) !== token) return;
      this.#live.delete(key);
      this.#fire(key);
    });
  }

  cancel(key: string): void {
    this.#live.delete(key);
  }

  get size(): number {
    return this.#live.size;
  }
}
