import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { envName, parseFlags, parseListenAddress, UsageError } from '../src/cli/flags.js';
import { checkSampleInterval, msUntilNextTick } from '../src/sampler.js';
import { configFor, repoRoot } from './helpers/fixtures.js';

const tsx = path.join(repoRoot, 'node_modules/.bin/tsx');
const runCli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(tsx, [path.join(repoRoot, 'src/main.ts'), ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });

describe('flags', () => {
  it('has node_exporter defaults', () => {
    const config = configFor([]);
    expect(config.listen).toEqual({ host: '', port: 9847 });
    expect(config.telemetryPath).toBe('/metrics');
    expect(config.paths).toEqual({ sysfs: '/sys', procfs: '/proc', rootfs: '/', kmsg: '/dev/kmsg', pciIds: undefined });
    expect(config.sampleIntervalSeconds).toBe(15);
    expect(config.logFormat).toBe('logfmt');
    expect(config.collectors.has('pci')).toBe(true);
  });
  it('takes --flag=value, --flag value and --no-collector.NAME', () => {
    const config = configFor(['--path.sysfs=/host/sys', '--path.procfs', '/host/proc', '--no-collector.iommu', '--sample.interval=30s']);
    expect(config.paths.sysfs).toBe('/host/sys');
    expect(config.paths.procfs).toBe('/host/proc');
    expect(config.collectors.has('iommu')).toBe(false);
    expect(config.sampleIntervalSeconds).toBe(30);
  });
  it('reads every flag from the environment, flags winning', () => {
    expect(envName('web.listen-address')).toBe('VFIO_EXPORTER_WEB_LISTEN_ADDRESS');
    const result = parseFlags(['--log.level=warn'], { VFIO_EXPORTER_PATH_ROOTFS: '/host', VFIO_EXPORTER_LOG_LEVEL: 'debug', VFIO_EXPORTER_COLLECTOR_PCI: 'false' });
    if (result.kind !== 'config') throw new Error('expected config');
    expect(result.config.paths.rootfs).toBe('/host');
    expect(result.config.logLevel).toBe('warn');
    expect(result.config.collectors.has('pci')).toBe(false);
  });
  it('parses listen addresses', () => {
    expect(parseListenAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('[::1]:9847')).toEqual({ host: '::1', port: 9847 });
    expect(() => parseListenAddress('9847')).toThrow(UsageError);
  });
  it('rejects bad values with the flag named', () => {
    expect(() => configFor(['--log.format=xml'])).toThrow(/--log.format: expected one of logfmt, json/);
    expect(() => configFor(['--sample.interval=soon'])).toThrow(/--sample.interval: not a duration/);
    expect(() => configFor(['--bogus'])).toThrow(/unknown flag --bogus/);
    expect(() => configFor(['--web.telemetry-path=metrics'])).toThrow(/must start with \//);
  });
  it('takes intervals that divide a minute or an hour', () => {
    for (const seconds of [1, 15, 60, 300, 3600]) expect(() => checkSampleInterval(seconds)).not.toThrow();
    for (const seconds of [7, 0, 90, 420, 7200]) expect(() => checkSampleInterval(seconds)).toThrow(/must divide/);
  });
  it('ticks on multiples of the interval, a whole interval apart even when a timer fires early or late', () => {
    const minute = Date.UTC(2026, 0, 1, 10, 0);
    expect(msUntilNextTick(15, minute + 3000)).toBe(12_000);
    // A timer 2 ms early or 40 ms late for the tick at :15 waits for :30.
    expect(msUntilNextTick(15, minute + 14_998)).toBe(15_002);
    expect(msUntilNextTick(15, minute + 15_040)).toBe(14_960);
    // Started 2 s before a multiple: that sample is taken at start, the next tick is the multiple after.
    expect(msUntilNextTick(15, minute + 13_000)).toBe(17_000);
    expect(msUntilNextTick(300, minute + 60_000)).toBe(240_000);
  });
});

describe('the binary', () => {
  it('prints help and version', () => {
    const help = runCli(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--web.listen-address');
    expect(help.stdout).toContain('--[no-]collector.pci');
    const version = runCli(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout).toMatch(/^vfio-exporter \d+\.\d+\.\d+/);
  });
  it('exits non-zero with one clear line on a bad flag value', () => {
    const result = runCli(['--web.listen-address=nope']);
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual(['vfio-exporter: --web.listen-address: expected [host]:port, got "nope"']);
    const fromEnv = runCli([], { VFIO_EXPORTER_SAMPLE_INTERVAL: '7s' });
    expect(fromEnv.status).toBe(2);
    expect(fromEnv.stderr).toMatch(/must divide a minute/);
  });
});
