// The load generator: N workers, each running one-shot transactions back to back through the
// initiator client, so that exactly N are in flight. Only completions inside the recording
// window count (throughput, latency); the warm-up before it and the drain after it do not. The
// window can also be cut into consecutive intervals, each read without disturbing the whole.
// Latencies go into HDR histograms (3 significant digits), so that the generator's memory stays
// the same over a run of any length (a list of every latency grew by 8 bytes a transaction).

import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { BranchInput } from '../client/client-options.js';
import type { VerdictClient } from '../client/client.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { LOAD_CALL_TIMEOUT_MS } from './bench-options.js';

/** Latency quantiles of committed transactions, in ms (to 3 significant digits); NaN when none. */
export interface LatencyQuantiles {
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
}

/** What the load generator saw in its recording window. */
export interface LoadWindow {
  /** Length of the window, in ms. */
  readonly elapsedMs: number;
  readonly committed: number;
  /** Transactions that ended aborted (TX_ABORTED). */
  readonly aborted: number;
  /** Calls that failed otherwise (unavailable, outcome unknown, …). */
  readonly errors: number;
  /** The first such failure, for the report. */
  readonly firstError: string | undefined;
  /** Latencies of committed transactions. */
  readonly latency: LatencyQuantiles;
  /** Load generator CPU in the window (user + system), in µs. */
  readonly cpuUs: number;
}

/** What the load generator saw between two consecutive `takeInterval` calls (or the window's start). */
export interface LoadInterval {
  /** When the interval ended, in ms since the window opened. */
  readonly endMs: number;
  /** Length of the interval, in ms. */
  readonly elapsedMs: number;
  /** Transactions committed in the interval. */
  readonly committed: number;
  /** Latencies of the transactions committed in the interval. */
  readonly latency: LatencyQuantiles;
}

/** Latencies are recorded in µs, from 1 µs to an hour. */
const HISTOGRAM_MAX_US = 3_600_000_000;

function newHistogram(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: HISTOGRAM_MAX_US, figures: 3 });
}

function quantilesOf(h: RecordableHistogram): LatencyQuantiles {
  const at = (percentile: number): number => (h.count === 0 ? Number.NaN : h.percentile(percentile) / 1000);
  return { p50Ms: at(50), p95Ms: at(95), p99Ms: at(99) };
}

/** Runs `inflight` concurrent workers committing `branches` until stopped. */
export class LoadGenerator {
  readonly #client: VerdictClient;
  readonly #branches: readonly BranchInput[] | (() => readonly BranchInput[]);
  readonly #inflight: number;
  #running = false;
  #recording = false;
  #workers: Promise<void>[] = [];
  /** Latencies of the whole window, and of the current interval. */
  #window = newHistogram();
  #interval = newHistogram();
  #committed = 0;
  #aborted = 0;
  #errors = 0;
  #firstError: string | undefined;
  #windowStart = 0;
  #cpuStart = process.cpuUsage();
  /** Start of the current interval, and the window's commit count then. */
  #intervalStart = 0;
  #intervalFrom = 0;

  /** `branches` is the same for every transaction, or made afresh for each. */
  constructor(client: VerdictClient, branches: readonly BranchInput[] | (() => readonly BranchInput[]), inflight: number) {
    this.#client = client;
    this.#branches = branches;
    this.#inflight = inflight;
  }

  /** Starts the workers (warm-up: nothing is recorded yet). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (let i = 0; i < this.#inflight; i++) this.#workers.push(this.#work());
  }

  /** Opens the recording window. */
  startRecording(): void {
    this.#window.reset();
    this.#interval.reset();
    this.#committed = this.#aborted = this.#errors = 0;
    this.#firstError = undefined;
    this.#windowStart = this.#intervalStart = performance.now();
    this.#intervalFrom = 0;
    this.#cpuStart = process.cpuUsage();
    this.#recording = true;
  }

  /**
   * Ends the current interval of the recording window and starts the next: what was committed
   * since the previous call (or since `startRecording`). The window's own figures are untouched,
   * so `stopRecording` still returns the whole window. Call it while recording.
   */
  takeInterval(): LoadInterval {
    const now = performance.now();
    const interval: LoadInterval = {
      endMs: now - this.#windowStart,
      elapsedMs: now - this.#intervalStart,
      committed: this.#committed - this.#intervalFrom,
      latency: quantilesOf(this.#interval),
    };
    this.#interval.reset();
    this.#intervalStart = now;
    this.#intervalFrom = this.#committed;
    return interval;
  }

  /** Closes the window and returns what it recorded; the workers keep running until `stop`. */
  stopRecording(): LoadWindow {
    this.#recording = false;
    const elapsedMs = performance.now() - this.#windowStart;
    const cpu = process.cpuUsage(this.#cpuStart);
    return {
      elapsedMs,
      committed: this.#committed,
      aborted: this.#aborted,
      errors: this.#errors,
      firstError: this.#firstError,
      latency: quantilesOf(this.#window),
      cpuUs: cpu.user + cpu.system,
    };
  }

  /** Stops issuing transactions at once, without waiting for those in flight (after a failure). */
  halt(): void {
    this.#running = false;
  }

  /** Stops issuing transactions; resolves when those in flight finished (or `timeoutMs` passed). */
  async stop(timeoutMs: number): Promise<boolean> {
    this.#running = false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const drained = await Promise.race([Promise.all(this.#workers).then(() => true as const), timedOut]);
    clearTimeout(timer);
    return drained;
  }

  async #work(): Promise<void> {
    while (this.#running) {
      const t0 = performance.now();
      try {
        const branches = typeof this.#branches === 'function' ? this.#branches() : this.#branches;
        await this.#client.transact(branches, { callTimeoutMs: LOAD_CALL_TIMEOUT_MS });
        if (this.#recording) {
          this.#committed++;
          const us = Math.min(HISTOGRAM_MAX_US, Math.max(1, Math.round((performance.now() - t0) * 1000)));
          this.#window.record(us);
          this.#interval.record(us);
        }
      } catch (e) {
        if (this.#recording) {
          if (e instanceof VerdictError && e.code === ErrorCode.TX_ABORTED) {
            this.#aborted++;
          } else {
            this.#errors++;
            this.#firstError ??= e instanceof VerdictError ? `${e.code}: ${e.message}` : String(e);
          }
        }
        // A call can fail without any I/O (a closed channel): never let failures spin the
        // worker in microtasks and starve the event loop.
        await nextTurn();
      }
    }
  }
}
