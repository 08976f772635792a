/**
 * The soak: the built exporter on the seed host sampling every second, with basic auth (a cost-10
 * bcrypt hash, what the README suggests), scraped 10 times a second by an authorized client as
 * Prometheus scrapes (gzip), while another process floods it with logins of unknown users. Per window
 * (a minute by default) it prints the scrape latency, the flood's answers, the exporter's RSS and
 * heap, and the load average; at the end a table of targets: scrape p99 < 50 ms in every window,
 * every authorized scrape answered 200, RSS and heap flat.
 *
 *   npm run bench:soak [-- --minutes 30] [-- --flood-rate 200] [-- --json soak.json]
 */
import bcrypt from 'bcryptjs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fixtureFlags } from '../test/helpers/fixtures.js';
import { startExporterProcess } from './exporter-process.js';
import { get, percentile } from './http.js';
import { describeMachine } from './machine.js';
import { residentBytes } from './proc-stat.js';
import { cleanUp, cleanUpOnSignals, spawnTracked, stopChild, trackDirectory } from './processes.js';
import { prometheusHeaders } from './scrape-load.js';
import { atMost, context, formatTable, mib, ms, type Row } from './table.js';

const { values: options } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    'window-seconds': { type: 'string', default: '60' },
    'scrapes-per-second': { type: 'string', default: '10' },
    'flood-rate': { type: 'string', default: '200' },
    json: { type: 'string' },
  },
});
const durationMs = Number(options.minutes) * 60_000;
const windowMs = Number(options['window-seconds']) * 1000;
const scrapeIntervalMs = 1000 / Number(options['scrapes-per-second']);
const floodRate = Number(options['flood-rate']);
const bcryptCost = 10;
const here = path.dirname(new URL(import.meta.url).pathname);
const exactlyZero = (metric: string, measured: number): Row => ({ metric, target: '0', measured: String(measured), ratio: undefined, pass: measured === 0 });
const progress = (line: string): void => void process.stderr.write(`soak: ${line}\n`);

interface Window {
  endSeconds: number;
  scrapes: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  rssBytes: number;
  /** The lowest heap in use the exporter reported in the window (after its collections). */
  heapFloorBytes: number;
  loadAverage: string;
}

