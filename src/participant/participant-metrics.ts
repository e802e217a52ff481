// Prometheus metrics of a participant, registered in a registry the service passes in (so they
// come out of the service's own /metrics). They hang off the participant's observer and events;
// prom-client is loaded only when a service asks for metrics.

import type { Registry } from 'prom-client';
import type { ParticipantEffect, ParticipantInput } from '../protocol/participant-events.js';
import type { ParticipantObserver } from './participant-options.js';

/** The `metrics` option of a participant. */
export interface ParticipantMetricsOptions {
  /** The service's prom-client registry; the participant's metrics carry a `participant` label. */
  readonly registry: Registry;
}

/** What the metrics read from the participant at scrape time. */
export interface ParticipantMetricsSource {
  readonly name: string;
  /** Transactions held prepared without an outcome. */
  inDoubtCount(): number;
  /** Whether the session to the coordinator is up. */
  connected(): boolean;
}

/** The participants whose gauges each registry reads at scrape time. */
const SOURCES = new WeakMap<Registry, Map<string, ParticipantMetricsSource>>();

/**
 * Registers the participant metrics in `options.registry` (or reuses them when another participant
 * of the process already did) and returns an observer that feeds them, chained after `inner`.
 */
export async function participantMetrics(options: ParticipantMetricsOptions, source: ParticipantMetricsSource, inner: ParticipantObserver | undefined): Promise<ParticipantObserver> {
  const { Counter, Gauge } = await import('prom-client');
  const registry = options.registry;
  const registers = [registry];
  let sources = SOURCES.get(registry);
  if (!sources) {
    const all = (sources = new Map());
    SOURCES.set(registry, all);
    new Counter({ name: 'verdict_participant_votes_total', help: 'Votes sent, by vote', labelNames: ['participant', 'vote'], registers });
    new Counter({ name: 'verdict_participant_outcomes_total', help: 'Transactions finished here, by outcome (read-only for none)', labelNames: ['participant', 'outcome'], registers });
    new Gauge({
      name: 'verdict_participant_in_doubt',
      help: 'Transactions held prepared without an outcome',
      labelNames: ['participant'],
      registers,
      collect() {
        for (const s of all.values()) this.set({ participant: s.name }, s.inDoubtCount());
      },
    });
    new Gauge({
      name: 'verdict_participant_connected',
      help: '1 while the session to the coordinator is up',
      labelNames: ['participant'],
      registers,
      collect() {
        for (const s of all.values()) this.set({ participant: s.name }, s.connected() ? 1 : 0);
      },
    });
  }
  sources.set(source.name, source);
  const votes = registry.getSingleMetric('verdict_participant_votes_total') as InstanceType<typeof Counter<'participant' | 'vote'>>;
  const outcomes = registry.getSingleMetric('verdict_participant_outcomes_total') as InstanceType<typeof Counter<'participant' | 'outcome'>>;
  const participant = source.name;
  return {
    step(input: ParticipantInput | undefined, effects: readonly ParticipantEffect[]) {
      inner?.step?.(input, effects);
      for (const effect of effects) {
        if (effect.type === 'send' && effect.message.type === 'vote') votes.inc({ participant, vote: effect.message.vote });
        else if (effect.type === 'finished') outcomes.inc({ participant, outcome: effect.outcome ?? 'read-only' });
      }
    },
  };
}
