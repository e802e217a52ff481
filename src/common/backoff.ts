// Capped exponential backoff with jitter: the one policy used for reconnects and retries.

import { backoffDelayMs } from '../protocol/types.js';

/** Backoff tunables. */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** Produces successive retry delays: doubling from `initialMs` up to `maxMs`, each jittered by up to half. */
export class Backoff {
  readonly #options: BackoffOptions;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    this.#options = options;
  }

  /** The next delay in ms. */
  next(): number {
    this.#attempt++;
    const base = backoffDelayMs(this.#attempt, this.#options.initialMs, this.#options.maxMs);
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  /** Starts over after a success. */
  reset(): void {
    this.#attempt = 0;
  }
}
