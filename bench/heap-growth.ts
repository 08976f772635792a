/**
 * Memory over many samples, in process, on a fixture host: the heap after a full GC once warmed up
 * (the optimizing compiler keeps adding code for the first few thousand samples, which is not a leak),
 * half-way, and after N samples. The warm-up lasts at least <warm-up ms>: the memory collector's trend
 * window (5 minutes) fills with thousands of points when samples are taken back to back, where a service
 * sampling every 15 s keeps 20; a run that starts before it is full counts it as growth. Needs --expose-gc.
 *
 *   node --expose-gc --import tsx bench/heap-growth.ts <samples> <warm-up samples> <host> [<warm-up ms>]
 */
import '../src/threadpool.js';
import { performance } from 'node:perf_hooks';
import { createSampler } from '../src/exporter.js';
import { silentLogger } from '../src/log.js';
import { configFor, fixtureFlags } from '../test/helpers/fixtures.js';

export interface HeapGrowth {
  samples: number;
  warmupSamples: number;
  heapStartBytes: number;
  heapHalfwayBytes: number;
  heapEndBytes: number;
  rssStartBytes: number;
  rssEndBytes: number;
  meanSampleMs: number;
}

const [samplesArg, warmupArg, host = 'suprox', warmupMsArg = '0'] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const fullGc = (): void => {
  // Twice: the first pass can leave objects whose finalizers free more.
  gc();
  gc();
};

const sampler = createSampler(configFor(fixtureFlags(host)), silentLogger);
const warmupSamples = Number(warmupArg);
const warmupStarted = performance.now();
let warmedUp = 0;
while (warmedUp < warmupSamples || performance.now() - warmupStarted < Number(warmupMsArg)) {
  await sampler.sample();
  warmedUp++;
}
fullGc();
const start = process.memoryUsage();
const samples = Number(samplesArg);
let heapHalfwayBytes = 0;
let sampling = 0;
for (let index = 0; index < samples; index++) {
  if (index === samples / 2) {
    fullGc();
    heapHalfwayBytes = process.memoryUsage().heapUsed;
  }
  const started = performance.now();
  await sampler.sample();
  sampling += performance.now() - started;
}
const meanSampleMs = sampling / samples;
fullGc();
const end = process.memoryUsage();
await sampler.stop();
const result: HeapGrowth = {
  samples,
  warmupSamples: warmedUp,
  heapStartBytes: start.heapUsed,
  heapHalfwayBytes,
  heapEndBytes: end.heapUsed,
  rssStartBytes: start.rss,
  rssEndBytes: end.rss,
  meanSampleMs,
};
process.stdout.write(JSON.stringify(result) + '\n');
