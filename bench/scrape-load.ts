import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { get, percentile } from './http.js';

export interface LoadResult {
  scrapers: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  requestsPerSecond: number;
  responseBytes: number;
}

/** What Prometheus sends: it asks for gzip (scrape.go) and the OpenMetrics or text format. */
export const prometheusHeaders = {
  'Accept-Encoding': 'gzip',
  Accept: 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
};

/**
 * `scrapers` keep-alive clients, each scraping again as soon as its last scrape ends (a closed loop,
 * as autocannon does), for `durationMs` after `warmupMs` whose scrapes are not counted. With `gzip`
 * they ask what Prometheus asks; without, for plain text. Bodies are counted, not decompressed.
 */
export async function scrapeLoad(url: string, options: { scrapers: number; warmupMs: number; durationMs: number; gzip: boolean }): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.scrapers });
  const latencies: number[] = [];
  let errors = 0;
  let responseBytes = 0;
  const measureFrom = performance.now() + options.warmupMs;
  const end = measureFrom + options.durationMs;
  const scraper = async (): Promise<void> => {
    while (performance.now() < end) {
      const started = performance.now();
      try {
        const { status, bytes, ms } = await get(url, { agent, discardBody: true, headers: options.gzip ? prometheusHeaders : { 'Accept-Encoding': 'identity' } });
        if (status !== 200) throw new Error(`status ${status}`);
        responseBytes = bytes;
        if (started >= measureFrom) latencies.push(ms);
      } catch {
        errors++;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.scrapers }, scraper));
  } finally {
    agent.destroy();
  }
  const sorted = latencies.sort((a, b) => a - b);
  return {
    scrapers: options.scrapers,
    requests: sorted.length,
    errors,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? NaN,
    requestsPerSecond: sorted.length / (options.durationMs / 1000),
    responseBytes,
  };
}
