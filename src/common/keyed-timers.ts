// Timers addressed by key, as the state machines ask for them: setting a key replaces its timer.

/** A set of timers addressed by string keys. Timers do not keep the process alive. */
export class KeyedTimers {
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #fire: (key: string) => void;
  readonly #now: () => number;

  constructor(fire: (key: string) => void, now: () => number = Date.now) {
    this.#fire = fire;
    this.#now = now;
  }

  /** Fires `key` at absolute time `at` plus a random delay up to `jitterMs`. */
  set(key: string, at: number, jitterMs: number): void {
    this.cancel(key);
    const delay = Math.max(0, at - this.#now()) + (jitterMs > 0 ? Math.random() * jitterMs : 0);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.#fire(key);
    }, delay);
    timer.unref();
    this.#timers.set(key, timer);
  }

  /** Cancels `key` if set. */
  cancel(key: string): void {
    const timer = this.#timers.get(key);
    if (timer) {
      clearTimeout(timer);
      this.#timers.delete(key);
    }
  }

  /** Cancels every timer. */
  clear(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /** How many timers are pending. */
  get size(): number {
    return this.#timers.size;
  }
}
