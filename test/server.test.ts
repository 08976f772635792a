import { Registry } from 'prom-client';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { makeSample, type Sample } from '../src/sampler.js';
import { createApp } from '../src/server.js';
import { configFor, fixtureFlags, sampledApp } from './helpers/fixtures.js';
import { createSampler } from '../src/exporter.js';

describe('web endpoints', () => {
  it('is healthy at once and ready only after the first sample', async () => {
    const state: { sample?: Sample } = {};
    const app = createApp({ telemetryPath: '/metrics', latest: () => state.sample, processRegistry: new Registry(), log: silentLogger, hostReserveBytes: 1024 ** 3 });
    await request(app).get('/-/healthy').expect(200, 'vfio-exporter is Healthy.\n');
    await request(app).get('/-/ready').expect(503);
    state.sample = makeSample({ takenAtMs: 0, outcomes: [], facts: {} }, [Buffer.from('vfio_x 1\n')]);
    await request(app).get('/-/ready').expect(200);
    expect((await request(app).get('/metrics').expect(200)).text.startsWith('vfio_x 1\n')).toBe(true);
  });

  it('serves a landing page linking the telemetry path, and 404 elsewhere', async () => {
    const { app } = await sampledApp([...fixtureFlags('suprox'), '--web.telemetry-path=/probe']);
    const landing = await request(app).get('/').expect(200);
    expect(landing.text).toContain('<a href="/probe">Metrics</a>');
    expect(landing.text).toContain('<h2>PCI devices (27)</h2>');
    await request(app).get('/probe').expect(200);
    const missing = await request(app).get('/metrics').expect(404);
    expect(missing.text).toBe('404 page not found\n');
    await request(app).post('/probe').send('x').expect(404);
  });

  it('serves only the documented paths, spelt exactly', async () => {
    const { app } = await sampledApp(fixtureFlags('suprox'));
    for (const path of ['/', '/metrics', '/metrics?x=1', '/-/healthy', '/-/ready']) await request(app).get(path).expect(200);
    for (const path of ['/METRICS', '/Metrics', '/metrics/', '/metrics//', '/-/HEALTHY', '/-/healthy/', '/-/Ready', '/-/ready/', '//', '/index.html']) {
      const response = await request(app).get(path);
      expect(response.status, path).toBe(404);
      expect(response.text, path).toBe('404 page not found\n');
    }
  });

  it('serves the previous snapshot while a sample is running', async () => {
    const sampler = createSampler(configFor(fixtureFlags('suprox')), silentLogger);
    const first = await sampler.sample();
    const app = createApp({ telemetryPath: '/metrics', latest: () => sampler.latest, processRegistry: new Registry(), log: silentLogger, hostReserveBytes: 1024 ** 3 });
    const running = sampler.sample();
    expect(sampler.sample()).toBe(running);
    const during = await request(app).get('/metrics').expect(200);
    expect(during.text.startsWith(first.text)).toBe(true);
    const second = await running;
    expect(second.snapshot.takenAtMs).toBeGreaterThanOrEqual(first.snapshot.takenAtMs);
    expect((await request(app).get('/metrics')).text.startsWith(second.text)).toBe(true);
  });
});
