import { execFileSync } from 'node:child_process';
import request from 'supertest';
import { describe, it } from 'vitest';
import { findBinary, sampledApp } from './helpers/fixtures.js';
import { expectDevicesAsLspciShows } from './helpers/lspci.js';

describe('on this machine, against lspci -Dnnk', () => {
  it('every device has the ids, revision, class, names and driver lspci shows', async () => {
    const { app } = await sampledApp(['--no-collector.host', '--no-collector.iommu']);
    const { text } = await request(app).get('/metrics').expect(200);
    expectDevicesAsLspciShows(text, execFileSync(findBinary('lspci'), ['-Dnnk'], { encoding: 'utf8' }));
  });
});
