/**
 * The performance benchmark: `npm run bench` (after `npm ci`). Builds the exporter, writes a synthetic
 * SR-IOV host (4,122 PCI functions, 300 Proxmox VMs of which 150 run with live QMP sockets, a 50 MB
 * kernel log with 1,000 OOM kills), then measures against the targets and prints one table.
 * Method and results: docs/performance.md.
 *
 *   npm run bench [-- --quick] [-- --json results.json]
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fixtureFlags } from '../test/helpers/fixtures.js';
import { startExporterProcess, type ExporterProcess } from './exporter-process.js';
import { buildSingleExecutable, checkFootprint, heapOf, nodeFloor, residentSplit, serveFootprints, singleExecutable, timesNodeExporter, type Footprint } from './footprint.js';
import { get, median } from './http.js';
import type { HeapGrowth } from './heap-growth.js';
import type { KmsgThroughput } from './kmsg.js';
import { describeMachine } from './machine.js';
import { startNodeExporter } from './node-exporter.js';
import { clockTicksPerSecond, cpuTicks, residentBytes } from './proc-stat.js';
import { cleanUp, cleanUpOnSignals, runJsonChild, trackDirectory } from './processes.js';
import { startQmpServers } from './qmp-servers.js';
import type { SampleCost } from './sample-cost.js';
import { memoryTrendWindowMs } from '../src/collectors/memory.js';
import { scrapeLoad, type LoadResult } from './scrape-load.js';
import { generateSyntheticHost, type SyntheticHost } from './synthetic/host.js';
import { atLeast, atMost, context, formatTable, kib, mib, ms, percent, perSecond, skipped, type Row } from './table.js';

const { values: options } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const quick = options.quick === true;
const settings = {
  scrapeWarmupMs: 1000,
  scrapeDurationMs: quick ? 3000 : 10_000,
  scrapers: 20,
  samples: quick ? 5 : 15,
  sampleWarmup: 3,
  steadyWarmupSeconds: quick ? 5 : 16,
  steadySeconds: quick ? 20 : 60,
  heapSamples: quick ? 1000 : 10_000,
  heapWarmup: quick ? 200 : 2000,
  // Past the memory collector's trend window, which back-to-back samples would otherwise be seen filling.
  heapWarmupMs: quick ? 0 : memoryTrendWindowMs,
  comparisonScrapes: quick ? 10 : 30,
  footprintSettleMs: quick ? 10_000 : 20_000,
  footprintScrapeEveryMs: 5000,
};

const progress = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`);
};
const sleep = (milliseconds: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, milliseconds));
const here = path.dirname(new URL(import.meta.url).pathname);

/** A warning row when the exporter logged collector errors: a fast sample that failed proves nothing. */
const collectorErrors = (exporter: ExporterProcess, host: string): Row[] => {
  const errors = exporter.errorLines();
  return errors.length === 0 ? [] : [context(`collector errors logged, ${host}`, `${errors.length}: ${errors[0]!.slice(0, 160)}`)];
};

async function scrapeRows(host: string, flags: readonly string[], p99Limit: number): Promise<Row[]> {
  progress(`/metrics under ${settings.scrapers} concurrent scrapers, ${host}`);
  const exporter = await startExporterProcess(flags);
  try {
    const load = (gzip: boolean): Promise<LoadResult> =>
      scrapeLoad(`${exporter.baseUrl}/metrics`, { scrapers: settings.scrapers, warmupMs: settings.scrapeWarmupMs, durationMs: settings.scrapeDurationMs, gzip });
    const prometheusLike = await load(true);
    const plain = await load(false);
    const describe = (result: LoadResult): string =>
      `p50 ${ms(result.p50Ms)}, max ${ms(result.maxMs)}, ${perSecond(result.requestsPerSecond)}, ${kib(result.responseBytes)} per scrape, ${result.errors} errors`;
    return [
      atMost(`/metrics p99, ${settings.scrapers} scrapers asking gzip, ${host}`, prometheusLike.p99Ms, p99Limit, ms),
      context(`/metrics, ${settings.scrapers} scrapers asking gzip, ${host}`, describe(prometheusLike)),
      // Prometheus always asks for gzip; plain text (curl, a browser) for reference.
      context(`/metrics, ${settings.scrapers} scrapers asking plain text, ${host}`, `p99 ${ms(plain.p99Ms)}, ${describe(plain)}`),
      ...collectorErrors(exporter, host),
    ];
  } finally {
    await exporter.stop();
  }
}

