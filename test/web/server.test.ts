import bcrypt from 'bcryptjs';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import type { SecureVersion } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter.js';
import { silentLogger } from '../../src/log.js';
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

    // A file gone bad refuses new connections rather than serving on stale settings.
    writeFileSync(configFile(), `${mutual()}  bogus: 1\n`);
    await expect(get(port, { cert: certs.clientCert, key: certs.clientKey })).rejects.toThrow();
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
