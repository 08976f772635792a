import type { Config } from '../cli/flags.js';
import { createSampler } from '../exporter.js';
import type { Logger } from '../log.js';
import { buildReport } from './report.js';
import { renderText } from './text.js';

/**
 * `vfio-exporter check`: one sample with the same collectors as the exporter, then the report.
 * Exit status: with --vmid, the verdict (0 fits, 1 refuse, 2 cannot judge); without, 0 when no
 * problem is found and 1 otherwise.
 */
export async function runCheck(config: Config, log: Logger, write: (text: string) => void): Promise<number> {
  const sampler = createSampler(config, log);
  try {
    const { snapshot } = await sampler.sample();
    const report = buildReport(snapshot, { reserveBytes: config.hostReserveBytes, vmid: config.checkVmid });
    write(config.checkJson ? JSON.stringify(report, null, 2) + '\n' : renderText(report));
    if (report.verdict) return report.verdict.exitCode;
    return report.problems.length === 0 ? 0 : 1;
  } finally {
    await sampler.stop();
  }
}
