/**
 * Memory over many samples, in process, on a fixture host: the heap after a full GC once warmed up
 * and again after N samples. Needs --expose-gc.
 *
 *   node --expose-gc --import tsx bench/heap-growth.ts <samples> <host>
 */
import '../src/threadpool.js';
import { performance } from 'node:perf_hooks';
import { createSampler } from '../src/exporter.js';
import { silentLogger } from '../src/log.js';
import { configFor, fixtureFlags } from '../test/helpers/fixtures.js';

export interface HeapGrowth {
  samples: number;
  heapStartBytes: number;
  heapEndBytes: number;
  rssStartBytes: number;
  rssEndBytes: number;
  meanSampleMs: number;
}

const [samplesArg, host = 'suprox'] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const fullGc = (): void => {
  // Twice: the first pass can leave objects whose finalizers free more.
  gc();
  gc();
};

const sampler = createSampler(configFor(fixtureFlags(host)), silentLogger);
for (let index = 0; index < 200; index++) await sampler.sample();
fullGc();
const start = process.memoryUsage();
const samples = Number(samplesArg);
const started = performance.now();
for (let index = 0; index < samples; index++) await sampler.sample();
const meanSampleMs = (performance.now() - started) / samples;
fullGc();
const end = process.memoryUsage();
await sampler.stop();
const result: HeapGrowth = {
  samples,
  heapStartBytes: start.heapUsed,
  heapEndBytes: end.heapUsed,
  rssStartBytes: start.rss,
  rssEndBytes: end.rss,
  meanSampleMs,
};
process.stdout.write(JSON.stringify(result) + '\n');
