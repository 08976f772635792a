import http, { type RequestListener, type Server } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ListenAddress } from '../cli/flags.js';
import { errorMessage } from '../host/fs.js';
import type { Logger } from '../log.js';
import { webHandler } from './handler.js';
import type { WebConfigSource } from './source.js';
import type { TlsSettings } from './tls.js';

/**
 * Bounds on what a client can make the server hold: scrapes are small GET requests, so headers are
 * capped at 8 KiB (Node's default is 16 KiB) and a client gets 10 s to send them, 30 s for the request.
 */
export const serverLimits = { maxHeaderSize: 8 * 1024, headersTimeout: 10_000, requestTimeout: 30_000 } as const;

/** A TLS server whose settings follow the web config for each new connection. */
async function createTlsServer(source: WebConfigSource, initial: TlsSettings, handler: RequestListener, log: Logger): Promise<Server> {
  const { clientCertificateProblem } = await import('./tls.js');
  let applied = initial;
  const server = https.createServer(
    { ...serverLimits, ...initial.context, requestCert: initial.requestCert, rejectUnauthorized: initial.rejectUnauthorized },
    handler,
  );
  // Runs before the TLS wrapper is put on the new connection (hence prepend), as Go's GetConfigForClient does.
  server.prependListener('connection', (socket: Socket) => {
    try {
      const settings = source.current().tls;
      if (!settings) throw new Error('tls_server_config was removed; TLS stays on until a restart');
      if (settings !== applied) {
        server.setSecureContext(settings.context);
        // The client-certificate policy is read from these server fields for each new connection.
        Object.assign(server, { requestCert: settings.requestCert, rejectUnauthorized: settings.rejectUnauthorized });
        applied = settings;
        log.info('TLS settings reloaded', { client_auth_type: settings.clientAuth });
      }
    } catch (error) {
      log.error('refusing connection: unable to load the TLS config', { err: errorMessage(error) });
      socket.destroy();
    }
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
 * web config. A bad config file throws before anything listens.
 */
export async function listenWeb(app: RequestListener, listen: ListenAddress, webConfigFile: string | undefined, log: Logger): Promise<Server> {
  // The YAML parser is loaded only when there is a web config to read.
  const source = webConfigFile === undefined ? undefined : new (await import('./source.js')).WebConfigSource(webConfigFile);
  const handler = webHandler(app, source, log);
  const tls = source?.current().tls;
  const server = source && tls ? await createTlsServer(source, tls, handler, log) : http.createServer(serverLimits, handler);
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
