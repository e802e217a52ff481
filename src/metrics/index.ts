/**
 * `verdict/metrics`: Prometheus metrics (prom-client) for a coordinator embedded in a service,
 * the same ones `verdict coordinator --metrics` serves. A subpath of its own, so that importing
 * `verdict` never loads prom-client.
 *
 * ```ts
 * import { Coordinator } from 'verdict';
 * import { CoordinatorMetrics } from 'verdict/metrics';
 *
 * const metrics = new CoordinatorMetrics(myRegistry);      // or a registry of its own
 * const coordinator = await Coordinator.start({ observer: metrics.observer });
 * metrics.attach(coordinator);
 * ```
 *
 * A participant registers its metrics with the `metrics: { registry }` option of
 * `Participant.start`.
 */
export { CoordinatorMetrics, Phase, PHASE_BUCKETS_SECONDS } from '../coordinator/coordinator-metrics.js';
