// The clock seam: the only way the coordinator and participant shells read the time, wait, defer
// work to the end of the event-loop turn, or draw a random number. Production uses the system's;
// the simulator passes its virtual clock, so that the shell it runs is the shell users run.

/** A pending timer; `cancel` is idempotent. */
export interface Timer {
  cancel(): void;
}

/** Time, timers and randomness, as the shells use them. */
export interface Clock {
  /** Milliseconds since the epoch (the simulator's virtual time under simulation). */
  now(): number;
  /** Runs `fn` after `ms`. Timers never keep the process alive. */
  setTimer(fn: () => void, ms: number): Timer;
  /** Runs `fn` once the current event-loop turn's work is done (after its promises settle). */
  defer(fn: () => void): void;
  /** A number in [0, 1), for jitter. */
  random(): number;
}

/** The system clock: `Date.now`, unref'd timers, `setImmediate`, `Math.random`. */
export const systemClock: Clock = Object.freeze({
  now: Date.now,
  setTimer(fn: () => void, ms: number): Timer {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  defer(fn: () => void): void {
    setImmediate(fn);
  },
  random: Math.random,
});