async function sampleRows(host: SyntheticHost): Promise<Row[]> {
  progress(`sample cost on the synthetic host: ${settings.sampleWarmup} warm-up, median of ${settings.samples}`);
  const cost = await runJsonChild<SampleCost>(path.join(here, 'sample-cost.ts'), [String(settings.samples), String(settings.sampleWarmup), host.root, host.spareVf, '--', ...host.flags], {
    timeoutMs: 300_000,
  });
  const collectors = Object.entries(cost.collectorMs).map(([name, duration]) => `${name} ${duration.toFixed(0)}`).join(', ');
  return [
    atMost('one sample, synthetic host: wall (median)', median(cost.wallMs), 250, ms),
    atMost('one sample, synthetic host: CPU (median)', median(cost.cpuMs), 150, ms),
    atMost('one sample after a driver rebind, synthetic host: wall (median)', median(cost.afterChange.wallMs), 250, ms),
    atMost('one sample after a driver rebind, synthetic host: CPU (median)', median(cost.afterChange.cpuMs), 100, ms),
    context('a driver rebind, synthetic host: CPU over the steady sample (medians)', ms(median(cost.afterChange.cpuMs) - median(cost.cpuMs))),
    context('first sample, synthetic host (cold)', `${ms(cost.first.wallMs)} wall, ${ms(cost.first.cpuMs)} CPU`),
    context('synthetic host output', `${cost.series.toLocaleString('en-US')} series, ${mib(cost.textBytes)}; collector ms: ${collectors}`),
    ...(cost.failing.length > 0 ? [context('collectors failing, synthetic host', cost.failing.join(' | '))] : []),
  ];
}

/**
 * Steady state as deployed: the built exporter at the default 15 s interval, scraped once per interval
 * as Prometheus would; its CPU is utime+stime from /proc/<pid>/stat over the window.
 */
async function steadyRows(): Promise<Row[]> {
  progress(`steady state on the seed host: ${settings.steadyWarmupSeconds} s warm-up, ${settings.steadySeconds} s window`);
  const exporter = await startExporterProcess(fixtureFlags('suprox'));
  try {
    await sleep(settings.steadyWarmupSeconds * 1000);
    const ticksStart = cpuTicks(exporter.pid);
    const started = performance.now();
    const end = started + settings.steadySeconds * 1000;
    while (performance.now() < end) {
      await get(`${exporter.baseUrl}/metrics`, { discardBody: true });
      await sleep(Math.min(15_000, end - performance.now()));
    }
    const seconds = (performance.now() - started) / 1000;
    const cpuPercent = ((cpuTicks(exporter.pid) - ticksStart) / clockTicksPerSecond() / seconds) * 100;
    const memory = residentBytes(exporter.pid);
    return [
      atMost('steady CPU, seed host, 15 s interval (% of one core)', cpuPercent, 0.5, percent),
      atMost('steady RSS, seed host', memory.rss, 80 * 1024 * 1024, mib),
      context('peak RSS (VmHWM), seed host', mib(memory.peak)),
      ...collectorErrors(exporter, 'seed host'),
    ];
  } finally {
    await exporter.stop();
  }
}

async function heapRows(): Promise<Row[]> {
  progress(`heap over ${settings.heapSamples.toLocaleString('en-US')} samples on the seed host`);
  const heap = await runJsonChild<HeapGrowth>(path.join(here, 'heap-growth.ts'), [String(settings.heapSamples), String(settings.heapWarmup), 'suprox', String(settings.heapWarmupMs)], {
    nodeFlags: ['--expose-gc'],
    timeoutMs: 900_000,
  });
  const growth = heap.heapEndBytes - heap.heapStartBytes;
  return [
    {
      ...atMost(`heap growth after GC over ${heap.samples.toLocaleString('en-US')} samples, seed host`, growth, 1024 * 1024, mib),
      measured: `${mib(heap.heapStartBytes)} → ${mib(heap.heapHalfwayBytes)} → ${mib(heap.heapEndBytes)} (${growth >= 0 ? '+' : ''}${kib(growth)})`,
    },
    context('mean sample, seed host (in process)', `${ms(heap.meanSampleMs)}, after ${heap.warmupSamples.toLocaleString('en-US')} warm-up samples`),
  ];
}

