import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseWebConfig, WebConfigError } from '../../src/web/config.js';
import { repoRoot } from '../helpers/fixtures.js';

// The toolkit's own sample (docs/web-config.yml), less its rate limit.
const toolkitSample = `
tls_server_config:
  cert_file: server.crt
  key_file: server.key
basic_auth_users:
  alice: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze
  bob: $2y$10$hLqFl9jSjoAAy95Z/zw8Ye8wkdMBM8c5Bn1ptYqP/AXyV0.oy0S8m
`;

const parse = (text: string) => parseWebConfig(text, '/etc/vfio-exporter');
const failure = (text: string): string => {
  try {
    parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(WebConfigError);
    return (error as Error).message;
  }
  throw new Error('parsed without error');
};

describe('web config file', () => {
  it('reads the toolkit sample, resolving files next to the config', () => {
    const config = parse(toolkitSample);
    expect(config.tls).toMatchObject({
      cert: { file: '/etc/vfio-exporter/server.crt' },
      key: { file: '/etc/vfio-exporter/server.key' },
      clientAuth: 'NoClientCert',
      minVersion: 'TLS12',
      maxVersion: 'TLS13',
      preferServerCipherSuites: true,
    });
    expect([...config.users.keys()]).toEqual(['alice', 'bob']);
    expect(config.headers).toEqual({});
    expect(config.rateLimit).toBeUndefined();
  });

  it('reads the example the README gives', () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const example = /## Security\n[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)![1]!;
    const config = parse(example);
    expect(config.tls).toMatchObject({ cert: { file: '/etc/vfio-exporter/tls.crt' }, minVersion: 'TLS12', clientAuth: 'NoClientCert' });
    expect([...config.users.keys()]).toEqual(['prometheus']);
    expect(config.headers).toEqual({ 'Strict-Transport-Security': 'max-age=31536000' });
  });

  it('means plain HTTP without TLS keys, and no auth without users', () => {
    expect(parse('')).toEqual({ tls: undefined, headers: {}, users: new Map(), rateLimit: undefined });
    expect(parse('basic_auth_users: {}\n').users.size).toBe(0);
  });

  it('refuses unknown keys, naming them', () => {
    expect(failure('tls_server_confg: {}\n')).toMatch(/^tls_server_confg: unknown key/);
    expect(failure('tls_server_config:\n  cert_file: a\n  key_file: b\n  min_versoin: TLS13\n')).toMatch(/^tls_server_config\.min_versoin: unknown key/);
    expect(failure('http_server_config:\n  headers:\n    X-Custom: 1\n')).toMatch(/http_server_config\.headers\.X-Custom: unknown key/);
  });

  it('accepts $2a$, $2b$ and $2y$ bcrypt hashes and nothing else', () => {
    const salted = '$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze';
    for (const prefix of ['$2a', '$2b', '$2y']) expect(parse(`basic_auth_users:\n  u: ${prefix}${salted}\n`).users.get('u')).toBe(prefix + salted);
    expect(failure('basic_auth_users:\n  alice: hunter2\n')).toMatch(/^basic_auth_users\.alice: not a bcrypt hash/);
    expect(failure(`basic_auth_users:\n  alice: $2x${salted}\n`)).toMatch(/not a bcrypt hash/);
    expect(failure('basic_auth_users:\n  alice: $2y$03$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze\n')).toMatch(/not a bcrypt hash/);
  });

  it('refuses bcrypt costs above 14, which would stall logins for seconds', () => {
    const salted = 'mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze';
    expect(parse(`basic_auth_users:\n  u: $2b$14$${salted}\n`).users.size).toBe(1);
    for (const cost of ['15', '20', '31']) {
      expect(failure(`basic_auth_users:\n  alice: $2b$${cost}$${salted}\n`)).toBe(
        `basic_auth_users.alice: bcrypt cost ${Number(cost)} is above 14 (each check would take over a second); hash the password again, e.g. with htpasswd -nBC 10`,
      );
    }
  });

  it('reports bad YAML in one line', () => {
    const message = failure('tls_server_config:\n  cert_file: [unclosed\n');
    expect(message).toMatch(/^not valid YAML: /);
    expect(message).not.toContain('\n');
    expect(failure('a: 1\na: 2\n')).toMatch(/not valid YAML/);
    expect(failure('- tls_server_config\n')).toBe('the file: expected a mapping');
  });

  it('needs both a certificate and a key once any TLS key is set', () => {
    expect(failure('tls_server_config:\n  cert_file: a.crt\n')).toBe('tls_server_config: missing one of key or key_file');
    expect(failure('tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n')).toBe('tls_server_config: missing one of cert or cert_file');
    expect(failure('tls_server_config:\n  cert_file: a\n  cert: inline\n  key_file: b\n')).toMatch(/set cert or cert_file, not both/);
  });

  it('checks client authentication as the toolkit does', () => {
    const tls = (extra: string) => parse(`tls_server_config:\n  cert_file: a\n  key_file: b\n${extra}`).tls!;
    expect(tls('  client_auth_type: RequireClientCert\n').clientAuth).toBe('RequireAnyClientCert');
    expect(tls('  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: /ca.crt\n')).toMatchObject({ clientAuth: 'RequireAndVerifyClientCert', clientCa: { file: '/ca.crt' } });
    expect(failure('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca.crt\n')).toMatch(/client CA configured without a client_auth_type/);
    expect(failure('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Maybe\n')).toMatch(/client_auth_type: expected one of NoClientCert/);
    expect(failure('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_sans: [x]\n')).toMatch(/client_allowed_sans: needs client_auth_type/);
  });

  it('maps TLS versions, Go cipher suite and curve names to OpenSSL', () => {
    const tls = parse(
      'tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: false\n',
    ).tls!;
    expect(tls).toMatchObject({ minVersion: 'TLS13', maxVersion: 'TLS13', cipherSuites: ['ECDHE-RSA-AES128-GCM-SHA256'], curves: ['X25519', 'P-256'], preferServerCipherSuites: false });
    expect(failure('tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n')).toMatch(/min_version: expected one of TLS10, TLS11, TLS12, TLS13, got "TLS14"/);
    expect(failure('tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n')).toMatch(/min_version TLS13 is above max_version TLS12/);
    expect(failure('tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n')).toMatch(/unknown cipher/);
    expect(failure('tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [CurveP224]\n')).toMatch(/unknown curve/);
  });

  it('allows only the toolkit headers, with their fixed values', () => {
    expect(parse('http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n').headers).toEqual({
      'X-Frame-Options': 'deny',
      'Strict-Transport-Security': 'max-age=31536000',
    });
    expect(failure('http_server_config:\n  headers:\n    X-Frame-Options: allow\n')).toMatch(/X-Frame-Options: expected one of deny, sameorigin/);
  });

  it('reads a rate limit, 0 meaning none', () => {
    expect(parse('rate_limit:\n  interval: 1s\n  burst: 20\n').rateLimit).toEqual({ intervalSeconds: 1, burst: 20 });
    expect(parse('rate_limit:\n  interval: 0\n  burst: 20\n').rateLimit).toBeUndefined();
    expect(failure('rate_limit:\n  interval: often\n')).toMatch(/rate_limit.interval: not a duration/);
  });
});
