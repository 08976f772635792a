import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * prom-client's default process_* and nodejs_* metrics, less the three gauges it names `*_total`
 * (promtool: "non-counter metrics should not have _total suffix"); their per-type twins
 * `nodejs_active_handles`, `nodejs_active_requests` and `nodejs_active_resources` stay.
 */
export function createProcessRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
  return registry;
}
