import bcrypt from 'bcryptjs';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import type { SecureVersion } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { serverLimits } from '../../src/web/listen.js';
import { makeCertificates, type TestCertificates } from '../helpers/certs.js';
import { configFor, fixtureFlags, repoRoot } from '../helpers/fixtures.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  protocol: string | null;
}

interface ClientOptions {
  path?: string;
  auth?: string;
  cert?: string;
  key?: string;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  headers?: Record<string, string>;
}

let certs: TestCertificates;
let exporter: RunningExporter | undefined;
const password = 'correct horse';
const hash = bcrypt.hashSync(password, 4);

beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.remove());
afterEach(async () => {
  await exporter?.close();
  exporter = undefined;
});

const configFile = (): string => path.join(certs.dir, 'web.yml');

async function start(yaml: string): Promise<number> {
  writeFileSync(configFile(), yaml);
  exporter = await startExporter(configFor([...fixtureFlags('suprox'), '--web.listen-address=127.0.0.1:0', `--web.config.file=${configFile()}`]), silentLogger);
  await exporter.sampler.sample();
  return exporter.port;
}

/** One HTTPS request on a new connection, trusting only the test CA. */
function get(port: number, options: ClientOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/metrics',
        agent: false,
        ca: readFileSync(certs.caCert),
        ...(options.cert ? { cert: readFileSync(options.cert), key: readFileSync(options.key!) } : {}),
        ...(options.auth ? { auth: options.auth } : {}),
        minVersion: options.minVersion ?? 'TLSv1.2',
        maxVersion: options.maxVersion ?? 'TLSv1.3',
        headers: options.headers ?? {},
        timeout: 5000,
      },
      (response) => {
        const protocol = (response.socket as import('node:tls').TLSSocket).getProtocol();
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body, protocol }));
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
    request.end();
  });
}

const tlsOnly = () => `tls_server_config:\n  cert_file: ${certs.serverCert}\n  key_file: ${certs.serverKey}\n`;
const mutual = () => `${tlsOnly()}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${certs.caCert}\n`;

describe('TLS and basic auth (--web.config.file)', () => {
  it('serves metrics over TLS to the right user only', async () => {
    const port = await start(`${tlsOnly()}basic_auth_users:\n  prometheus: ${hash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n`);
    const good = await get(port, { auth: `prometheus:${password}` });
    expect(good.status).toBe(200);
    expect(good.body).toContain('vfio_exporter_build_info');
    expect(good.headers['x-frame-options']).toBe('deny');

    for (const auth of [`prometheus:wrong`, `nobody:${password}`, undefined]) {
      const refused = await get(port, { ...(auth ? { auth } : {}) });
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toBe('Basic');
      expect(refused.body).toBe('Unauthorized\n');
    }
    // The toolkit guards every path, the health check included.
    expect((await get(port, { path: '/-/healthy' })).status).toBe(401);
    expect((await get(port, { path: '/nothing', auth: `prometheus:${password}` })).status).toBe(404);
  });

  it('picks up new users and certificates without a restart', async () => {
    const port = await start(`${tlsOnly()}basic_auth_users:\n  prometheus: ${hash}\n`);
    expect((await get(port, { auth: `prometheus:${password}` })).status).toBe(200);
    const otherHash = bcrypt.hashSync('second', 4).replace(/^\$2b/, '$2y');
    writeFileSync(configFile(), `${tlsOnly()}basic_auth_users:\n  grafana: ${otherHash}\n`);
    expect((await get(port, { auth: `prometheus:${password}` })).status).toBe(401);
    expect((await get(port, { auth: 'grafana:second' })).status).toBe(200);

    // Turning on client certificates applies to the next connection.
    writeFileSync(configFile(), mutual());
    await expect(get(port)).rejects.toThrow();
    expect((await get(port, { cert: certs.clientCert, key: certs.clientKey })).status).toBe(200);

    // A file gone bad leaves the last good settings in force: client certificates still required.
    writeFileSync(configFile(), `${mutual()}  bogus: 1\n`);
    expect((await get(port, { cert: certs.clientCert, key: certs.clientKey })).status).toBe(200);
    await expect(get(port)).rejects.toThrow();
    // Switching TLS off needs a restart: the file is refused, TLS stays.
    writeFileSync(configFile(), `basic_auth_users:\n  prometheus: ${hash}\n`);
    expect((await get(port, { cert: certs.clientCert, key: certs.clientKey })).status).toBe(200);
  });

  it('requires a client certificate from the configured CA (mutual TLS)', async () => {
    const port = await start(mutual());
    const accepted = await get(port, { cert: certs.clientCert, key: certs.clientKey });
    expect(accepted.status).toBe(200);
    await expect(get(port)).rejects.toThrow(/certificate required|ECONNRESET|socket hang up/);
    await expect(get(port, { cert: certs.rogueCert, key: certs.rogueKey })).rejects.toThrow();
    await expect(get(port, { cert: certs.rogueCert, key: certs.rogueKey, maxVersion: 'TLSv1.2' })).rejects.toThrow();
  });

  it('checks client certificate SANs against client_allowed_sans', async () => {
    const port = await start(`${mutual()}  client_allowed_sans: [grafana.example]\n`);
    await expect(get(port, { cert: certs.clientCert, key: certs.clientKey })).rejects.toThrow();
    writeFileSync(configFile(), `${mutual()}  client_allowed_sans: [prometheus.example]\n`);
    expect((await get(port, { cert: certs.clientCert, key: certs.clientKey })).status).toBe(200);
  });

  it('holds TLS versions to min_version and max_version', async () => {
    const port = await start(`${tlsOnly()}  min_version: TLS13\n`);
    expect((await get(port)).protocol).toBe('TLSv1.3');
    await expect(get(port, { maxVersion: 'TLSv1.2' })).rejects.toThrow(/protocol version|alert/);

    writeFileSync(configFile(), `${tlsOnly()}  max_version: TLS12\n`);
    expect((await get(port)).protocol).toBe('TLSv1.2');
    await expect(get(port, { minVersion: 'TLSv1.3' })).rejects.toThrow(/protocol version|alert/);
  });

  it('bounds request headers and refuses request bodies', async () => {
    const port = await start(tlsOnly());
    expect((await get(port, { headers: { 'X-Padding': 'x'.repeat(16 * 1024) } })).status).toBe(431);
    const post = await new Promise<number>((resolve, reject) => {
      const request = https.request({ host: '127.0.0.1', port, path: '/metrics', method: 'POST', ca: readFileSync(certs.caCert), agent: false }, (response) => {
        response.resume();
        resolve(response.statusCode!);
      });
      request.on('error', reject);
      request.end('x'.repeat(1024));
    });
    expect(post).toBe(413);
  });
});

