import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './cli/flags.js';
import { allCollectors } from './collectors/index.js';
import type { Logger } from './log.js';
import { Sampler } from './sampler.js';
import { buildInfo } from './version.js';

/**
 * The vm collector reads in two rounds (configs and pid files, then /proc/<pid>) before it asks QMP: a quarter
 * of --sample.timeout per read leaves it time to answer for the other VMs when one VM's reads hang.
 */
export const vmReadTimeoutSeconds = (config: Pick<Config, 'collectorTimeoutSeconds'>): number => config.collectorTimeoutSeconds / 4;

export function createSampler(config: Config, log: Logger): Sampler {
  return new Sampler({
    collectors: allCollectors.filter((collector) => config.collectors.has(collector.name)),
    paths: config.paths,
    // Only the service keeps state: a `check` beside it must not write over the service's counts.
    settings: {
      sampleIntervalSeconds: config.sampleIntervalSeconds,
      qmpTimeoutSeconds: config.qmpTimeoutSeconds,
      vmReadTimeoutSeconds: vmReadTimeoutSeconds(config),
      stateFile: config.command === 'serve' ? config.stateFile : undefined,
    },
    log,
    build: buildInfo,
    hostReserveBytes: config.hostReserveGiven ? config.hostReserveBytes : undefined,
    collectorTimeoutSeconds: config.collectorTimeoutSeconds,
  });
}

export interface RunningExporter {
  server: Server;
  sampler: Sampler;
  port: number;
  close(): Promise<void>;
}

/** Listens (a bad web config file throws first), then samples at once and on the schedule. */
export async function startExporter(config: Config, log: Logger): Promise<RunningExporter> {
  const sampler = createSampler(config, log);
  // The web stack (express, prom-client) is loaded by serving only: `check` takes its sample without it.
  const [{ createProcessRegistry, registerWebConfigReloadMetrics }, { createApp }, { listenWeb }] = await Promise.all([
    import('./metrics/process.js'),
    import('./server.js'),
    import('./web/listen.js'),
  ]);
  const processRegistry = createProcessRegistry();
  // Read and checked here: a bad file stops the exporter before anything listens. The YAML parser is loaded only then.
  const webConfig = config.webConfigFile === undefined ? undefined : new (await import('./web/source.js')).WebConfigSource(config.webConfigFile, log);
  if (webConfig) registerWebConfigReloadMetrics(processRegistry, () => webConfig.reloadState());
  const app = createApp({ telemetryPath: config.telemetryPath, latest: () => sampler.latest, processRegistry, log, hostReserveBytes: config.hostReserveBytes });
  const server = await listenWeb(app, config.listen, webConfig, log);
  const { address, port } = server.address() as AddressInfo;
  log.info('listening', { address: `${address}:${port}`, telemetry_path: config.telemetryPath, version: buildInfo.version });
  sampler.start(config.sampleIntervalSeconds);
  return {
    server,
    sampler,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections of scrapers would otherwise hold close() until they time out.
      server.closeIdleConnections();
      await closed;
      await sampler.stop();
    },
  };
}
