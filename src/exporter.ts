import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './cli/flags.js';
import { allCollectors } from './collectors/index.js';
import { createProcessRegistry, registerWebConfigReloadMetrics } from './metrics/process.js';
import type { Logger } from './log.js';
import { intervalToCron, Sampler } from './sampler.js';
import { createApp } from './server.js';
import { listenWeb } from './web/listen.js';
import { WebConfigSource } from './web/source.js';
import { buildInfo } from './version.js';

export function createSampler(config: Config, log: Logger): Sampler {
  return new Sampler({
    collectors: allCollectors.filter((collector) => config.collectors.has(collector.name)),
    paths: config.paths,
    settings: { sampleIntervalSeconds: config.sampleIntervalSeconds, qmpTimeoutSeconds: config.qmpTimeoutSeconds },
    log,
    build: buildInfo,
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
  const cronExpression = intervalToCron(config.sampleIntervalSeconds);
  const sampler = createSampler(config, log);
  const processRegistry = createProcessRegistry();
  // Read and checked here: a bad file stops the exporter before anything listens.
  const webConfig = config.webConfigFile === undefined ? undefined : new WebConfigSource(config.webConfigFile, log);
  if (webConfig) registerWebConfigReloadMetrics(processRegistry, () => webConfig.reloadState());
  const app = createApp({ telemetryPath: config.telemetryPath, latest: () => sampler.latest, processRegistry, log, hostReserveBytes: config.hostReserveBytes });
  const server = await listenWeb(app, config.listen, webConfig, log);
  const { address, port } = server.address() as AddressInfo;
  log.info('listening', { address: `${address}:${port}`, telemetry_path: config.telemetryPath, version: buildInfo.version });
  sampler.start(cronExpression);
  return {
    server,
    sampler,
    port,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await sampler.stop();
    },
  };
}
