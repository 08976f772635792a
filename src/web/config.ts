import path from 'node:path';
import { parseDocument } from 'yaml';
import { parseDuration } from '../parse/duration.js';
import { errorMessage } from '../host/fs.js';
import { bcryptCost } from './basic-auth.js';

/**
 * The exporter-toolkit web configuration (`--web.config.file`), the format every Prometheus exporter
 * reads: https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md.
 * Keys are checked as strictly as the toolkit's `yaml.UnmarshalStrict`: an unknown key is an error.
 */
export interface WebConfig {
  tls: TlsServerConfig | undefined;
  /** Response headers from `http_server_config.headers`. */
  headers: Record<string, string>;
  /** User name → bcrypt hash; empty: no authentication. */
  users: Map<string, string>;
  rateLimit: { intervalSeconds: number; burst: number } | undefined;
}

export const clientAuthTypes = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof clientAuthTypes)[number];

export const tlsVersions = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;
export type TlsVersionName = keyof typeof tlsVersions;

/** Where a PEM comes from: a file (relative paths are taken from the config file's directory, as the toolkit does) or inline text. */
export type PemSource = { file: string } | { inline: string };

export interface TlsServerConfig {
  cert: PemSource;
  key: PemSource;
  clientCa: PemSource | undefined;
  clientAuth: ClientAuthType;
  clientAllowedSans: string[] | undefined;
  minVersion: TlsVersionName;
  maxVersion: TlsVersionName;
  /** OpenSSL names of the TLS 1.2 suites allowed; undefined: Node.js's defaults. */
  cipherSuites: string[] | undefined;
  /** OpenSSL curve names, in preference order. */
  curves: string[] | undefined;
  preferServerCipherSuites: boolean;
}

export class WebConfigError extends Error {}

/**
 * Go's names (crypto/tls `CipherSuites()`) → OpenSSL's. TLS 1.3 suites are accepted and, as in Go,
 * not configurable: they map to nothing.
 */
const cipherSuiteNames: Record<string, string | undefined> = {
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_AES_128_GCM_SHA256: undefined,
  TLS_AES_256_GCM_SHA384: undefined,
  TLS_CHACHA20_POLY1305_SHA256: undefined,
};

const curveNames: Record<string, string> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };

/** The only headers the toolkit lets a config set, with the values allowed where it restricts them. */
const configurableHeaders: Record<string, readonly string[] | undefined> = {
  'Strict-Transport-Security': undefined,
  'X-Content-Type-Options': ['nosniff'],
  'X-Frame-Options': ['deny', 'sameorigin'],
  'X-XSS-Protection': undefined,
  'Content-Security-Policy': undefined,
};

/** `$2a$`, `$2b$` or `$2y$`, a two-digit cost of 4–31, then 53 characters of salt and hash. */
const bcryptHash = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/**
 * The highest bcrypt cost accepted. Each step doubles the time of one check: cost 10 takes about 70 ms
 * here, 14 about a second, 31 days. Every login with a wrong password (and every unknown user, checked
 * at the highest configured cost) costs that much of the one bcrypt thread, so a higher cost is refused.
 */
export const maxBcryptCost = 14;


type Mapping = Record<string, unknown>;

const isMapping = (value: unknown): value is Mapping => typeof value === 'object' && value !== null && !Array.isArray(value);

function mapping(value: unknown, where: string, allowedKeys: readonly string[]): Mapping {
  if (value === undefined || value === null) return {};
  if (!isMapping(value)) throw new WebConfigError(`${where || 'the file'}: expected a mapping`);
  for (const key of Object.keys(value)) {
    if (!allowedKeys.includes(key)) throw new WebConfigError(`${where === '' ? '' : where + '.'}${key}: unknown key (expected one of ${allowedKeys.join(', ')})`);
  }
  return value;
}

function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new WebConfigError(`${where}: expected a string`);
  return value === '' ? undefined : value;
}

