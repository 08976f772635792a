import http, { type RequestListener, type Server } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ListenAddress } from '../cli/flags.js';
import type { Logger } from '../log.js';
import { BasicAuthChecker } from './basic-auth.js';
import { webHandler } from './handler.js';
import type { WebConfigSource } from './source.js';
import type { TlsSettings } from './tls.js';

/**
 * Bounds on what a client can make the server hold: scrapes are small GET requests, so headers are
 * capped at 8 KiB (Node's default is 16 KiB) and a client gets 10 s to send them, 30 s for the request.
 * Node enforces both timeouts only when it checks its connections, every 30 s by default, which let a
 * client trickling its headers stay up to 40 s; checking every second cuts it within a second of the limit.
 */
export const serverLimits = { maxHeaderSize: 8 * 1024, headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1000 } as const;

/** A TLS server whose settings follow the web config for each new connection. */
async function createTlsServer(source: WebConfigSource, initial: TlsSettings, handler: RequestListener, log: Logger): Promise<Server> {
  // Loaded only with TLS: node:https brings node:tls.
  const [{ clientCertificateProblem }, https] = await Promise.all([import('./tls.js'), import('node:https')]);
  let applied = initial;
  const server = https.createServer(
    { ...serverLimits, ...initial.context, requestCert: initial.requestCert, rejectUnauthorized: initial.rejectUnauthorized },
    handler,
  );
  // Runs before the TLS wrapper is put on the new connection (hence prepend), as Go's GetConfigForClient does.
  // The source keeps the last good settings when the files go bad, and TLS on (switching it off needs a restart).
  server.prependListener('connection', () => {
    const settings = source.current().tls ?? applied;
    if (settings === applied) return;
    // Checked when loaded: tls.createSecureContext accepted these settings.
    server.setSecureContext(settings.context);
    // The client-certificate policy is read from these server fields for each new connection.
    Object.assign(server, { requestCert: settings.requestCert, rejectUnauthorized: settings.rejectUnauthorized });
    applied = settings;
    log.info('TLS settings reloaded', { client_auth_type: settings.clientAuth });
  });
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const problem = clientCertificateProblem(applied, socket);
    if (problem) {
      log.warn('refusing TLS client', { remote: socket.remoteAddress, reason: problem });
      socket.destroy();
    }
  });
  server.on('tlsClientError', (error, socket) => {
    log.debug('TLS handshake failed', { remote: socket.remoteAddress, err: error.message });
  });
  return server;
}

/**
 * Serves `app` on the listen address: plain HTTP, or TLS and basic auth from the exporter-toolkit
 * web config (read and checked by the caller, so a bad file stops the exporter before anything listens).
 */
export async function listenWeb(app: RequestListener, listen: ListenAddress, source: WebConfigSource | undefined, log: Logger): Promise<Server> {
  const auth = new BasicAuthChecker(log);
  const handler = webHandler(app, source, auth, log);
  const tls = source?.current().tls;
  const server = source && tls ? await createTlsServer(source, tls, handler, log) : http.createServer(serverLimits, handler);
  server.once('close', () => void auth.close());
  log.info(tls ? 'TLS is enabled' : 'TLS is disabled', { basic_auth: (source?.current().config.users.size ?? 0) > 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const listening = () => {
      server.off('error', reject);
      resolve();
    };
    if (listen.host) server.listen(listen.port, listen.host, listening);
    else server.listen(listen.port, listening);
  });
  return server;
}
