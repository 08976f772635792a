import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { envName, parseFlags, parseListenAddress, UsageError } from '../src/cli/flags.js';
import { intervalToCron } from '../src/sampler.js';
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
  it('maps intervals to cron schedules', () => {
    expect(intervalToCron(15)).toBe('*/15 * * * * *');
    expect(intervalToCron(60)).toBe('0 * * * * *');
    expect(intervalToCron(300)).toBe('0 */5 * * * *');
    expect(() => intervalToCron(7)).toThrow(/must divide/);
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
