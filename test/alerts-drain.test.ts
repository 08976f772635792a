import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { drainTests } from './helpers/drain-scenarios.js';
import { repoRoot } from './helpers/fixtures.js';

const file = path.join(repoRoot, 'alerts/tests/drain.yml');

describe('alerts/tests/drain.yml', () => {
  // promtool runs it with the other unit tests (alerts-rules.test.ts).
  it('is what test/helpers/drain-scenarios.ts generates from the golden scrape (UPDATE_GOLDEN=1 rewrites it)', () => {
    const generated = drainTests();
    if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(file)) writeFileSync(file, generated);
    expect(readFileSync(file, 'utf8')).toBe(generated);
  });
});
