import { chromium, type Browser } from 'playwright-core';
import { findBinary } from './fixtures.js';

/**
 * Debian's Chromium, headless, with a fresh profile (playwright makes one per launch). The
 * background-networking flags keep it from reaching out to a network this machine does not have.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: findBinary('chromium'),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
