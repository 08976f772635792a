import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/web/handler.js';

describe('rate_limit', () => {
  it('allows a burst, then one request per interval', () => {
    let nowMs = 0;
    const limiter = new RateLimiter({ intervalSeconds: 1, burst: 2 }, () => nowMs);
    expect([limiter.allow(), limiter.allow(), limiter.allow()]).toEqual([true, true, false]);
    nowMs = 999;
    expect(limiter.allow()).toBe(false);
    nowMs = 1000;
    expect([limiter.allow(), limiter.allow()]).toEqual([true, false]);
    nowMs = 10_000;
    expect([limiter.allow(), limiter.allow(), limiter.allow()]).toEqual([true, true, false]);
  });
});
