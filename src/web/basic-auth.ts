import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import { BcryptBusyError, BcryptPool } from './bcrypt-pool.js';

/** The cost field of a bcrypt hash that passed `bcryptHash` (web/config.ts). Here, not there: serving without a web config loads no YAML parser. */
export const bcryptCost = (hash: string): number => Number(hash.slice(4, 6));

/** A verified credential is trusted again without bcrypt until it goes unused this long. */
export const verifiedIdleMs = 5 * 60_000;
/** Enough for the handful of scrapers a config lists; the least recently used is dropped first. */
const maxVerified = 64;
/** Password checks queued behind the running one; more are answered 429 at once. */
export const maxWaitingChecks = 16;
/** At most one "basic auth failed" line this often; the next one says how many were left out. */
const failureLogIntervalMs = 10_000;

export type AuthVerdict = 'allowed' | 'denied' | 'busy';

/** User and password of an `Authorization: Basic` header, or undefined. */
export function parseBasicAuthorization(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/]+=*)$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * A hash no password matches, at a given cost. Unknown users are checked against it so that a wrong
 * user name takes as long as a wrong password: its cost is the highest of the configured users', since
 * bcrypt's time depends on the cost alone.
 */
export const decoyHash = (cost: number): string => `$2b$${String(cost).padStart(2, '0')}$m2pZYbfQ33NZf3ixlw9oGe65ua2UOkwJfMiVsUy4XNY7bqi5mzv.e`;

const highestCost = new WeakMap<ReadonlyMap<string, string>, number>();
const decoyFor = (users: ReadonlyMap<string, string>): string => {
  let cost = highestCost.get(users);
  if (cost === undefined) {
    cost = Math.max(...[...users.values()].map(bcryptCost));
    highestCost.set(users, cost);
  }
  return decoyHash(cost);
};

/**
 * Checks basic-auth credentials against bcrypt hashes, off the event loop (BcryptPool). A verified
 * credential is remembered, as exporter-toolkit does, under a digest of user, hash and password (no
 * password is kept): a scraper pays bcrypt once, and a flood of wrong logins, which can only queue for
 * the one bcrypt thread, never delays it. Only successes are remembered, so a flood cannot push a good
 * credential out. The same credentials arriving together share one check.
 */
export class BasicAuthChecker {
  private readonly pool = new BcryptPool(maxWaitingChecks);
  /** Digest → when last used; in order of use. */
  private readonly verified = new Map<string, number>();
  private readonly pending = new Map<string, Promise<boolean>>();
  private lastFailureLogMs = -Infinity;
  private unloggedFailures = 0;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  async check(users: ReadonlyMap<string, string>, header: string | undefined, remote: string | undefined): Promise<AuthVerdict> {
    const credentials = parseBasicAuthorization(header);
    if (!credentials) return 'denied';
    const hash = users.get(credentials.user);
    const key = createHash('sha256').update(JSON.stringify([credentials.user, hash ?? '', credentials.password])).digest('hex');
    const nowMs = this.now();
    const lastUsed = this.verified.get(key);
    this.verified.delete(key);
    if (lastUsed !== undefined && nowMs - lastUsed < verifiedIdleMs) {
      this.verified.set(key, nowMs);
      return 'allowed';
    }
    let match: boolean;
    try {
      match = await this.compare(key, credentials.password, hash ?? decoyFor(users));
    } catch (error) {
      if (error instanceof BcryptBusyError) {
        this.failed(hash === undefined ? undefined : credentials.user, remote, 'too many password checks waiting');
        return 'busy';
      }
      throw error;
    }
    if (!match || hash === undefined) {
      this.failed(hash === undefined ? undefined : credentials.user, remote, hash === undefined ? 'unknown user' : 'wrong password');
      return 'denied';
    }
    this.verified.set(key, this.now());
    if (this.verified.size > maxVerified) this.verified.delete(this.verified.keys().next().value!);
    return 'allowed';
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private compare(key: string, password: string, hash: string): Promise<boolean> {
    let result = this.pending.get(key);
    if (!result) {
      result = this.pool.compare(password, hash).finally(() => this.pending.delete(key));
      this.pending.set(key, result);
    }
    return result;
  }

  /** `user` only when configured: an unknown one may be a password typed in the wrong field. */
  private failed(user: string | undefined, remote: string | undefined, reason: string): void {
    const nowMs = this.now();
    if (nowMs - this.lastFailureLogMs < failureLogIntervalMs) {
      this.unloggedFailures++;
      return;
    }
    this.log.warn('basic auth failed', { user, remote, reason, ...(this.unloggedFailures > 0 ? { earlier_failures_not_logged: this.unloggedFailures } : {}) });
    this.lastFailureLogMs = nowMs;
    this.unloggedFailures = 0;
  }
}