function stringList(value: unknown, where: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new WebConfigError(`${where}: expected a list of strings`);
  return value as string[];
}

function oneOf<T extends string>(value: unknown, where: string, allowed: readonly T[], fallback: T): T {
  const text = optionalString(value, where);
  if (text === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(text)) throw new WebConfigError(`${where}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`);
  return text as T;
}

function pemSource(file: unknown, inline: unknown, where: string, baseDir: string): PemSource | undefined {
  const fileName = optionalString(file, `${where}_file`);
  const text = optionalString(inline, where);
  if (fileName !== undefined && text !== undefined) throw new WebConfigError(`tls_server_config: set ${where} or ${where}_file, not both`);
  if (fileName !== undefined) return { file: path.resolve(baseDir, fileName) };
  return text === undefined ? undefined : { inline: text };
}

function parseTls(value: unknown, baseDir: string): TlsServerConfig | undefined {
  const tls = mapping(value, 'tls_server_config', [
    'cert', 'key', 'client_ca', 'cert_file', 'key_file', 'client_auth_type', 'client_ca_file', 'client_allowed_sans',
    'min_version', 'max_version', 'cipher_suites', 'prefer_server_cipher_suites', 'curve_preferences',
  ]);
  const cert = pemSource(tls['cert_file'], tls['cert'], 'cert', baseDir);
  const key = pemSource(tls['key_file'], tls['key'], 'key', baseDir);
  const clientCa = pemSource(tls['client_ca_file'], tls['client_ca'], 'client_ca', baseDir);
  const clientAuthText = optionalString(tls['client_auth_type'], 'tls_server_config.client_auth_type');
  // As the toolkit: TLS is on when any of these is set, and then a certificate and key are required.
  if (!cert && !key && !clientCa && clientAuthText === undefined) return undefined;
  if (!cert) throw new WebConfigError('tls_server_config: missing one of cert or cert_file');
  if (!key) throw new WebConfigError('tls_server_config: missing one of key or key_file');

  // `RequireClientCert` is the toolkit's old name of RequireAnyClientCert.
  const clientAuth = clientAuthText === 'RequireClientCert'
    ? 'RequireAnyClientCert'
    : oneOf(clientAuthText, 'tls_server_config.client_auth_type', clientAuthTypes, 'NoClientCert');
  if (clientCa && clientAuth === 'NoClientCert') throw new WebConfigError('tls_server_config: client CA configured without a client_auth_type');
  const clientAllowedSans = stringList(tls['client_allowed_sans'], 'tls_server_config.client_allowed_sans');
  if (clientAllowedSans && clientAuth !== 'RequireAnyClientCert' && clientAuth !== 'RequireAndVerifyClientCert') {
    throw new WebConfigError('tls_server_config.client_allowed_sans: needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert');
  }
  const versionNames = Object.keys(tlsVersions) as TlsVersionName[];
  const minVersion = oneOf(tls['min_version'], 'tls_server_config.min_version', versionNames, 'TLS12');
  const maxVersion = oneOf(tls['max_version'], 'tls_server_config.max_version', versionNames, 'TLS13');
  if (versionNames.indexOf(minVersion) > versionNames.indexOf(maxVersion)) throw new WebConfigError(`tls_server_config: min_version ${minVersion} is above max_version ${maxVersion}`);

  const cipherSuites = stringList(tls['cipher_suites'], 'tls_server_config.cipher_suites')?.flatMap((name) => {
    if (!(name in cipherSuiteNames)) throw new WebConfigError(`tls_server_config.cipher_suites: unknown cipher ${JSON.stringify(name)}`);
    const openssl = cipherSuiteNames[name];
    return openssl === undefined ? [] : [openssl];
  });
  const curves = stringList(tls['curve_preferences'], 'tls_server_config.curve_preferences')?.map((name) => {
    const openssl = curveNames[name];
    if (!openssl) throw new WebConfigError(`tls_server_config.curve_preferences: unknown curve ${JSON.stringify(name)}`);
    return openssl;
  });
  const prefer = tls['prefer_server_cipher_suites'] ?? true;
  if (typeof prefer !== 'boolean') throw new WebConfigError('tls_server_config.prefer_server_cipher_suites: expected true or false');
  return {
    cert,
    key,
    clientCa,
    clientAuth,
    clientAllowedSans,
    minVersion,
    maxVersion,
    cipherSuites: cipherSuites && cipherSuites.length > 0 ? cipherSuites : undefined,
    curves: curves && curves.length > 0 ? curves : undefined,
    preferServerCipherSuites: prefer,
  };
}

