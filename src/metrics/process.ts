import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { WebConfigReloadState } from '../web/source.js';

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

/**
 * Whether the web config file was last read again without error, and when the config in force was
 * read: the pair Prometheus exposes for its own config (`prometheus_config_last_reload_successful`,
 * `..._success_timestamp_seconds`). Collected at scrape time.
 */
export function registerWebConfigReloadMetrics(registry: Registry, reloadState: () => WebConfigReloadState): void {
  new Gauge({
    name: 'vfio_exporter_web_config_last_reload_successful',
    help: 'Whether the last read of --web.config.file succeeded; on failure the last good config stays in force.',
    registers: [registry],
    collect() {
      this.set(reloadState().successful ? 1 : 0);
    },
  });
  new Gauge({
    name: 'vfio_exporter_web_config_last_reload_success_timestamp_seconds',
    help: 'When the web config in force was read, seconds since the epoch.',
    registers: [registry],
    collect() {
      this.set(reloadState().lastSuccessSeconds);
    },
  });
}
