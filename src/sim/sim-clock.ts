// Simulated time: a clock that only moves when the next scheduled event is taken, and a queue of
// events ordered by (time, insertion order) so that equal times never depend on anything but the
// order in which the simulation scheduled them.

/** An event waiting in the queue. */
interface Entry<T> {
  readonly at: number;
  readonly seq: number;
  readonly event: T;
}

/** A binary heap of events ordered by time, then by scheduling order. */
export class SimClock<T> {
  #now = 0;
  #seq = 0;
  readonly #heap: Entry<T>[] = [];

  /** The current simulated time in ms. */
  get now(): number {
    return this.#now;
  }

  /** How many events are waiting. */
  get pending(): number {
    return this.#heap.length;
  }

  /** Schedules `event` at absolute time `at` (never in the past). */
  schedule(at: number, event: T): void {
    const entry: Entry<T> = { at: Math.max(this.#now, at), seq: this.#seq++, event };
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Entry<T>;
      if (!before(entry, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  /** The time of the next event, or `undefined` when none is left. */
  peekTime(): number | undefined {
    return this.#heap[0]?.at;
  }

  /** Takes the next event and moves the clock to its time. */
  next(): T | undefined {
    const heap = this.#heap;
    const top = heap[0];
    if (!top) return undefined;
    const last = heap.pop() as Entry<T>;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let mEntry = last;
        const le = heap[l];
        if (le && before(le, mEntry)) {
          m = l;
          mEntry = le;
        }
        const re = heap[r];
        if (re && before(re, mEntry)) {
          m = r;
          mEntry = re;
        }
        if (m === i) break;
        heap[i] = mEntry;
        i = m;
      }
      heap[i] = last;
    }
    this.#now = top.at;
    return top.event;
  }
}

function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
