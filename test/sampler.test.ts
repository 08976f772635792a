import { spawn, execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createSampler } from '../src/exporter.js';
import { configFor, memoryLogger, repoRoot, fixtureFlags } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';
import { createApp } from '../src/server.js';
import { Registry } from 'prom-client';

describe('sampler', () => {
  it('a collector stuck on a hung read fails alone, by its deadline, and is not started twice', async () => {
    const { root, flags } = copyHost('suprox');
    const fifo = path.join(root, 'proc/meminfo');
    rmSync(fifo);
    // Opening a FIFO with no writer blocks, as a read on a hung mount does.
    execFileSync('mkfifo', [fifo]);
    const { log, lines } = memoryLogger();
    const sampler = createSampler(configFor([...flags, '--sample.timeout=1s']), log);
    try {
      const started = performance.now();
      const first = await sampler.sample();
      expect(performance.now() - started).toBeLessThan(3000);
      expect(first.text).toContain('vfio_collector_success{collector="memory"} 0');
      expect(first.text).toContain('vfio_collector_success{collector="pci"} 1');
      expect(first.text).toContain('vfio_pci_device_driver_info{pci_address="0000:00:17.0",driver="vfio-pci"} 1');
      expect(lines.filter((line) => line.includes('"collector":"memory"'))).toEqual([expect.stringContaining('timed out after 1s')]);

      const second = await sampler.sample();
      expect(second.text).toContain('vfio_collector_success{collector="memory"} 0');
      expect(lines.filter((line) => line.includes('"collector":"memory"'))[1]).toContain('previous run still has not finished');

      const app = createApp({ telemetryPath: '/metrics', latest: () => sampler.latest, processRegistry: new Registry(), log, hostReserveBytes: 0 });
      await request(app).get('/metrics').expect(200);
    } finally {
      // Give the stuck open() a writer so its pool thread returns.
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      await sampler.stop();
    }
  });
});

describe('the exporter process', () => {
  it('samples on its schedule, serves /metrics and stops cleanly on SIGTERM', async () => {
    const child = spawn(path.join(repoRoot, 'node_modules/.bin/tsx'), [path.join(repoRoot, 'src/main.ts'), ...fixtureFlags('suprox'), '--web.listen-address=127.0.0.1:0', '--sample.interval=1s'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      let stderr = '';
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listening line: ${stderr}`)), 15_000);
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          const match = /msg=listening address=\S+:(\d+)/.exec(stderr);
          if (match) {
            clearTimeout(timer);
            resolve(Number(match[1]));
          }
        });
      });
      const sampleTime = async (): Promise<number> => {
        const response = await fetch(`http://127.0.0.1:${port}/metrics`);
        return Number(/^vfio_last_sample_timestamp_seconds (\S+)$/m.exec(await response.text())?.[1] ?? NaN);
      };
      await expect.poll(sampleTime, { timeout: 5000 }).toBeGreaterThan(0);
      const first = await sampleTime();
      await expect.poll(sampleTime, { timeout: 5000, interval: 200 }).toBeGreaterThan(first);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/msg="shutting down" signal=SIGTERM/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
