import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags, type Config } from '../../src/cli/flags.js';
import { createSampler } from '../../src/exporter.js';
import { createProcessRegistry } from '../../src/metrics/process.js';
import { createApp } from '../../src/server.js';
import type { Sample, Sampler } from '../../src/sampler.js';
import { silentLogger, type Logger } from '../../src/log.js';
import type { RequestListener } from 'node:http';
import request from 'supertest';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const fixturesDir = path.join(repoRoot, 'test/fixtures');
export const hostDir = (host: string): string => path.join(fixturesDir, 'hosts', host);

/** The `--path.*` flags that point the exporter at a host tree laid out as `{sys,proc,root,kmsg}`. */
export const hostTreeFlags = (root: string): string[] => [
  `--path.sysfs=${root}/sys`,
  `--path.procfs=${root}/proc`,
  `--path.rootfs=${root}/root`,
  `--path.kmsg=${root}/kmsg`,
  `--path.pci-ids=${fixturesDir}/pci.ids`,
  // Inventory comes from the machine running the tests, not the fixture.
  '--no-collector.host',
];

/** The `--path.*` flags that point the exporter at a fixture host. */
export const fixtureFlags = (host: string): string[] => hostTreeFlags(hostDir(host));

/**
 * Where the end-to-end tests run a fixture host's exporter with a reserve of its own (it then exports it, and
 * the rules judge that host with it); the others keep the default, as the rules' setting.
 */
export const ownHostReserve: Readonly<Record<string, string>> = { 'pve-cluster': '3GiB', 'pve-cluster-fixed': '3GiB' };
export const ownHostReserveFlags = (host: string): string[] => (ownHostReserve[host] === undefined ? [] : [`--memory.host-reserve=${ownHostReserve[host]}`]);

export function configFor(argv: string[]): Config {
  // No state kept unless a test asks: runs on the real /proc would otherwise share the machine's state file.
  const result = parseFlags(['--state.file=', ...argv], {});
  if (result.kind !== 'config') throw new Error(`not a config: ${result.kind}`);
  return result.config;
}

export interface SampledApp {
  app: RequestListener;
  sampler: Sampler;
  sample: Sample;
}

/** An app on a fixture host with one sample taken, for supertest. */
export async function sampledApp(argv: string[], log: Logger = silentLogger): Promise<SampledApp> {
  const config = configFor(argv);
  const sampler = createSampler(config, log);
  const sample = await sampler.sample();
  const processRegistry = createProcessRegistry();
  const app = createApp({ telemetryPath: config.telemetryPath, latest: () => sampler.latest, processRegistry, log, hostReserveBytes: config.hostReserveBytes });
  return { app, sampler, sample };
}

/** Collects log lines, for tests that assert what a failure logs. */
export function memoryLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const record = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => {
    lines.push(`${level} ${msg} ${JSON.stringify(fields)}`);
  };
  return { log: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') }, lines };
}

export function findBinary(name: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`${name} is not installed: run scripts/install-test-deps.sh (Debian packages the tests need)`);
  }
}

/** Lines of one series family, e.g. every `vfio_iommu_group_viable{...} v` line. */
export const seriesLines = (text: string, name: string): string[] =>
  text.split('\n').filter((line) => line.startsWith(name + '{') || line.startsWith(name + ' '));

/** `/metrics` of an app on `flags` after one sample, and the error lines the sample logged. */
export async function scrapeWithLog(flags: string[]): Promise<{ text: string; errors: string[] }> {
  const { log, lines } = memoryLogger();
  const { app } = await sampledApp(flags, log);
  const { text } = await request(app).get('/metrics').expect(200);
  return { text, errors: lines.filter((line) => line.startsWith('error')) };
}

/** A PCI device's entry under `/sys/bus/pci/devices` of a host tree. */
export const sysDevice = (root: string, address: string): string => path.join(root, 'sys/bus/pci/devices', address);

/** What the kernel does for every device added, removed, bound or unbound in a host tree: count a uevent. */
export function sendUevents(root: string, count: number): void {
  const file = path.join(root, 'sys/kernel/uevent_seqnum');
  writeFileSync(file, `${Number(readFileSync(file, 'utf8')) + count}\n`);
}
