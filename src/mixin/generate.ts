import type { MixinConfig } from './config.js';
import { renderRuleFile } from './rules.js';

/** Every generated file, by its path under the output directory (as in the repository). */
export function generateMixin(config: MixinConfig): Map<string, string> {
  return new Map([['alerts/vfio.rules.yml', renderRuleFile(config)]]);
}
