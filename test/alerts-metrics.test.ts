import { readdirSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { fixtureFlags, fixturesDir, ownHostReserveFlags, sampledApp } from './helpers/fixtures.js';
import { metricNamesInRules } from './helpers/rules.js';

const hosts = readdirSync(path.join(fixturesDir, 'hosts')).sort();

/** Names of the series on one fixture host's /metrics, its exporter run as the end-to-end tests run it. */
async function exposedNames(host: string): Promise<string[]> {
  const { app } = await sampledApp([...fixtureFlags(host), ...ownHostReserveFlags(host)]);
  const { text } = await request(app).get('/metrics').expect(200);
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]);
}

describe('metrics the alert rules use', () => {
  it('finds names in expressions and annotation templates, not label values', () => {
    const names = metricNamesInRules();
    expect(names).toContain('vfio_vm_memory_configured_bytes');
    expect(names).toContain('vfio_oom_kill_events_total');
    expect(names).toContain('vfio_vm_oom_killed_rss_bytes');
    expect(names).not.toContain('vfio_pin_failed');
  });

  it('are all exposed by the exporter on the fixture hosts', async () => {
    const exposed = new Set<string>();
    for (const host of hosts) for (const name of await exposedNames(host)) exposed.add(name);
    expect(metricNamesInRules().filter((name) => !exposed.has(name))).toEqual([]);
  });
});
