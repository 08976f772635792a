import type { MixinConfig } from './config.js';
import { fleetDashboard } from './dashboards/fleet.js';
import { overviewDashboard } from './dashboards/overview.js';
import { renderRuleFile } from './rules.js';

/** Every generated file, by its path under the output directory (as in the repository). */
export function generateMixin(config: MixinConfig): Map<string, string> {
  const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';
  return new Map([
    ['alerts/vfio.rules.yml', renderRuleFile(config)],
    ['grafana/vfio-overview.json', json(overviewDashboard(config).build())],
    ['grafana/vfio-fleet.json', json(fleetDashboard(config).build())],
  ]);
}
