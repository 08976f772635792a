import { spawn, execFileSync } from 'node:child_process';
import { rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createSampler } from '../src/exporter.js';
import { configFor, memoryLogger, repoRoot, fixtureFlags } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';
import { fuseAvailable, hangingMount } from './helpers/hanging-fs.js';
import { createApp } from '../src/server.js';
import { Registry } from 'prom-client';

describe('sampler', () => {
  it.skipIf(!fuseAvailable)('a collector stuck on a hung read fails alone, by its deadline, and is not started twice', async () => {
    const { root, flags } = copyHost('suprox');
    const mount = await hangingMount();
    const meminfo = path.join(root, 'proc/meminfo');
    rmSync(meminfo);
    symlinkSync(path.join(mount.dir, 'meminfo'), meminfo);
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
      expect(second.snapshot.outcomes.find((outcome) => outcome.name === 'memory')!.errors).toEqual([expect.stringContaining('previous run still has not finished')]);
      expect(mount.reads).toEqual(['/meminfo']);

      const app = createApp({ telemetryPath: '/metrics', latest: () => sampler.latest, processRegistry: new Registry(), log, hostReserveBytes: 0 });
      await request(app).get('/metrics').expect(200);
    } finally {
      // Killing the filesystem fails the held read, and its pool thread returns.
      await mount.close();
      await sampler.stop();
    }
  });

  it('a FIFO in place of a host file is refused at once, never waited on', async () => {
    const { root, flags } = copyHost('suprox');
    for (const file of ['proc/meminfo', 'sys/devices/pci0000:00/0000:00:17.0/vendor', 'proc/1432/status']) {
      rmSync(path.join(root, file));
      execFileSync('mkfifo', [path.join(root, file)]);
    }
    const sampler = createSampler(configFor([...flags, '--sample.timeout=5s']), memoryLogger().log);
    const started = performance.now();
    const { snapshot } = await sampler.sample();
    expect(performance.now() - started).toBeLessThan(2000);
    const errors = (name: string): string => snapshot.outcomes.find((outcome) => outcome.name === name)!.errors.join('\n');
    expect(errors('memory')).toMatch(/meminfo: not a regular file/);
    expect(errors('pci')).toMatch(/0000:00:17\.0: .*vendor: not a regular file/);
    expect(errors('vm')).toMatch(/1432\/status: not a regular file/);
    await sampler.stop();
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