function parseHeaders(value: unknown): Record<string, string> {
  const http = mapping(value, 'http_server_config', ['http2', 'headers']);
  // HTTP/2 is a transport choice; this server speaks HTTP/1.1 only, which every Prometheus scrapes.
  if (http['http2'] !== undefined && typeof http['http2'] !== 'boolean') throw new WebConfigError('http_server_config.http2: expected true or false');
  const headers = mapping(http['headers'], 'http_server_config.headers', Object.keys(configurableHeaders));
  const result: Record<string, string> = {};
  for (const [name, headerValue] of Object.entries(headers)) {
    const text = optionalString(headerValue, `http_server_config.headers.${name}`);
    if (text === undefined) continue;
    const allowed = configurableHeaders[name];
    if (allowed && !allowed.includes(text)) throw new WebConfigError(`http_server_config.headers.${name}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`);
    result[name] = text;
  }
  return result;
}

function parseUsers(value: unknown): Map<string, string> {
  const users = new Map<string, string>();
  if (value === undefined || value === null) return users;
  if (!isMapping(value)) throw new WebConfigError('basic_auth_users: expected a mapping of user name to bcrypt hash');
  for (const [user, hash] of Object.entries(value)) {
    if (typeof hash !== 'string' || !bcryptHash.test(hash)) {
      throw new WebConfigError(`basic_auth_users.${user}: not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31; e.g. htpasswd -nBC 10 "" | tr -d ':\\n')`);
    }
    if (bcryptCost(hash) > maxBcryptCost) {
      throw new WebConfigError(`basic_auth_users.${user}: bcrypt cost ${bcryptCost(hash)} is above ${maxBcryptCost} (each check would take over a second); hash the password again, e.g. with htpasswd -nBC 10`);
    }
    users.set(user, hash);
  }
  return users;
}

function parseRateLimit(value: unknown): WebConfig['rateLimit'] {
  const limit = mapping(value, 'rate_limit', ['interval', 'burst']);
  const interval = limit['interval'];
  if (interval === undefined || interval === null || interval === 0 || interval === '0') return undefined;
  let intervalSeconds: number;
  try {
    if (typeof interval !== 'string') throw new Error('expected a duration such as 1s');
    intervalSeconds = parseDuration(interval);
  } catch (error) {
    throw new WebConfigError(`rate_limit.interval: ${errorMessage(error)}`);
  }
  const burst = limit['burst'] ?? 0;
  if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 0) throw new WebConfigError('rate_limit.burst: expected a whole number');
  return intervalSeconds > 0 ? { intervalSeconds, burst } : undefined;
}

/** Parses the YAML text of a web config file; `baseDir` resolves relative file names. */
export function parseWebConfig(text: string, baseDir: string): WebConfig {
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  const problem = document.errors[0];
  if (problem) throw new WebConfigError(`not valid YAML: ${problem.message.split('\n')[0]}`);
  const root = mapping(document.toJS() as unknown, '', ['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit']);
  return {
    tls: parseTls(root['tls_server_config'], baseDir),
    headers: parseHeaders(root['http_server_config']),
    users: parseUsers(root['basic_auth_users']),
    rateLimit: parseRateLimit(root['rate_limit']),
  };
}