describe('a web config file that goes bad while running', () => {
  const lines: string[] = [];
  const logger = createLogger('info', 'logfmt', (line) => lines.push(line));
  const plainGet = async (port: number, auth?: string): Promise<{ status: number; body: string }> => {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: auth ? { Authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {} });
    return { status: response.status, body: await response.text() };
  };
  const reloadMetrics = (body: string): { successful: number; timestamp: number } => ({
    successful: Number(/^vfio_exporter_web_config_last_reload_successful (\S+)$/m.exec(body)?.[1]),
    timestamp: Number(/^vfio_exporter_web_config_last_reload_success_timestamp_seconds (\S+)$/m.exec(body)?.[1]),
  });

  it('keeps the last good config in force, logs the failure and reports it', async () => {
    writeFileSync(configFile(), `basic_auth_users:\n  prometheus: ${hash}\n`);
    exporter = await startExporter(configFor([...fixtureFlags('suprox'), '--web.listen-address=127.0.0.1:0', `--web.config.file=${configFile()}`]), logger);
    await exporter.sampler.sample();
    const port = exporter.port;
    const good = await plainGet(port, `prometheus:${password}`);
    expect(good.status).toBe(200);
    const before = reloadMetrics(good.body);
    expect(before.successful).toBe(1);
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    for (const name of ['vfio_exporter_web_config_last_reload_successful', 'vfio_exporter_web_config_last_reload_success_timestamp_seconds']) {
      expect(readme).toContain(`| \`${name}\` | gauge`);
    }
    expect(before.timestamp).toBeGreaterThan(Date.now() / 1000 - 60);

    // An empty file (a write caught half-way), bad YAML, an unknown key, a file gone: basic auth stays on.
    for (const broken of ['', 'basic_auth_users: [\n', 'basic_auth_users:\n  prometheus: plaintext\n', undefined]) {
      lines.length = 0;
      if (broken === undefined) rmSync(configFile());
      else writeFileSync(configFile(), broken);
      expect((await plainGet(port)).status, JSON.stringify(broken)).toBe(401);
      expect((await plainGet(port, 'prometheus:wrong')).status).toBe(401);
      // Process metrics are rendered at most once a second (processMetricsMaxAgeMs).
      await vi.waitFor(async () => {
        const served = await plainGet(port, `prometheus:${password}`);
        expect(served.status).toBe(200);
        expect(reloadMetrics(served.body)).toEqual({ successful: 0, timestamp: before.timestamp });
      }, { timeout: 3000, interval: 200 });
      // Logged once per change of the file, not per request.
      expect(lines.filter((line) => line.includes('web config reload failed'))).toHaveLength(1);
      expect(lines.find((line) => line.includes('web config reload failed'))).toMatch(/level=error .*keeping the last good config.*err=/);
    }

    const otherHash = bcrypt.hashSync('second', 4);
    writeFileSync(configFile(), `basic_auth_users:\n  grafana: ${otherHash}\n`);
    expect((await plainGet(port, `prometheus:${password}`)).status).toBe(401);
    await vi.waitFor(async () => {
      const fixed = await plainGet(port, 'grafana:second');
      expect(fixed.status).toBe(200);
      expect(reloadMetrics(fixed.body).successful).toBe(1);
      expect(reloadMetrics(fixed.body).timestamp).toBeGreaterThan(before.timestamp);
    }, { timeout: 3000, interval: 200 });
  });
});

