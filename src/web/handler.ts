import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { errorMessage } from '../host/fs.js';
import type { Logger } from '../log.js';
import type { BasicAuthChecker } from './basic-auth.js';
import type { WebConfig } from './config.js';
import type { WebConfigSource } from './source.js';

/** Token bucket: `burst` requests at once, then one per interval (Go's rate.Limiter, as the toolkit uses it). */
export class RateLimiter {
  private tokens: number;
  private updatedMs: number;

  constructor(
    private readonly limit: NonNullable<WebConfig['rateLimit']>,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = limit.burst;
    this.updatedMs = now();
  }

  allow(): boolean {
    const nowMs = this.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + (nowMs - this.updatedMs) / (this.limit.intervalSeconds * 1000));
    this.updatedMs = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const reply = (response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void => {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', ...headers });
  response.end(text);
};

/** Every path serves GET/HEAD only: a body is never read, so one is refused rather than drained. */
const hasBody = (request: IncomingMessage): boolean =>
  request.headers['transfer-encoding'] !== undefined || (request.headers['content-length'] ?? '0') !== '0';

/**
 * What exporter-toolkit's handler does in front of the routes: the current web config's response
 * headers, its rate limit and its basic auth (on every path, as the toolkit does); plus refusing request
 * bodies. A login that cannot be checked soon (too many waiting for bcrypt) gets 429 at once.
 */
export function webHandler(app: RequestListener, source: WebConfigSource | undefined, auth: BasicAuthChecker, log: Logger): RequestListener {
  const initialLimit = source?.current().config.rateLimit;
  // As in the toolkit, the rate limit is set at start; a change needs a restart.
  const limiter = initialLimit && new RateLimiter(initialLimit);
  return (request, response) => {
    if (hasBody(request)) {
      reply(response, 413, 'Request bodies are not accepted.\n', { Connection: 'close' });
      return;
    }
    const config = source?.current().config;
    if (limiter && !limiter.allow()) {
      reply(response, 429, 'Too Many Requests\n');
      return;
    }
    for (const [name, value] of Object.entries(config?.headers ?? {})) response.setHeader(name, value);
    if (!config || config.users.size === 0) {
      app(request, response);
      return;
    }
    auth.check(config.users, request.headers.authorization, request.socket.remoteAddress).then(
      (verdict) => {
        if (verdict === 'allowed') app(request, response);
        else if (verdict === 'busy') reply(response, 429, 'Too Many Requests\n', { 'Retry-After': '1' });
        else reply(response, 401, 'Unauthorized\n', { 'WWW-Authenticate': 'Basic' });
      },
      (error: unknown) => {
        log.error('basic auth check failed', { err: errorMessage(error) });
        reply(response, 500, 'Internal Server Error\n');
      },
    );
  };
}
