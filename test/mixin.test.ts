import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultMixinConfig } from '../src/mixin/config.js';
import { generateMixin } from '../src/mixin/generate.js';
import { repoRoot } from './helpers/fixtures.js';

describe('the checked-in rules and dashboards', () => {
  it.each([...generateMixin({ ...defaultMixinConfig })])('%s is what src/mixin generates with the default config', (file, generated) => {
    const checkedIn = readFileSync(path.join(repoRoot, file), 'utf8');
    // Equal text, not just equal values: a hand edit of the file is lost at the next generation.
    expect(checkedIn, `${file} differs from src/mixin: edit src/mixin and run npm run mixin`).toBe(generated);
  });
});
