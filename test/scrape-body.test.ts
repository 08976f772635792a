import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Gauge, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScrapeBodies, prefersGzip, processMetricsMaxAgeMs } from '../src/metrics/scrape-body.js';
import { createApp } from '../src/server.js';
import request from 'supertest';
import { makeSample, type Sample } from '../src/sampler.js';
import { findBinary, fixtureFlags, memoryLogger, sampledApp } from './helpers/fixtures.js';

const run = promisify(execFile);
const sampleOf = (text: string): Sample => makeSample({ takenAtMs: 0, outcomes: [], facts: {} }, [Buffer.from(text)]);

describe('/metrics bodies', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const { app } = await sampledApp(fixtureFlags('suprox'));
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('curl --compressed gets one gzip stream with exactly the plain text', async () => {
    const curl = findBinary('curl');
    // Within the process metrics' reuse window both answers carry the same process text.
    const [plain, compressed, headers] = await Promise.all([
      run(curl, ['-sS', '--fail', '--max-time', '10', url]),
      run(curl, ['-sS', '--fail', '--max-time', '10', '--compressed', url]),
      run(curl, ['-sS', '--fail', '--max-time', '10', '-o', '/dev/null', '-D', '-', '-H', 'Accept-Encoding: gzip', url]),
    ]);
    expect(plain.stdout).toContain('vfio_pci_device_driver_info{pci_address="0000:00:17.0",driver="vfio-pci"} 1');
    expect(plain.stdout).toMatch(/^process_resident_memory_bytes \d+$/m);
    expect(compressed.stdout).toBe(plain.stdout);
    expect(headers.stdout).toMatch(/^content-encoding: gzip\r$/im);
    expect(headers.stdout).toMatch(/^vary: accept-encoding\r$/im);
  });

  it('answers in plain text to a scraper that does not take gzip', async () => {
    const { stdout } = await run(findBinary('curl'), ['-sS', '--fail', '--max-time', '10', '-D', '-', '-H', 'Accept-Encoding: identity', url]);
    expect(stdout).not.toMatch(/^content-encoding:/im);
    expect(stdout).toContain('vfio_iommu_enabled 1');
  });
});

describe('scrape body cache', () => {
  it('renders the process metrics at most once per window, then again', async () => {
    const registry = new Registry();
    let renders = 0;
    new Gauge({
      name: 'test_renders',
      help: 'Times collected.',
      registers: [registry],
      collect() {
        this.set(++renders);
      },
    });
    let clock = 1_000_000;
    const bodies = createScrapeBodies(registry, () => clock);
    const sample = sampleOf('vfio_x 1\n');
    const text = async (gzip: boolean): Promise<string> => {
      const body = Buffer.concat(await bodies(sample, gzip));
      return (gzip ? gunzipSync(body) : body).toString();
    };
    expect(await text(false)).toContain('vfio_x 1\n# HELP test_renders');
    expect(await text(true)).toContain('test_renders 1');
    clock += processMetricsMaxAgeMs - 1;
    expect(await text(false)).toContain('test_renders 1');
    clock += 1;
    expect(await text(true)).toBe(await text(false));
    expect(await text(false)).toContain('test_renders 2');
    expect(renders).toBe(2);
  });

  it('does not keep a failed process render', async () => {
    const registry = new Registry();
    let fail = true;
    new Gauge({
      name: 'test_flaky',
      help: 'Fails once.',
      registers: [registry],
      collect() {
        if (fail) throw new Error('collect failed');
        this.set(1);
      },
    });
    const bodies = createScrapeBodies(registry, () => 0);
    await expect(bodies(sampleOf('vfio_x 1\n'), false)).rejects.toThrow('collect failed');
    fail = false;
    expect(Buffer.concat(await bodies(sampleOf('vfio_x 1\n'), false)).toString()).toContain('test_flaky 1');
  });

  it('compresses each chunk once: a block unchanged since the last sample is not compressed again', async () => {
    const registry = new Registry();
    const bodies = createScrapeBodies(registry);
    const pciBlock = Buffer.from('vfio_pci_device_vfio_bound{pci_address="0000:00:17.0"} 1\n'.repeat(2000));
    const first = makeSample({ takenAtMs: 0, outcomes: [], facts: {} }, [pciBlock, Buffer.from('\n'), Buffer.from('vfio_last_sample_timestamp_seconds 1\n')]);
    const second = makeSample({ takenAtMs: 0, outcomes: [], facts: {} }, [pciBlock, Buffer.from('\n'), Buffer.from('vfio_last_sample_timestamp_seconds 2\n')]);
    const [firstBody, secondBody] = [await bodies(first, true), await bodies(second, true)];
    expect(secondBody[1]).toBe(firstBody[1]);
    expect(secondBody[3]).not.toBe(firstBody[3]);
    const processText = await registry.metrics();
    expect(gunzipSync(Buffer.concat(firstBody)).toString()).toBe(first.text + processText);
    expect(gunzipSync(Buffer.concat(secondBody)).toString()).toBe(second.text + processText);
    expect(Buffer.concat(await bodies(second, false)).toString()).toBe(second.text + processText);
  });

  it('gzips an empty snapshot (before the first sample) to the process text alone', async () => {
    const registry = new Registry();
    const bodies = createScrapeBodies(registry);
    expect(gunzipSync(Buffer.concat(await bodies(undefined, true))).toString()).toBe(await registry.metrics());
  });
});

describe('/metrics requests', () => {
  it('takes gzip when the scraper takes it at least as gladly as plain text', () => {
    expect(prefersGzip('gzip')).toBe(true); // Prometheus
    expect(prefersGzip('deflate, gzip, br, zstd')).toBe(true); // curl --compressed
    expect(prefersGzip('*')).toBe(true);
    expect(prefersGzip(undefined)).toBe(false);
    expect(prefersGzip('identity')).toBe(false);
    expect(prefersGzip('gzip;q=0')).toBe(false);
    expect(prefersGzip('gzip;q=0.5, identity')).toBe(false);
    expect(prefersGzip('gzip;q=0.5, identity;q=0.1')).toBe(true);
    expect(prefersGzip('br')).toBe(false);
  });

  it('answers HEAD and a query string like GET, a trailing slash with 404, and a failing render with a 500 and a log line', async () => {
    const { app } = await sampledApp(fixtureFlags('suprox'));
    const head = await request(app).head('/metrics').expect(200);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(1000);
    expect((await request(app).get('/metrics?debug=1').expect(200)).text).toContain('vfio_iommu_enabled 1');
    await request(app).get('/metrics/').expect(404);

    const registry = new Registry();
    new Gauge({
      name: 'test_broken',
      help: 'Always fails.',
      registers: [registry],
      collect() {
        throw new Error('collect failed');
      },
    });
    const { log, lines } = memoryLogger();
    const broken = createApp({ telemetryPath: '/metrics', latest: () => sampleOf('vfio_x 1\n'), processRegistry: registry, log, hostReserveBytes: 0 });
    expect((await request(broken).get('/metrics').expect(500)).text).toBe('internal error\n');
    expect(lines).toEqual([expect.stringMatching(/^error request failed .*"path":"\/metrics".*collect failed/)]);
  });
});
