import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../test/helpers/fixtures.js';
import { builtMain, startExporterProcess, type ExporterProcess } from './exporter-process.js';
import { get } from './http.js';
import type { NodeExporter } from './node-exporter.js';
import { residentBytes, type ResidentSet } from './proc-stat.js';
import { spawnTracked, stopChild, withTimeout } from './processes.js';
import { mib } from './table.js';

export const singleExecutable = path.join(repoRoot, 'dist/vfio-exporter');

/** What a process holds once settled: resident set (now, peak, anonymous and file-backed) and, where it says, its V8 heap. */
export interface Footprint extends ResidentSet {
  heapUsed: number | undefined;
  heapTotal: number | undefined;
}

/** Builds the single executable (`npm run package`) from the current tree. */
export function buildSingleExecutable(): void {
  execFileSync('sh', ['packaging/build-sea.sh'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
}

/** The value of an unlabelled series in a scrape, or undefined. */
const seriesValue = (text: string, name: string): number | undefined => {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
};

/** One exporter to run: its flags, and the single executable's path to run that instead of `dist/src/main.js`. */
export interface Subject {
  flags: readonly string[];
  executable?: string;
}

/**
 * Runs the exporters side by side (the same load on the machine for each) with node_exporter beside them,
 * all scraped as Prometheus would (gzip, every `scrapeEveryMs`) for `settleMs` after the exporters' first
 * sample; then the resident set of each, and each exporter's V8 heap from its own nodejs_heap_* series.
 */
export async function serveFootprints(
  subjects: readonly Subject[],
  nodeExporter: Extract<NodeExporter, { pid: number }>,
  options: { settleMs: number; scrapeEveryMs: number },
): Promise<{ exporters: Footprint[]; nodeExporter: ResidentSet }> {
  const exporters: ExporterProcess[] = [];
  try {
    for (const subject of subjects) exporters.push(await startExporterProcess(subject.flags, { executable: subject.executable }));
    const headers = { 'Accept-Encoding': 'gzip' };
    const scrapeAll = (): Promise<unknown> =>
      Promise.all([nodeExporter, ...exporters].map((target) => get(`${target.baseUrl}/metrics`, { discardBody: true, headers })));
    const end = Date.now() + options.settleMs;
    while (Date.now() < end) {
      await scrapeAll();
      await new Promise((resolve) => setTimeout(resolve, Math.min(options.scrapeEveryMs, Math.max(0, end - Date.now()))));
    }
    const footprints: Footprint[] = [];
    for (const exporter of exporters) {
      const scrape = (await get(`${exporter.baseUrl}/metrics`)).body;
      footprints.push({
        ...residentBytes(exporter.pid),
        heapUsed: seriesValue(scrape, 'nodejs_heap_size_used_bytes'),
        heapTotal: seriesValue(scrape, 'nodejs_heap_size_total_bytes'),
      });
    }
    return { exporters: footprints, nodeExporter: residentBytes(nodeExporter.pid) };
  } finally {
    await Promise.all(exporters.map((exporter) => exporter.stop()));
  }
}

/**
 * `vfio-exporter check` run to its end: its peak resident set and its heap at exit, reported by a module
 * preloaded with `--import` (bench/exit-memory.mjs) that reads /proc/self/status when the process exits.
 */
export async function checkFootprint(flags: readonly string[]): Promise<Footprint> {
  if (!existsSync(builtMain)) throw new Error(`${builtMain} is missing: run npm run build`);
  const child = spawn(process.execPath, ['--import', pathToFileURL(path.join(repoRoot, 'bench/exit-memory.mjs')).href, builtMain, 'check', ...flags], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  await withTimeout(new Promise((resolve) => child.once('exit', resolve)), 120_000, 'vfio-exporter check');
  const line = /^exit-memory (.*)$/m.exec(stderr)?.[1];
  if (!line) throw new Error(`check reported no memory:\n${stderr.slice(-1000)}`);
  return JSON.parse(line) as Footprint;
}

/** `measured` MiB as a multiple of node_exporter's resident set. */
export const timesNodeExporter = (bytes: number, nodeExporterRss: number): string =>
  `${mib(bytes)} = ${(bytes / nodeExporterRss).toFixed(2)}× node_exporter (${mib(nodeExporterRss)})`;

/** Heap used of heap total, where the process reported them. */
export const heapOf = (footprint: Footprint): string =>
  footprint.heapUsed === undefined || footprint.heapTotal === undefined ? '' : `; V8 heap ${mib(footprint.heapUsed)} used of ${mib(footprint.heapTotal)}`;

/** A resident set and how it splits: anonymous memory (heap, stacks) and pages of mapped files (the binary). */
export const residentSplit = ({ rss, anon, file }: ResidentSet): string => `${mib(rss)} (anon ${mib(anon)} + file ${mib(file)})`;

/**
 * The floor any Node.js program starts from on this machine: this `node` doing nothing, and with an HTTP
 * server listening on loopback, each in a process of its own, 2 s after it started.
 */
export async function nodeFloor(): Promise<{ bare: ResidentSet; http: ResidentSet }> {
  const measure = async (code: string): Promise<ResidentSet> => {
    const child = spawnTracked(process.execPath, ['-e', code], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      return residentBytes(child.pid!);
    } finally {
      await stopChild(child);
    }
  };
  return {
    bare: await measure('setInterval(() => {}, 1 << 30)'),
    http: await measure("require('node:http').createServer((request, response) => response.end()).listen(0, '127.0.0.1')"),
  };
}
