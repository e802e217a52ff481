// Timers addressed by key, as the state machines ask for them: setting a key replaces its timer.

import { systemClock, type Clock, type Timer } from './clock.js';

/** A set of timers addressed by string keys, on a clock. Timers do not keep the process alive. */
export class KeyedTimers {
  readonly #timers = new Map<string, Timer>();
  readonly #fire: (key: string) => void;
  readonly #clock: Clock;

  constructor(fire: (key: string) => void, clock: Clock = systemClock) {
    this.#fire = fire;
    this.#clock = clock;
  }

  /** Fires `key` at absolute time `at` plus a random delay up to `jitterMs`. */
  set(key: string, at: number, jitterMs: number): void {
    this.cancel(key);
    const c = this.#clock;
    const delay = Math.max(0, at - c.now()) + (jitterMs > 0 ? Math.floor(c.random() * jitterMs) : 0);
    const timer = c.setTimer(() => {
      this.#timers.delete(key);
      this.#fire(key);
    }, delay);
    this.#timers.set(key, timer);
  }

  /** Cancels `key` if set. */
  cancel(key: string): void {
    const timer = this.#timers.get(key);
    if (timer) {
      this.#clock.clearTimer(timer);
      this.#timers.delete(key);
    }
  }

  /** Cancels every timer. */
  clear(): void {
    for (const timer of this.#timers.values()) this.#clock.clearTimer(timer);
    this.#timers.clear();
  }

  /** How many timers are pending. */
  get size(): number {
    return this.#timers.size;
  }
}
