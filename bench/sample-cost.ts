/**
 * Cost of one full sample, in process: `createSampler(config).sample()` timed by the wall clock and by
 * `process.cpuUsage()` (every thread of the process: the thread pool's reads count). The first sample
 * (cold caches, pci.ids, a kernel log backlog) is reported apart; then the median of N after a warm-up.
 *
 * Then the median of N samples each after a rebind of one device, alternately to vfio-pci and back, as a
 * hookscript binding a VF before a VM start leaves it: driver_override written, the `driver` links moved,
 * and the unbind's and the bind's uevents counted in `kernel/uevent_seqnum`. The PCI facts of that device
 * are rebuilt and rendered again.
 *
 *   node --import tsx bench/sample-cost.ts <samples> <warmup> <host root> <PCI address> -- <exporter flags...>
 */
import '../src/threadpool.js';
import { existsSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createSampler } from '../src/exporter.js';
import { silentLogger } from '../src/log.js';
import { configFor, sendUevents, sysDevice } from '../test/helpers/fixtures.js';

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

const [samplesArg, warmupArg, hostRoot, address, separator, ...flags] = process.argv.slice(2);
if (separator !== '--' || hostRoot === undefined || address === undefined) throw new Error('usage: sample-cost.ts <samples> <warmup> <host root> <PCI address> -- <flags...>');

/** Binds the device to `driver` (undefined: unbound) as the kernel leaves it, with the uevents it sends. */
const deviceDir = realpathSync(sysDevice(hostRoot, address));
const boundTo = (): string | undefined => (existsSync(path.join(deviceDir, 'driver')) ? path.basename(readlinkSync(path.join(deviceDir, 'driver'))) : undefined);
const hostDriver = boundTo();
const bindTo = (driver: string | undefined): void => {
  const from = boundTo();
  writeFileSync(path.join(deviceDir, 'driver_override'), driver === 'vfio-pci' ? 'vfio-pci\n' : '(null)\n');
  if (from !== undefined) {
    rmSync(path.join(deviceDir, 'driver'));
    rmSync(path.join(hostRoot, 'sys/bus/pci/drivers', from, address), { force: true });
  }
  if (driver !== undefined) {
    const driverDir = path.join(hostRoot, 'sys/bus/pci/drivers', driver);
    symlinkSync(path.relative(deviceDir, driverDir), path.join(deviceDir, 'driver'));
    symlinkSync(path.relative(driverDir, deviceDir), path.join(driverDir, address));
  }
  sendUevents(hostRoot, (from === undefined ? 0 : 1) + (driver === undefined ? 0 : 1));
};

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
  bindTo(index % 2 === 0 ? 'vfio-pci' : hostDriver);
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
