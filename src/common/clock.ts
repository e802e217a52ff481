// The clock seam: the only way the coordinator and participant shells read the time, wait, defer
// work to the end of the event-loop turn, or draw a random number. Production uses the system's;
// the simulator passes its virtual clock, so that the shell it runs is the shell users run.

/** A pending timer, as its clock handed it out: cancel it with that clock's `clearTimer`. */
export interface Timer {
  /** Opaque: a timer is only handed back to the clock that made it. */
  readonly __clockTimer?: never;
}

/** Time, timers and randomness, as the shells use them. */
export interface Clock {
  /** Milliseconds since the epoch (the simulator's virtual time under simulation). */
  now(): number;
  /** Runs `fn` after `ms`. Timers never keep the process alive. */
  setTimer(fn: () => void, ms: number): Timer;
  /** Cancels `timer` (idempotent; nothing happens once it fired). */
  clearTimer(timer: Timer): void;
  /** Runs `fn` once the current event-loop turn's work is done (after its promises settle). */
  defer(fn: () => void): void;
  /** A number in [0, 1), for jitter. */
  random(): number;
  /**
   * Keeps the process alive until the returned function is called (timers never do). Optional:
   * a clock without processes (the simulator's) leaves it out.
   */
  keepAlive?(): () => void;
}

/** The longest delay `setInterval` takes, in ms: the keep-alive handle never fires in practice. */
const KEEP_ALIVE_INTERVAL_MS = 2 ** 31 - 1;

/** The system clock: `Date.now`, unref'd timers, `setImmediate`, `Math.random`. Allocates nothing of its own per timer. */
export const systemClock: Clock = Object.freeze({
  now: Date.now,
  setTimer(fn: () => void, ms: number): Timer {
    return setTimeout(fn, ms).unref() as Timer;
  },
  clearTimer(timer: Timer): void {
    clearTimeout(timer as NodeJS.Timeout);
  },
  defer(fn: () => void): void {
    setImmediate(fn);
  },
  random: Math.random,
  keepAlive(): () => void {
    const handle = setInterval(() => undefined, KEEP_ALIVE_INTERVAL_MS);
    return () => clearInterval(handle);
  },
});