/** The exporter's kernel log path (follower and tally) over the synthetic host's backlog, in a fresh process. */
async function kmsgRows(host: SyntheticHost): Promise<Row[]> {
  progress('kernel log throughput over the synthetic backlog');
  const result = await runJsonChild<KmsgThroughput>(path.join(here, 'kmsg.ts'), [path.join(host.root, 'kmsg'), String(host.summary.kmsg.records)], { timeoutMs: 300_000 });
  return [
    atLeast('kmsg parse throughput (records/s)', result.records / result.seconds, 500_000, perSecond),
    context(
      'kmsg backlog, synthetic host',
      `${result.records.toLocaleString('en-US')} records, ${mib(result.bytes)}, in ${ms(result.seconds * 1000)}; ${result.oomKills.toLocaleString('en-US')} OOM kills counted (${host.summary.kmsg.oomEvents.toLocaleString('en-US')} written)`,
    ),
  ];
}

/**
 * Memory beside node_exporter's, in the same run: the exporter serving the seed host, the single executable
 * serving it, the exporter serving the synthetic host (its QMP servers running), and `check` of the seed host.
 */
async function footprintRows(host: SyntheticHost): Promise<Row[]> {
  progress('building the single executable (npm run package)');
  buildSingleExecutable();
  const nodeExporter = await startNodeExporter(progress);
  if ('skipped' in nodeExporter) return [skipped('memory vs node_exporter', '', nodeExporter.skipped)];
  try {
    const settle = { settleMs: settings.footprintSettleMs, scrapeEveryMs: settings.footprintScrapeEveryMs };
    const seconds = `${settings.footprintSettleMs / 1000} s after the first sample`;
    progress(`memory: serving the seed host, from the package and as the single executable side by side, beside node_exporter (${seconds})`);
    const seedRun = await serveFootprints([{ flags: fixtureFlags('suprox') }, { flags: fixtureFlags('suprox'), executable: singleExecutable }], nodeExporter, settle);
    const [seed, sea] = seedRun.exporters as [Footprint, Footprint];
    progress('memory: serving the synthetic host; check of the seed host');
    const syntheticRun = await serveFootprints([{ flags: host.flags }], nodeExporter, settle);
    const [synthetic] = syntheticRun.exporters as [Footprint];
    const check = await checkFootprint(fixtureFlags('suprox'));
    const checkNodeExporterRss = residentBytes(nodeExporter.pid).rss;
    const floor = await nodeFloor();
    const nodeExporterRss = seedRun.nodeExporter.rss;
    return [
      {
        metric: `RSS serving the seed host, ${seconds}`,
        target: '≤ 2× node_exporter (stretch 1.5×)',
        measured: timesNodeExporter(seed.rss, nodeExporterRss) + heapOf(seed),
        ratio: seed.rss / nodeExporterRss / 2,
        pass: seed.rss <= 2 * nodeExporterRss,
      },
      {
        metric: `RSS of the single executable serving the seed host, ${seconds}`,
        target: '≤ 1.10× the package',
        measured: `${mib(sea.rss)} = ${(sea.rss / seed.rss).toFixed(2)}× the package, ${(sea.rss / nodeExporterRss).toFixed(2)}× node_exporter${heapOf(sea)}`,
        ratio: sea.rss / seed.rss / 1.1,
        pass: sea.rss <= 1.1 * seed.rss,
      },
      context(
        'RSS split, seed host (as above)',
        `exporter ${residentSplit(seed)}; single executable ${residentSplit(sea)}; node_exporter ${residentSplit(seedRun.nodeExporter)}`,
      ),
      context('RSS of Node.js alone, this machine', `node doing nothing ${residentSplit(floor.bare)}; with an HTTP server listening ${residentSplit(floor.http)}`),
      context(`RSS serving the synthetic host, ${seconds}`, timesNodeExporter(synthetic.rss, syntheticRun.nodeExporter.rss) + heapOf(synthetic)),
      context('peak RSS (VmHWM) serving: seed host, single executable, synthetic host', [seed, sea, synthetic].map((footprint) => mib(footprint.peak)).join(', ')),
      context('peak RSS (VmHWM) of check, seed host', `${timesNodeExporter(check.peak, checkNodeExporterRss)}${heapOf(check)} at exit`),
    ];
  } finally {
    await nodeExporter.stop();
  }
}

