// Prometheus metrics of a coordinator. They hang off the coordinator's observer (which only
// watches) and off its counters, read at scrape time: the protocol's hot path pays nothing when
// metrics are off, and one map entry per live transaction when they are on.

import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CoordinatorEffect, CoordinatorInput, TxView } from '../protocol/coordinator-events.js';
import type { CoordinatorObserver } from './coordinator-options.js';
import type { Coordinator, CoordinatorStats } from './coordinator.js';
import { isInDoubt } from './tx-filters.js';

/** Bucket bounds of the phase latency histograms, in seconds (0.5 ms to 10 s). */
export const PHASE_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** The phases whose latency is measured. */
export const Phase = {
  /** First prepare sent → outcome decided. */
  PREPARE: 'prepare',
  /** The forced COMMIT record: write started → durable. */
  DECISION_WRITE: 'decision-write',
  /** Outcome decided → every participant acknowledged (the transaction ended). */
  DELIVERY: 'delivery',
  /** First prepare sent → ended. */
  TOTAL: 'total',
} as const;
/** A measured phase. */
export type Phase = (typeof Phase)[keyof typeof Phase];

interface Times {
  prepareAt?: number;
  writeAt?: number;
  decidedAt?: number;
}

/**
 * The coordinator's metrics in a prom-client registry. Pass `observer` to `Coordinator.start`,
 * then `attach` the started coordinator:
 *
 * ```ts
 * const metrics = new CoordinatorMetrics();
 * const coordinator = await Coordinator.start({ observer: metrics.observer });
 * metrics.attach(coordinator);
 * const text = await metrics.registry.metrics();
 * ```
 */
export class CoordinatorMetrics {
  /** The registry the metrics live in (the one passed in, or a new one). */
  readonly registry: Registry;
  readonly #times = new Map<string, Times>();
  readonly #transactions: Counter<'outcome' | 'reason'>;
  readonly #phases: Histogram<'phase'>;
  readonly #retries: Counter;
  readonly #sessionsOpened: Counter;
  #coordinator: Coordinator | undefined;

  /** `registry`: where to register (default: a registry of its own). */
  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.#transactions = new Counter({
      name: 'verdict_transactions_total',
      help: 'Transactions decided, by outcome and (for aborts) reason',
      labelNames: ['outcome', 'reason'],
      registers,
    });
    this.#phases = new Histogram({
      name: 'verdict_phase_duration_seconds',
      help: 'Latency of each phase of a transaction',
      labelNames: ['phase'],
      buckets: [...PHASE_BUCKETS_SECONDS],
      registers,
    });
    this.#retries = new Counter({ name: 'verdict_decision_retries_total', help: 'Decision deliveries retried (phase 2 resends)', registers });
    this.#sessionsOpened = new Counter({ name: 'verdict_sessions_opened_total', help: 'Participant sessions accepted', registers });
    const stats = (): CoordinatorStats | undefined => this.#coordinator?.stats;
    const views = (): TxView[] => this.#coordinator?.transactions() ?? [];
    new Gauge({
      name: 'verdict_transactions_live',
      help: 'Transactions not yet ended',
      registers,
      collect() {
        this.set(stats()?.live ?? 0);
      },
    });
    new Gauge({
      name: 'verdict_transactions_in_doubt',
      help: 'Live transactions with a participant that voted YES and has not acknowledged the outcome',
      registers,
      collect() {
        this.set(views().filter(isInDoubt).length);
      },
    });
    new Gauge({
      name: 'verdict_transactions_needs_attention',
      help: 'Transactions whose delivery exhausted its retry budget (still retried)',
      registers,
      collect() {
        this.set(views().filter((v) => v.needsAttention).length);
      },
    });
    const coordinator = (): Coordinator | undefined => this.#coordinator;
    /** A counter whose value is one of the coordinator's own counters, read when scraped. */
    const countedSinceStart = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          // The coordinator counts; the metric mirrors it (a counter has no set()).
          this.reset();
          this.inc(read());
        },
      });
    };
    new Gauge({
      name: 'verdict_sessions',
      help: 'Live participant sessions',
      registers,
      collect() {
        this.set(coordinator()?.sessions().length ?? 0);
      },
    });
    countedSinceStart('verdict_sessions_refused_total', 'Participant sessions refused (bad hello, name taken, limits)', () => stats()?.sessions.refused ?? 0);
    countedSinceStart('verdict_log_batches_total', 'Decision log batches written', () => stats()?.log.batches ?? 0);
    countedSinceStart('verdict_log_fsyncs_total', 'Decision log batches written with sync (fsync)', () => stats()?.log.syncedBatches ?? 0);
    countedSinceStart('verdict_log_writes_total', 'Decision log writes requested (group commit shares batches among them)', () => stats()?.log.writes ?? 0);
  }

  /** The observer to pass to `Coordinator.start`. */
  readonly observer: CoordinatorObserver = {
    effects: (input, effects) => this.#step(input, effects),
  };

  /** Reads the gauges from `coordinator` from now on. */
  attach(coordinator: Coordinator): void {
    this.#coordinator = coordinator;
  }

  #step(input: CoordinatorInput, effects: readonly CoordinatorEffect[]): void {
    const now = performance.now();
    switch (input.type) {
      case 'connected':
        this.#sessionsOpened.inc();
        break;
      case 'timer':
        if (input.key.startsWith('retry/')) this.#retries.inc();
        break;
      case 'persisted': {
        const t = input.token.kind === 'commit' ? this.#times.get(input.token.txId) : undefined;
        if (t?.writeAt !== undefined) this.#phases.observe({ phase: Phase.DECISION_WRITE }, (now - t.writeAt) / 1000);
        break;
      }
      default:
        break;
    }
    for (const effect of effects) {
      switch (effect.type) {
        case 'send':
          if (effect.message.type === 'prepare' && !this.#times.has(effect.message.txId)) this.#times.set(effect.message.txId, { prepareAt: now });
          break;
        case 'persist':
          if (effect.token?.kind === 'commit') this.#timesOf(effect.token.txId).writeAt = now;
          break;
        case 'decided': {
          this.#transactions.inc({ outcome: effect.outcome, reason: effect.outcome === 'aborted' ? (effect.cause ?? 'unknown') : '' });
          const t = this.#timesOf(effect.txId);
          t.decidedAt = now;
          if (t.prepareAt !== undefined) this.#phases.observe({ phase: Phase.PREPARE }, (now - t.prepareAt) / 1000);
          break;
        }
        case 'ended': {
          const t = this.#times.get(effect.txId);
          this.#times.delete(effect.txId);
          if (t?.decidedAt !== undefined) this.#phases.observe({ phase: Phase.DELIVERY }, (now - t.decidedAt) / 1000);
          if (t?.prepareAt !== undefined) this.#phases.observe({ phase: Phase.TOTAL }, (now - t.prepareAt) / 1000);
          break;
        }
        default:
          break;
      }
    }
  }

  #timesOf(txId: string): Times {
    let t = this.#times.get(txId);
    if (!t) {
      t = {};
      this.#times.set(txId, t);
    }
    return t;
  }
}
