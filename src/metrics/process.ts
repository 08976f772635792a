import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * prom-client's default process_* and nodejs_* metrics, less the three gauges it names `*_total`
 * (promtool: "non-counter metrics should not have _total suffix"); their per-type twins
 * `nodejs_active_handles`, `nodejs_active_requests` and `nodejs_active_resources` stay.
 */
export function createProcessRegistry(): Registry {
  const registry = new Registry();
  // The event-loop delay histogram samples on a timer; prom-client's default of every 10 ms woke an idle
  // exporter 100 times a second, 0.4 % of a core on its own. Every 100 ms still shows a loop blocked for long.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
  return registry;
}