/** One scrape each, alternating, of this exporter and node_exporter on the same (real) host. */
async function comparisonRows(): Promise<Row[]> {
  progress('one scrape of this exporter vs one scrape of node_exporter, this machine');
  const nodeExporter = await startNodeExporter(progress);
  if ('skipped' in nodeExporter) return [skipped('scrape vs node_exporter', '', nodeExporter.skipped)];
  const exporter = await startExporterProcess([]);
  try {
    const ours: number[] = [];
    const theirs: number[] = [];
    let ourBytes = 0;
    let theirBytes = 0;
    for (let index = 0; index < settings.comparisonScrapes; index++) {
      const mine = await get(`${exporter.baseUrl}/metrics`, { discardBody: true });
      const other = await get(`${nodeExporter.baseUrl}/metrics`, { discardBody: true });
      ours.push(mine.ms);
      theirs.push(other.ms);
      ourBytes = mine.bytes;
      theirBytes = other.bytes;
    }
    const theirMedian = median(theirs);
    return [
      { ...atMost('one scrape, this machine: vfio-exporter (median)', median(ours), theirMedian, ms), target: `≤ node_exporter` },
      context(`one scrape, this machine: node_exporter ${nodeExporter.version} (median)`, `${ms(theirMedian)} (${mib(theirBytes)}; vfio-exporter ${mib(ourBytes)})`),
      ...collectorErrors(exporter, 'this machine'),
    ];
  } finally {
    await exporter.stop();
    await nodeExporter.stop();
  }
}

async function main(): Promise<void> {
  cleanUpOnSignals();
  const machine = describeMachine();
  const rows: Row[] = [];
  try {
    // On a tmpfs, as /sys and /proc are memory filesystems: the exporter reads them synchronously, as in production.
    const root = trackDirectory(mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'vfio-bench-')));
    progress(`writing the synthetic host under ${root}`);
    const generationStarted = performance.now();
    const host = generateSyntheticHost(root);
    const { summary } = host;
    progress(
      `synthetic host: ${summary.pciDevices} PCI functions (${summary.virtualFunctions} VFs, ${summary.vfioBound} on vfio-pci), ` +
        `${summary.vms} VMs (${summary.runningVms} running), ${mib(summary.kmsg.bytes)} kernel log with ${summary.kmsg.oomEvents} OOM kills, ` +
        `in ${((performance.now() - generationStarted) / 1000).toFixed(1)} s`,
    );
    const qmp = await startQmpServers(host.qmp);
    try {
      rows.push(...(await sampleRows(host)));
      rows.push(...(await scrapeRows('synthetic host', host.flags, 50)));
      rows.push(...(await footprintRows(host)));
    } finally {
      await qmp.close();
    }
    rows.push(...(await scrapeRows('seed host', fixtureFlags('suprox'), 5)));
    rows.push(...(await steadyRows()));
    rows.push(...(await heapRows()));
    rows.push(...(await kmsgRows(host)));
    rows.push(...(await comparisonRows()));
  } finally {
    await cleanUp();
  }
  const machineLine = `${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, Linux ${machine.kernel}; load average at start ${machine.loadAverage}, at end ${describeMachine().loadAverage}`;
  process.stdout.write(`\n${machineLine}\n\n${formatTable(rows)}\n`);
  if (options.json) writeFileSync(options.json, JSON.stringify({ machine, settings, rows }, null, 2) + '\n');
  const failed = rows.filter((row) => row.pass === false).map((row) => row.metric);
  if (failed.length > 0) process.stderr.write(`bench: ${failed.length} target(s) missed: ${failed.join('; ')}\n`);
}

main().catch(async (error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await cleanUp();
  process.exitCode = 1;
});
