import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from './alerting.js';
import { configFor } from './fixtures.js';
import { startPrometheus, type RunningPrometheus } from './prometheus.js';
import { startQemu, type RunningQemu } from './qemu.js';
import { copyHostKept } from './tmp-host.js';

export interface LabHost {
  copy: { root: string; flags: string[] };
  exporter: RunningExporter;
  instance: string;
}

export interface DashboardLab {
  /** By fixture host name; the first is the seed host suprox. */
  hosts: Record<string, LabHost>;
  prometheus: RunningPrometheus;
  close(): Promise<void>;
}

async function startHost(name: string): Promise<LabHost> {
  const copy = copyHostKept(name);
  const exporter = await startExporter(configFor([...copy.flags, '--web.listen-address=127.0.0.1:0', '--sample.interval=1s']), silentLogger).catch(
    (error: unknown) => {
      rmSync(copy.root, { recursive: true, force: true });
      throw error;
    },
  );
  return { copy, exporter, instance: `127.0.0.1:${exporter.port}` };
}

/**
 * What every dashboard query needs to show data: exporters on fixture hosts (suprox first, its VM 100
 * running in a real QEMU so its balloon has a size), a real Prometheus scraping them with the rules, and
 * an OOM kill seen while it watches (the "any process" annotation marks it; an alert fires on it).
 */
export async function startDashboardLab(options: { hosts: string[]; job: string; targetLabels?: Record<string, string>; ruleFiles: string[] }): Promise<DashboardLab> {
  const hosts: Record<string, LabHost> = {};
  let qemu: RunningQemu | undefined;
  let prometheus: RunningPrometheus | undefined;
  const close = async (): Promise<void> => {
    await prometheus?.stop();
    for (const host of Object.values(hosts)) await host.exporter.close();
    await qemu?.close();
    for (const host of Object.values(hosts)) rmSync(host.copy.root, { recursive: true, force: true });
  };
  try {
    for (const name of options.hosts) hosts[name] = await startHost(name);
    const seed = hosts['suprox']!;
    qemu = await startQemu({ qmpSocket: path.join(seed.copy.root, 'root/run/qemu-server/100.qmp'), memoryMiB: 2048 });
    prometheus = await startPrometheus({
      targets: Object.values(hosts).map((host) => host.instance),
      job: options.job,
      targetLabels: options.targetLabels,
      ruleFiles: options.ruleFiles,
      intervalSeconds: 1,
    });
    const running = prometheus;
    const seen = (expr: string) => async (): Promise<true | undefined> => ((await running.samples(expr)).length > 0 ? true : undefined);
    const count = Object.keys(hosts).length;
    await waitFor('three scrapes of each exporter', 20_000, seen(`count(count_over_time(up{job="${options.job}"}[1m]) >= 3) == ${count}`));
    const scrapedAt = Date.now();
    await waitFor('every rule group evaluated after the scrapes', 10_000, async () =>
      (await running.ruleEvaluations()).every((evaluated) => evaluated.getTime() > scrapedAt) ? true : undefined,
    );
    // A kill of some process while Prometheus watches, as the seed's /proc/vmstat shows it.
    const vmstat = path.join(seed.copy.root, 'proc/vmstat');
    const counters = readFileSync(vmstat, 'utf8');
    expect(counters).toMatch(/^oom_kill \d+$/m);
    writeFileSync(vmstat, counters.replace(/^oom_kill (\d+)$/m, (_line, kills: string) => `oom_kill ${Number(kills) + 1}`));
    await waitFor('the new OOM kill to be scraped', 10_000, seen('changes(vfio_oom_kills_total[1m]) > 0'));
    await waitFor('an alert to fire on it', 10_000, seen('ALERTS{alertstate="firing"}'));
  } catch (error) {
    await close();
    throw error;
  }
  return { hosts, prometheus, close };
}