describe('slow clients', () => {
  it('are cut when the README says: headers not sent within the documented time', async () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const documentedSeconds = Number(/headers must arrive within (\d+) s/.exec(readme)?.[1]);
    expect(documentedSeconds * 1000).toBe(serverLimits.headersTimeout);
    exporter = await startExporter(configFor([...fixtureFlags('suprox'), '--web.listen-address=127.0.0.1:0']), silentLogger);
    // A client that trickles a header line every half second and never ends its headers.
    const cutAfterMs = await new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const socket = net.connect(exporter!.port, '127.0.0.1', () => socket.write('GET /metrics HTTP/1.1\r\nHost: exporter\r\n'));
      const trickle = setInterval(() => socket.write('X-Slow: 1\r\n'), 500);
      const giveUp = setTimeout(() => socket.destroy(new Error('still connected after 20 s')), 20_000);
      socket.on('data', () => undefined);
      socket.on('error', reject);
      socket.on('close', () => {
        clearInterval(trickle);
        clearTimeout(giveUp);
        resolve(performance.now() - started);
      });
    });
    expect(cutAfterMs).toBeGreaterThan(serverLimits.headersTimeout - 500);
    expect(cutAfterMs).toBeLessThan(serverLimits.headersTimeout + 2000);
  }, 30_000);
});

describe('a bad web config file at start', () => {
  const startWith = async (yaml: string): Promise<string> => {
    writeFileSync(configFile(), yaml);
    try {
      exporter = await startExporter(configFor([...fixtureFlags('suprox'), '--web.listen-address=127.0.0.1:0', `--web.config.file=${configFile()}`]), silentLogger);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('started');
  };

  it('stops the exporter with the reason', async () => {
    expect(await startWith('basic_auth_users:\n  alice: plaintext\n')).toMatch(/web\.yml: basic_auth_users\.alice: not a bcrypt hash/);
    expect(await startWith(`tls_server_config:\n  cert_file: ${certs.serverCert}\n  key_file: /nonexistent/server.key\n`)).toMatch(
      /tls_server_config\.key_file: ENOENT: no such file or directory/,
    );
    expect(await startWith(`tls_server_config:\n  cert_file: ${certs.serverCert}\n  key_file: ${certs.clientKey}\n`)).toMatch(/cannot use the certificate and key/);
    expect(await startWith('tls_server_config:\n  certfile: x\n')).toMatch(/tls_server_config\.certfile: unknown key/);
    expect(await startWith('basic_auth_users: [\n')).toMatch(/not valid YAML/);
  });
});

describe('the binary with a bad web config file', () => {
  it('exits 1 with one line on stderr', () => {
    writeFileSync(configFile(), 'basic_auth_users:\n  alice: hunter2\n');
    const run = spawnSync(path.join(repoRoot, 'node_modules/.bin/tsx'), [path.join(repoRoot, 'src/main.ts'), ...fixtureFlags('suprox'), '--web.listen-address=127.0.0.1:0', `--web.config.file=${configFile()}`], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^vfio-exporter: --web\.config\.file \S+web\.yml: basic_auth_users\.alice: not a bcrypt hash .*\n$/);
    expect(run.stdout).toBe('');
  });
});
