/**
 * Cost of one full sample, in process: `createSampler(config).sample()` timed by the wall clock and by
 * `process.cpuUsage()` (every thread of the process: the thread pool's reads count). The first sample
 * (cold caches, pci.ids, a kernel log backlog) is reported apart; then the median of N after a warm-up.
 *
 * Then the median of N samples each after a driver_override change on one device (what a hookscript binding
 * a VF to vfio-pci before a VM start does): the PCI facts are rebuilt and rendered again.
 *
 *   node --import tsx bench/sample-cost.ts <samples> <warmup> <driver_override file> -- <exporter flags...>
 */
import '../src/threadpool.js';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createSampler } from '../src/exporter.js';
import { silentLogger } from '../src/log.js';
import { configFor } from '../test/helpers/fixtures.js';

export interface SampleCost {
  first: { wallMs: number; cpuMs: number };
  wallMs: number[];
  cpuMs: number[];
  afterChange: { wallMs: number[]; cpuMs: number[] };
  textBytes: number;
  series: number;
  /** Collectors that reported success 0 in the last sample. */
  failing: string[];
  /** Collector durations of the last sample, ms. */
  collectorMs: Record<string, number>;
}

const [samplesArg, warmupArg, overrideFile, separator, ...flags] = process.argv.slice(2);
if (separator !== '--' || overrideFile === undefined) throw new Error('usage: sample-cost.ts <samples> <warmup> <driver_override file> -- <flags...>');

const sampler = createSampler(configFor(flags), silentLogger);
const timed = async (): Promise<{ wallMs: number; cpuMs: number; text: string }> => {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const { text } = await sampler.sample();
  const wallMs = performance.now() - started;
  const { user, system } = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (user + system) / 1000, text };
};

const first = await timed();
for (let index = 0; index < Number(warmupArg); index++) await timed();
const wallMs: number[] = [];
const cpuMs: number[] = [];
let text = first.text;
for (let index = 0; index < Number(samplesArg); index++) {
  // A pause between samples, as between scheduled ones: the sampler's own work, not a backlog of callbacks, is measured.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const sample = await timed();
  wallMs.push(sample.wallMs);
  cpuMs.push(sample.cpuMs);
  text = sample.text;
}
const afterChange: SampleCost['afterChange'] = { wallMs: [], cpuMs: [] };
for (let index = 0; index < Number(samplesArg); index++) {
  await new Promise((resolve) => setTimeout(resolve, 20));
  writeFileSync(overrideFile, index % 2 === 0 ? 'vfio-pci\n' : '(null)\n');
  const sample = await timed();
  afterChange.wallMs.push(sample.wallMs);
  afterChange.cpuMs.push(sample.cpuMs);
}
const outcomes = sampler.latest!.snapshot.outcomes;
await sampler.stop();
const result: SampleCost = {
  first: { wallMs: first.wallMs, cpuMs: first.cpuMs },
  wallMs,
  cpuMs,
  afterChange,
  textBytes: Buffer.byteLength(text),
  series: text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).length,
  failing: outcomes.filter((outcome) => !outcome.success).map((outcome) => `${outcome.name}: ${outcome.errors.slice(0, 2).join('; ')}`),
  collectorMs: Object.fromEntries(outcomes.map((outcome) => [outcome.name, outcome.durationSeconds * 1000])),
};
process.stdout.write(JSON.stringify(result) + '\n');
