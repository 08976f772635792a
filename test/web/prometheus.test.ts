import bcrypt from 'bcryptjs';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter.js';
import { silentLogger } from '../../src/log.js';
import { makeCertificates, type TestCertificates } from '../helpers/certs.js';
import { configFor, findBinary, fixtureFlags } from '../helpers/fixtures.js';
import { freePort } from '../helpers/ports.js';

let certs: TestCertificates;
let exporter: RunningExporter;
let prometheus: ChildProcess;
let prometheusPort: number;
let dir: string;
let prometheusLog = '';

beforeAll(async () => {
  certs = makeCertificates();
  dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-prometheus-'));
  const webConfig = path.join(dir, 'web.yml');
  writeFileSync(webConfig, [
    'tls_server_config:',
    `  cert_file: ${certs.serverCert}`,
    `  key_file: ${certs.serverKey}`,
    'basic_auth_users:',
    `  prometheus: ${bcrypt.hashSync('scrape-secret', 4)}`,
    '',
  ].join('\n'));
  exporter = await startExporter(configFor([...fixtureFlags('suprox'), '--web.listen-address=127.0.0.1:0', `--web.config.file=${webConfig}`]), silentLogger);

  prometheusPort = await freePort();
  writeFileSync(path.join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    '  - job_name: vfio',
    '    scheme: https',
    '    tls_config:',
    `      ca_file: ${certs.caCert}`,
    '    basic_auth:',
    '      username: prometheus',
    '      password: scrape-secret',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${exporter.port}']`,
    '',
  ].join('\n'));
  prometheus = spawn(findBinary('prometheus'), [
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${prometheusPort}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  prometheus.stderr!.on('data', (chunk: Buffer) => (prometheusLog += chunk.toString()));
});

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await exporter?.close();
  certs?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(expression: string): Promise<VectorSample[]> {
  const response = await fetch(`http://127.0.0.1:${prometheusPort}/api/v1/query?query=${encodeURIComponent(expression)}`);
  const body = (await response.json()) as { status: string; data: { result: VectorSample[] } };
  return body.data.result;
}

/** Polls a query until it returns series, for at most `seconds`. */
async function eventually(expression: string, seconds: number): Promise<VectorSample[]> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      const result = await query(expression);
      if (result.length > 0) return result;
    } catch {
      // Prometheus is still starting.
    }
    if (Date.now() > deadline) throw new Error(`no result for ${expression} within ${seconds}s; prometheus log:\n${prometheusLog.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('Prometheus scraping over TLS with basic auth', () => {
  it('sees the target up and its vfio_ series', async () => {
    // Polls until a scrape succeeded; a refused scrape (up 0) keeps it waiting until the deadline fails the test.
    const up = await eventually('up{job="vfio"} == 1', 30);
    expect(up[0]!.metric['instance']).toBe(`127.0.0.1:${exporter.port}`);
    const viable = await eventually('vfio_iommu_group_viable{iommu_group="7"}', 10);
    expect(viable[0]!.value[1]).toBe('1');
  });
});
