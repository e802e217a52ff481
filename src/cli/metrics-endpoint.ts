// `--metrics HOST:PORT` of `verdict coordinator`: a prom-client registry with the coordinator's
// metrics and Node's default ones, served over HTTP. Imported only when the flag is given.

import type { CoordinatorMetrics } from '../coordinator/coordinator-metrics.js';
import type { MetricsServer } from '../common/metrics-server.js';

/** A bound metrics endpoint and the metrics it serves. */
export interface MetricsEndpoint {
  readonly metrics: CoordinatorMetrics;
  readonly server: MetricsServer;
}

/** Binds `listen` (before the coordinator opens its log: a port in use changes nothing). */
export async function startMetricsEndpoint(listen: string): Promise<MetricsEndpoint> {
  const [{ Registry, collectDefaultMetrics }, { CoordinatorMetrics }, { serveMetrics }] = await Promise.all([
    import('prom-client'),
    import('../coordinator/coordinator-metrics.js'),
    import('../common/metrics-server.js'),
  ]);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = new CoordinatorMetrics(registry);
  return { metrics, server: await serveMetrics(listen, registry) };
}
