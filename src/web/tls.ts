import tls, { type SecureContextOptions, type TLSSocket } from 'node:tls';
import { errorMessage, readRegularFileSync } from '../host/fs.js';
import { tlsVersions, WebConfigError, type ClientAuthType, type PemSource, type TlsServerConfig } from './config.js';

/** What a TLS server needs for new connections, with every file already read. */
export interface TlsSettings {
  context: SecureContextOptions;
  /** Ask the client for a certificate. */
  requestCert: boolean;
  /** Let OpenSSL refuse a missing or unverified client certificate during the handshake. */
  rejectUnauthorized: boolean;
  clientAuth: ClientAuthType;
  clientAllowedSans: string[] | undefined;
}

/** Files a TLS config reads; a change to any of them reloads the config. */
export const tlsFiles = (config: TlsServerConfig): string[] =>
  [config.cert, config.key, config.clientCa].flatMap((source) => (source && 'file' in source ? [source.file] : []));

/** A certificate chain or key is a few KiB; a CA bundle a few hundred. */
const maxPemBytes = 4 * 1024 * 1024;

function readPem(source: PemSource, name: string): string {
  if ('inline' in source) return source.inline;
  try {
    return readRegularFileSync(source.file, maxPemBytes);
  } catch (error) {
    throw new WebConfigError(`tls_server_config.${name}_file: ${errorMessage(error)}`);
  }
}

/** TLS 1.3 suites stay as OpenSSL's defaults whatever `cipher_suites` says, as in Go. */
const tls13Suites = tls.DEFAULT_CIPHERS.split(':').filter((suite) => suite.startsWith('TLS_'));

/** Reads the certificate, key and client CA, and proves they load (a key that does not match its certificate fails here). */
export function loadTlsSettings(config: TlsServerConfig): TlsSettings {
  const context: SecureContextOptions = {
    cert: readPem(config.cert, 'cert'),
    key: readPem(config.key, 'key'),
    minVersion: tlsVersions[config.minVersion],
    maxVersion: tlsVersions[config.maxVersion],
    honorCipherOrder: config.preferServerCipherSuites,
  };
  if (config.clientCa) context.ca = readPem(config.clientCa, 'client_ca');
  if (config.cipherSuites) context.ciphers = [...tls13Suites, ...config.cipherSuites].join(':');
  if (config.curves) context.ecdhCurve = config.curves.join(':');
  try {
    tls.createSecureContext(context);
  } catch (error) {
    throw new WebConfigError(`tls_server_config: cannot use the certificate and key: ${errorMessage(error)}`);
  }
  return {
    context,
    requestCert: config.clientAuth !== 'NoClientCert',
    rejectUnauthorized: config.clientAuth === 'RequireAndVerifyClientCert',
    clientAuth: config.clientAuth,
    clientAllowedSans: config.clientAllowedSans,
  };
}

/** Subject alternative names of a certificate as Go lists them: DNS names, e-mail addresses, IPs, URIs. */
const subjectAltNames = (text: string | undefined): string[] =>
  (text ?? '')
    .split(', ')
    .map((entry) => entry.replace(/^(DNS|email|IP Address|URI):/, ''))
    .filter((entry) => entry !== '');

/**
 * Why a finished handshake must still be refused, for the policies OpenSSL's verify modes do not
 * express (a certificate required but not verified; verified only if given; SAN allow-list).
 */
export function clientCertificateProblem(settings: TlsSettings, socket: TLSSocket): string | undefined {
  const certificate = socket.getPeerCertificate();
  const presented = certificate !== null && Object.keys(certificate).length > 0;
  if (!presented && settings.clientAuth === 'RequireAnyClientCert') return 'no client certificate';
  if (presented && settings.clientAuth === 'VerifyClientCertIfGiven' && !socket.authorized) return `client certificate not verified: ${String(socket.authorizationError)}`;
  if (settings.clientAllowedSans) {
    if (!presented) return 'no client certificate';
    const sans = subjectAltNames(certificate.subjectaltname);
    if (!sans.some((san) => settings.clientAllowedSans!.includes(san))) return `client certificate SANs ${sans.join(', ') || '(none)'} not in client_allowed_sans`;
  }
  return undefined;
}
