import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** Compared against for unknown users, so that a wrong user name takes as long as a wrong password (no user enumeration by timing). */
const decoyHash = '$2b$10$m2pZYbfQ33NZf3ixlw9oGe65ua2UOkwJfMiVsUy4XNY7bqi5mzv.e';

/** Enough for the handful of scrapers a config lists; the oldest result is dropped first. */
const maxCachedResults = 100;

/** User and password of an `Authorization: Basic` header, or undefined. */
export function parseBasicAuthorization(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/]+=*)$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Checks basic-auth credentials against bcrypt hashes. bcrypt is slow on purpose (~70 ms at cost 10),
 * so each verdict is cached, as exporter-toolkit does, under a digest of user, hash and password:
 * a scraper sending the same credentials every 15 s pays once, and no password is kept in memory.
 */
export class BasicAuthChecker {
  private readonly verdicts = new Map<string, boolean>();

  async allowed(users: ReadonlyMap<string, string>, header: string | undefined): Promise<boolean> {
    const credentials = parseBasicAuthorization(header);
    if (!credentials) return false;
    const hash = users.get(credentials.user);
    const key = createHash('sha256').update(JSON.stringify([credentials.user, hash ?? '', credentials.password])).digest('hex');
    let verdict = this.verdicts.get(key);
    if (verdict === undefined) {
      verdict = (await bcrypt.compare(credentials.password, hash ?? decoyHash)) && hash !== undefined;
      if (this.verdicts.size >= maxCachedResults) this.verdicts.delete(this.verdicts.keys().next().value!);
      this.verdicts.set(key, verdict);
    }
    return verdict;
  }
}