cleanUpOnSignals();
try {
  const dir = trackDirectory(mkdtempSync(path.join(os.tmpdir(), 'vfio-soak-')));
  const password = 'soak-scraper-password';
  const webConfig = path.join(dir, 'web.yml');
  writeFileSync(webConfig, `basic_auth_users:\n  prometheus: ${bcrypt.hashSync(password, bcryptCost)}\n`);
  const authorization = `Basic ${Buffer.from(`prometheus:${password}`).toString('base64')}`;
  const flags = [...fixtureFlags('suprox'), '--sample.interval=1s', `--web.config.file=${webConfig}`];
  const machine = describeMachine();
  progress(`${machine.cpus} CPUs, load average ${machine.loadAverage}; ${Number(options.minutes)} min, ${1000 / scrapeIntervalMs} scrapes/s, flood ${floodRate} logins/s`);
  const exporter = await startExporterProcess(flags, { readyHeaders: { Authorization: authorization } });
  const metricsUrl = `${exporter.baseUrl}/metrics`;
  const flood = spawnTracked(process.execPath, ['--import', 'tsx', path.join(here, 'login-flood.ts'), metricsUrl, String(floodRate), '50'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let floodOutput = '';
  flood.stdout!.setEncoding('utf8').on('data', (chunk: string) => (floodOutput += chunk));

  // FIFO: every connection is reused in turn, so none sits idle until the server's 5 s keep-alive timeout
  // closes it just as a scrape is sent on it (which fails with ECONNRESET; Go's client, Prometheus's, retries).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4, scheduling: 'fifo' });
  const windows: Window[] = [];
  let latencies: number[] = [];
  let failed = 0;
  let heapFloor = Infinity;
  const started = performance.now();
  let windowEnd = started + windowMs;

  const failures = new Map<string, number>();
  const fail = (reason: string): void => {
    failed++;
    failures.set(reason, (failures.get(reason) ?? 0) + 1);
  };
  const scrape = async (): Promise<void> => {
    try {
      const result = await get(metricsUrl, { agent, discardBody: true, headers: { ...prometheusHeaders, Authorization: authorization }, timeoutMs: 10_000 });
      if (result.status === 200) latencies.push(result.ms);
      else fail(`status ${result.status}`);
    } catch (error) {
      fail(error instanceof Error ? error.message : String(error));
    }
  };
  /** The exporter's own nodejs_heap_size_used_bytes, from a plain-text scrape outside the measured ones. */
  const readHeap = async (): Promise<void> => {
    const { body } = await get(metricsUrl, { headers: { Authorization: authorization, 'Accept-Encoding': 'identity' } });
    const used = Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(body)?.[1]);
    if (Number.isFinite(used)) heapFloor = Math.min(heapFloor, used);
  };
  const closeWindow = (): void => {
    const sorted = latencies.sort((a, b) => a - b);
    const window: Window = {
      endSeconds: Math.round((performance.now() - started) / 1000),
      scrapes: sorted.length,
      failed,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted[sorted.length - 1] ?? NaN,
      rssBytes: residentBytes(exporter.pid).rss,
      heapFloorBytes: heapFloor,
      loadAverage: os.loadavg().map((load) => load.toFixed(2)).join(' '),
    };
    windows.push(window);
    progress(
      `${window.endSeconds} s: ${window.scrapes} scrapes, ${window.failed} failed, p50 ${ms(window.p50Ms)}, p99 ${ms(window.p99Ms)}, max ${ms(window.maxMs)}; ` +
        `RSS ${mib(window.rssBytes)}, heap floor ${mib(window.heapFloorBytes)}; load ${window.loadAverage}`,
    );
    latencies = [];
    failed = 0;
    heapFloor = Infinity;
  };

  // Scrapes go out on a fixed schedule (an open loop), as Prometheus's do, whether or not the last one ended.
  let next = performance.now();
  let heapTick = 0;
  while (performance.now() - started < durationMs) {
    void scrape();
    if (heapTick++ % 20 === 0) void readHeap().catch(() => undefined);
    next += scrapeIntervalMs;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
    if (performance.now() >= windowEnd) {
      closeWindow();
      windowEnd += windowMs;
    }
  }
  await stopChild(flood);
  agent.destroy();
  const floodAnswers = floodOutput.trim() === '' ? 'none' : floodOutput.trim();
  const exporterErrors = exporter.errorLines();
  await exporter.stop();

  // Memory is judged from the end of the first window on: the first holds the start-up and the JIT's warm-up.
  const steady = windows.slice(1);
  const first = steady[0] ?? windows[0]!;
  const last = windows[windows.length - 1]!;
  const worst = windows.reduce((a, b) => (b.p99Ms > a.p99Ms ? b : a));
  const rows = [
    atMost('scrape p99, worst window', worst.p99Ms, 50, ms),
    exactlyZero('authorized scrapes not answered 200', windows.reduce((total, window) => total + window.failed, 0)),
    atMost('RSS growth, end of window 2 to end', last.rssBytes - first.rssBytes, 16 * 1024 * 1024, mib),
    atMost('heap floor growth, window 2 to last window', last.heapFloorBytes - first.heapFloorBytes, 2 * 1024 * 1024, mib),
    context('scrapes', `${windows.reduce((total, window) => total + window.scrapes, 0)} in ${windows.length} windows of ${windowMs / 1000} s; worst window ends at ${worst.endSeconds} s (max ${ms(worst.maxMs)})`),
    context('RSS, heap floor', `${mib(first.rssBytes)} → ${mib(last.rssBytes)}, ${mib(first.heapFloorBytes)} → ${mib(last.heapFloorBytes)}`),
    ...(failures.size > 0 ? [context('authorized scrapes failed', [...failures].map(([reason, count]) => `${reason}: ${count}`).join(', '))] : []),
    context('flood answers (status: count)', floodAnswers),
    context('load average at start and end', `${machine.loadAverage}; ${last.loadAverage}`),
    ...(exporterErrors.length > 0 ? [context('exporter errors logged', `${exporterErrors.length}: ${exporterErrors[0]!.slice(0, 160)}`)] : []),
  ];
  process.stdout.write(`${formatTable(rows)}\n`);
  if (options.json) writeFileSync(options.json, JSON.stringify({ machine, settings: options, windows, floodAnswers }, null, 2) + '\n');
  process.exitCode = rows.some((row) => row.pass === false) ? 1 : 0;
} finally {
  await cleanUp();
}
