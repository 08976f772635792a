import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import { renderHtml } from './check/html.js';
import { buildReport } from './check/report.js';
import type { Logger } from './log.js';
import type { Sample } from './sampler.js';

export interface AppOptions {
  telemetryPath: string;
  /** The latest sample, or undefined before the first one completes. */
  latest: () => Sample | undefined;
  /** prom-client's process_* and nodejs_* metrics, collected at scrape time (cheap, no host I/O under --path.*). */
  processRegistry: Registry;
  log: Logger;
  /** Memory kept back for the host when the status page judges whether a VM fits. */
  hostReserveBytes: number;
}

const waitingPage = (telemetryPath: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>vfio-exporter</title></head><body><h1>vfio-exporter</h1>
<p>No sample taken yet. <a href="${telemetryPath.replace(/[&<>"']/g, '')}">Metrics</a></p></body></html>
`;

export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get(options.telemetryPath, async (_request, response) => {
    const sample = options.latest();
    const processText = await options.processRegistry.metrics();
    response.set('Content-Type', options.processRegistry.contentType).send((sample?.text ?? '') + processText);
  });
  // As Prometheus: healthy while the process serves, ready once there is something to serve.
  app.get('/-/healthy', (_request, response) => {
    response.type('text/plain').send('vfio-exporter is Healthy.\n');
  });
  app.get('/-/ready', (_request, response) => {
    if (options.latest()) response.type('text/plain').send('vfio-exporter is Ready.\n');
    else response.status(503).type('text/plain').send('vfio-exporter is not ready: no sample taken yet.\n');
  });
  // The status page is rendered once per sample, from the snapshot: no host I/O per request.
  const statusPages = new WeakMap<Sample, string>();
  app.get('/', (_request, response) => {
    const sample = options.latest();
    if (!sample) {
      response.type('html').send(waitingPage(options.telemetryPath));
      return;
    }
    let page = statusPages.get(sample);
    if (page === undefined) {
      page = renderHtml(buildReport(sample.snapshot, { reserveBytes: options.hostReserveBytes, vmid: undefined }), options.telemetryPath);
      statusPages.set(sample, page);
    }
    response.type('html').send(page);
  });
  app.use((_request, response) => {
    response.status(404).type('text/plain').send('404 page not found\n');
  });
  // Never show a stack trace to a client.
  app.use((error: unknown, request: Request, response: Response, _next: NextFunction) => {
    options.log.error('request failed', { path: request.path, err: error instanceof Error ? error.message : String(error) });
    if (!response.headersSent) response.status(500).type('text/plain').send('internal error\n');
  });
  return app;
}
