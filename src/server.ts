import express, { type NextFunction, type Request, type Response } from 'express';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { escapeHtml, renderHtml } from './check/html.js';
import { buildReport } from './check/report.js';
import { errorMessage } from './host/fs.js';
import type { Logger } from './log.js';
import { createScrapeBodies, prefersGzip } from './metrics/scrape-body.js';
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
<p>No sample taken yet. <a href="${escapeHtml(telemetryPath)}">Metrics</a></p></body></html>
`;

/** Never show a stack trace to a client. */
function failRequest(log: Logger, path: string, response: ServerResponse, error: unknown): void {
  log.error('request failed', { path, err: errorMessage(error) });
  if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('internal error\n');
}

/** A scrape: the latest snapshot and the process metrics, gzipped when the scraper asks (Prometheus does). */
function metricsHandler(options: AppOptions): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  const scrapeBodies = createScrapeBodies(options.processRegistry);
  return async (request, response) => {
    const gzip = prefersGzip(request.headers['accept-encoding']);
    const chunks = await scrapeBodies(options.latest(), gzip);
    response.writeHead(200, {
      'Content-Type': options.processRegistry.contentType,
      'Content-Length': chunks.reduce((total, chunk) => total + chunk.length, 0),
      Vary: 'Accept-Encoding',
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
    });
    for (const chunk of chunks.slice(0, -1)) response.write(chunk);
    response.end(chunks[chunks.length - 1]);
  };
}

/** The exporter's HTTP handler: /metrics, health and readiness, the status page. */
export function createApp(options: AppOptions): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Only the documented paths, exactly: express would also match `/METRICS` and `/metrics/`.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);

  const serveMetrics = metricsHandler(options);
  app.get(options.telemetryPath, (request, response) => serveMetrics(request, response));
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
  app.use((error: unknown, request: Request, response: Response, _next: NextFunction) => failRequest(options.log, request.path, response, error));
  // A scrape of exactly the telemetry path skips express's router: with many scrapers at once, routing
  // cost as much as the answer. Anything else (a trailing slash, POST) takes the routes above.
  return (request, response) => {
    const path = request.url?.split('?', 1)[0];
    if ((request.method === 'GET' || request.method === 'HEAD') && path === options.telemetryPath) {
      serveMetrics(request, response).catch((error: unknown) => failRequest(options.log, path, response, error));
      return;
    }
    void app(request, response);
  };
}
