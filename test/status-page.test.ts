import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../src/exporter.js';
import { silentLogger } from '../src/log.js';
import { launchChromium } from './helpers/chromium.js';
import { configFor, fixtureFlags, repoRoot } from './helpers/fixtures.js';

const host = 'suprox';

describe(`status page in headless Chromium (${host})`, () => {
  let exporter: RunningExporter;
  let browser: Browser;

  beforeAll(async () => {
    exporter = await startExporter(configFor([...fixtureFlags(host), '--web.listen-address=127.0.0.1:0']), silentLogger);
    await exporter.sampler.sample();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await exporter?.close();
  });

  it('shows the host problems first, readable on a phone', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    await page.goto(`http://127.0.0.1:${exporter.port}/`);
    const headings = await page.locator('h2').allInnerTexts();
    expect(headings[0]).toMatch(/^Problems \(\d+\)$/);
    const firstProblem = page.locator('.problem').first();
    await expect.poll(() => firstProblem.isVisible()).toBe(true);
    // The seed: VM 101 at 16 GiB with ballooning on does not fit, and the page says so first, with the fix.
    const problems = await page.locator('.problem').allInnerTexts();
    expect(problems[0]).toContain('VfioPassthroughVMStartWouldOOM');
    expect(problems[0]).toContain('VM 101 (truenas) needs 16.0 GiB pinned but the host can give 13.1 GiB');
    expect(problems[0]).toContain('qm set 101 --balloon 0 --memory 13312');
    expect(problems.some((text) => text.includes('VfioPassthroughVMBalloonEnabled'))).toBe(true);
    await expect.poll(() => page.locator('tr.bad', { hasText: 'truenas' }).first().isVisible()).toBe(true);
    // Nothing wider than the phone screen outside the scrollable tables.
    const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth'));
    expect(overflow).toBeLessThanOrEqual(0);
    const screenshot = await page.screenshot({ fullPage: false });
    expect(screenshot.length).toBeGreaterThan(10_000);
    if (process.env['UPDATE_SCREENSHOT'] === '1') writeFileSync(path.join(repoRoot, 'docs/status.png'), screenshot);
    await page.close();
  });

  it('loads no external asset', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(`http://127.0.0.1:${exporter.port}/`);
    expect(requests.every((url) => url.startsWith(`http://127.0.0.1:${exporter.port}/`))).toBe(true);
    await page.close();
  });
});
