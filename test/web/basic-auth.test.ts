import bcrypt from 'bcryptjs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { BasicAuthChecker, maxWaitingChecks } from '../../src/web/basic-auth.js';
import { BcryptBusyError, BcryptPool } from '../../src/web/bcrypt-pool.js';
import { configFor, fixtureFlags } from '../helpers/fixtures.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-basic-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let exporter: RunningExporter | undefined;
afterEach(async () => {
  await exporter?.close();
  exporter = undefined;
});

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('basic auth under a flood of logins', () => {
  it('keeps authorized scrapes fast while unknown users flood it, and answers the excess at once', async () => {
    const lines: string[] = [];
    const configFile = path.join(dir, 'web.yml');
    writeFileSync(configFile, `basic_auth_users:\n  prometheus: ${bcrypt.hashSync('scrape', 10)}\n`);
    exporter = await startExporter(
      configFor([...fixtureFlags('suprox'), '--web.listen-address=127.0.0.1:0', `--web.config.file=${configFile}`]),
      createLogger('info', 'logfmt', (line) => lines.push(line)),
    );
    await exporter.sampler.sample();
    const url = `http://127.0.0.1:${exporter.port}/metrics`;
    const scrape = async (): Promise<number> => {
      const started = performance.now();
      const response = await fetch(url, { headers: { Authorization: basic('prometheus', 'scrape') } });
      await response.arrayBuffer();
      expect(response.status).toBe(200);
      return performance.now() - started;
    };
    await scrape();

    let pending = 100;
    const flood = Array.from({ length: 100 }, (_, index) => {
      const started = performance.now();
      return fetch(url, { headers: { Authorization: basic(`intruder${index}`, `guess${index}`) } }).then(async (response) => {
        await response.arrayBuffer();
        pending--;
        return { status: response.status, ms: performance.now() - started };
      });
    });
    // Scrape while the flood's password checks run: once the excess has been answered, or after 3 s.
    const waitUntil = performance.now() + 3000;
    while (pending > maxWaitingChecks + 1 && performance.now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 20));
    const scrapeMs: number[] = [];
    for (let index = 0; index < 10; index++) scrapeMs.push(await scrape());
    expect(pending).toBeGreaterThan(0);
    const answers = await Promise.all(flood);

    // Each of the 100 checks costs ~70 ms of bcrypt (7 s in all): on the event loop, scrapes waited for
    // most of it. Off the loop they wait for nothing but the machine (the bound leaves room for a busy one).
    expect(Math.max(...scrapeMs)).toBeLessThan(1500);
    const refused = answers.filter((answer) => answer.status === 401);
    const busy = answers.filter((answer) => answer.status === 429);
    expect(refused.length + busy.length).toBe(100);
    // One bcrypt thread and a bounded queue: most are answered at once, not after everyone else's check.
    expect(busy.length).toBeGreaterThan(50);
    expect(Math.min(...busy.map((answer) => answer.ms))).toBeLessThan(Math.max(...refused.map((answer) => answer.ms)));
    // Failed logins are logged, at most one line per 10 s, without the unknown user names.
    const failures = lines.filter((line) => line.includes('basic auth failed'));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/level=warn .*remote=127\.0\.0\.1 reason=/);
    expect(failures.join('\n')).not.toContain('intruder');
  }, 60_000);
});

describe('BcryptPool', () => {
  it('runs one check at a time and refuses beyond its queue at once', async () => {
    const pool = new BcryptPool(2);
    const hash = bcrypt.hashSync('pw', 8);
    try {
      const checks = [pool.compare('pw', hash), pool.compare('no', hash), pool.compare('pw', hash)];
      await expect(pool.compare('pw', hash)).rejects.toBeInstanceOf(BcryptBusyError);
      expect(await Promise.all(checks)).toEqual([true, false, true]);
    } finally {
      await pool.close();
    }
  });
});

describe('the decoy hash', () => {
  const timeCheck = async (checker: BasicAuthChecker, users: Map<string, string>, user: string, password: string): Promise<number> => {
    const started = performance.now();
    expect(await checker.check(users, basic(user, password), undefined)).toBe('denied');
    return performance.now() - started;
  };

  it('costs what the configured users cost, so timing does not tell which users exist', async () => {
    const users = new Map([['prometheus', bcrypt.hashSync('right', 12)]]);
    const checker = new BasicAuthChecker(silentLogger);
    try {
      await timeCheck(checker, users, 'prometheus', 'warm-up');
      const known: number[] = [];
      const unknown: number[] = [];
      for (let round = 0; round < 3; round++) {
        known.push(await timeCheck(checker, users, 'prometheus', `wrong${round}`));
        unknown.push(await timeCheck(checker, users, `nobody${round}`, `wrong${round}`));
      }
      const median = (values: number[]): number => values.sort((a, b) => a - b)[1]!;
      // A cost-10 decoy against cost-12 users answered unknown users 4 times sooner.
      expect(median(unknown) / median(known)).toBeGreaterThan(0.6);
      expect(median(unknown) / median(known)).toBeLessThan(1.6);
    } finally {
      await checker.close();
    }
  }, 120_000);
});
