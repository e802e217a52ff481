// The simulated network between nodes: per-direction links that partitions cut, and a transport
// that delays every message; during the fault window it also drops, duplicates and reorders them.
// Outside it, messages of one stream keep their order (what a gRPC stream guarantees).

import type { Prng } from './prng.js';
import type { NetworkPlan } from './scenario.js';

/** What the network needs from the world. */
export interface WorldClock {
  readonly now: number;
  readonly prng: Prng;
  readonly tracing: boolean;
  /** Runs `fn` at `time` on behalf of `node`: deferred while the node is paused. */
  at(time: number, node: string | undefined, fn: () => void): void;
  trace(text: string, txIds?: readonly string[], fault?: boolean, noise?: boolean): void;
}

/** Network counters. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  lostToPartition: number;
  discarded: number;
}

/** Links, partitions and the transport. */
export class SimNetwork {
  readonly #world: WorldClock;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #blocked = new Map<string, number>();
  readonly #fifo = new Map<string, number>();
  /** Per stream: the arrival of the last in-order frame, which no later frame may overtake. */
  readonly #barrier = new Map<string, number>();
  /** The fault window's misbehaviour, or undefined once faults stopped. */
  flaky: NetworkPlan | undefined;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, lostToPartition: 0, discarded: 0 };

  constructor(world: WorldClock, minDelayMs: number, maxDelayMs: number) {
    this.#world = world;
    this.#minDelayMs = minDelayMs;
    this.#maxDelayMs = maxDelayMs;
  }

  /** Cuts the direction `from` → `to` (partitions may overlap: each block needs its unblock). */
  block(from: string, to: string): void {
    const k = `${from}>${to}`;
    this.#blocked.set(k, (this.#blocked.get(k) ?? 0) + 1);
  }

  unblock(from: string, to: string): void {
    const k = `${from}>${to}`;
    const n = (this.#blocked.get(k) ?? 0) - 1;
    if (n > 0) this.#blocked.set(k, n);
    else this.#blocked.delete(k);
  }

  /** Heals every partition. */
  healAll(): void {
    this.#blocked.clear();
  }

  isBlocked(from: string, to: string): boolean {
    return this.#blocked.has(`${from}>${to}`);
  }

  /** Whether any partition is in place. */
  get partitioned(): boolean {
    return this.#blocked.size > 0;
  }

  /** A delay drawn for one message outside the fault window (for close notices). */
  quietDelay(): number {
    return this.#world.prng.int(this.#minDelayMs, this.#maxDelayMs);
  }

  /**
   * Sends one message (or frame). At the destination `check` says why it would discard the
   * message (a closed session, a dead process), if it would; otherwise `deliver` handles it.
   * `stream` keys a FIFO stream: outside the fault window its messages arrive in order. An
   * `ordered` message is never duplicated and arrives in order even during the fault window:
   * nothing sent before it on the stream arrives after it, nothing sent after it arrives before.
   */
  transmit(
    from: string,
    to: string,
    label: () => string,
    txIds: readonly string[],
    stream: string,
    check: () => string | undefined,
    deliver: () => void,
    ordered = false,
  ): void {
    const w = this.#world;
    this.stats.sent++;
    if (this.isBlocked(from, to)) {
      this.stats.lostToPartition++;
      if (w.tracing) w.trace(`${from} → ${to}  ${label()}  [lost: partition]`, txIds, false, txIds.length === 0);
      return;
    }
    const flaky = this.flaky;
    if (flaky && w.prng.chance(flaky.dropPerMille / 1000)) {
      this.stats.dropped++;
      if (w.tracing) w.trace(`${from} → ${to}  ${label()}  [dropped]`, txIds, false, txIds.length === 0);
      return;
    }
    const copies = flaky && !ordered && w.prng.chance(flaky.duplicatePerMille / 1000) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const arrivals: number[] = [];
    for (let i = 0; i < copies; i++) {
      let at: number;
      if (flaky && !ordered) {
        at = Math.max(w.now + w.prng.int(this.#minDelayMs, Math.max(this.#minDelayMs, flaky.maxDelayMs)), this.#barrier.get(stream) ?? 0);
      } else {
        const max = flaky ? Math.max(this.#minDelayMs, flaky.maxDelayMs) : this.#maxDelayMs;
        at = Math.max(w.now + w.prng.int(this.#minDelayMs, max), this.#fifo.get(stream) ?? 0, this.#barrier.get(stream) ?? 0);
        this.#fifo.set(stream, at);
      }
      if (ordered) this.#barrier.set(stream, at);
      else this.#fifo.set(stream, Math.max(at, this.#fifo.get(stream) ?? 0));
      arrivals.push(at);
      w.at(at, to, () => {
        if (this.isBlocked(from, to)) {
          this.stats.lostToPartition++;
          if (w.tracing) w.trace(`${to} ⇐ ${from}  ${label()}  [lost in flight: partition]`, txIds, false, txIds.length === 0);
          return;
        }
        const discarded = check();
        if (discarded) {
          this.stats.discarded++;
          if (w.tracing) w.trace(`${to} ⇐ ${from}  ${label()}  [discarded: ${discarded}]`, txIds, false, txIds.length === 0);
          return;
        }
        this.stats.delivered++;
        if (w.tracing) w.trace(`${to} ⇐ ${from}  ${label()}`, txIds, false, txIds.length === 0);
        deliver();
      });
    }
    if (w.tracing) {
      const when = arrivals.map((a) => `t=${a}`).join(' and ');
      w.trace(`${from} → ${to}  ${label()}  [${copies === 2 ? 'duplicated, ' : ''}arrives ${when}]`, txIds, false, txIds.length === 0);
    }
  }
}
