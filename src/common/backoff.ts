// Capped exponential backoff with jitter: the one policy used for reconnects and retries.

import { backoffDelayMs } from '../protocol/types.js';
import { systemClock, type Clock } from './clock.js';

/** Backoff tunables. */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** Produces successive retry delays: doubling from `initialMs` up to `maxMs`, each jittered by up to half. */
export class Backoff {
  readonly #options: BackoffOptions;
  readonly #clock: Clock;
  #attempt = 0;

  constructor(options: BackoffOptions, clock: Clock = systemClock) {
    this.#options = options;
    this.#clock = clock;
  }

  /** The next delay in ms. */
  next(): number {
    this.#attempt++;
    const base = backoffDelayMs(this.#attempt, this.#options.initialMs, this.#options.maxMs);
    return Math.round(base / 2 + this.#clock.random() * (base / 2));
  }

  /** Starts over after a success. */
  reset(): void {
    this.#attempt = 0;
  }
}
