import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { findBinary, fixtureFlags, fixturesDir, repoRoot, sampledApp } from './helpers/fixtures.js';
import { normaliseExposition } from './helpers/golden.js';

const hosts = readdirSync(path.join(fixturesDir, 'hosts')).sort();
const update = process.env['UPDATE_GOLDEN'] === '1';

describe.each(hosts)('end-to-end output of fixture host %s', (host) => {
  it('matches the checked-in golden file (UPDATE_GOLDEN=1 rewrites it)', async () => {
    const { app } = await sampledApp(fixtureFlags(host));
    const { text } = await request(app).get('/metrics').expect(200);
    const golden = path.join(repoRoot, 'test/golden', `${host}.prom`);
    const actual = normaliseExposition(text);
    if (update || !existsSync(golden)) writeFileSync(golden, actual);
    expect(actual).toBe(readFileSync(golden, 'utf8'));
  });

  it('passes promtool check metrics with no finding', async () => {
    const { app } = await sampledApp(fixtureFlags(host));
    const { text } = await request(app).get('/metrics').expect(200);
    const result = spawnSync(findBinary('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
