import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from './log.js';
import type { Sample } from './sampler.js';

export interface AppOptions {
  telemetryPath: string;
  /** The latest sample, or undefined before the first one completes. */
  latest: () => Sample | undefined;
  /** prom-client's process_* and nodejs_* metrics, collected at scrape time (cheap, no host I/O under --path.*). */
  processRegistry: Registry;
  log: Logger;
}

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

export function landingPage(telemetryPath: string): string {
  const href = escapeHtml(telemetryPath);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vfio-exporter</title></head>
<body><h1>vfio-exporter</h1><p>Prometheus exporter for PCI-passthrough (VFIO) hosts.</p>
<ul><li><a href="${href}">Metrics</a></li><li><a href="/-/healthy">Health</a></li><li><a href="/-/ready">Readiness</a></li></ul>
</body></html>
`;
}

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
  app.get('/', (_request, response) => {
    response.type('html').send(landingPage(options.telemetryPath));
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
