import { readFileSync } from 'node:fs';
import path from 'node:path';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixtures.js';

const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .filter((line) => /^[A-Z]+\s/.test(line));

describe('the Dockerfile', () => {
  it('has no findings from the Dockerfile validator', () => {
    expect(validate(dockerfile).map((diagnostic) => `line ${diagnostic.range.start.line + 1}: ${diagnostic.message}`)).toEqual([]);
  });

  it('follows the usual image rules (hadolint DL3002, DL3006, DL3007, DL3020, DL3025)', () => {
    const from = instructions.filter((line) => line.startsWith('FROM '));
    expect(from.length).toBeGreaterThanOrEqual(2);
    for (const line of from) expect(line, 'a tagged base image, not latest').toMatch(/^FROM \S+:(?!latest\b)[\w.-]+( AS \w+)?$/);
    expect(instructions.filter((line) => line.startsWith('USER ')).at(-1)).toMatch(/^USER (?!root\b|0\b)\S+$/);
    expect(instructions.some((line) => line.startsWith('ADD '))).toBe(false);
    for (const line of instructions.filter((instruction) => /^(ENTRYPOINT|CMD) /.test(instruction))) expect(line).toMatch(/^\w+ \[".*"\]$/);
    expect(instructions).toContain('EXPOSE 9847');
  });

  it('reads the host where the documented run line mounts it', () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    for (const mount of ['-v /sys:/host/sys:ro', '-v /proc:/host/proc:ro', '-v /:/host/root:ro', '--device /dev/kmsg']) expect(readme).toContain(mount);
    for (const variable of ['VFIO_EXPORTER_PATH_SYSFS=/host/sys', 'VFIO_EXPORTER_PATH_PROCFS=/host/proc', 'VFIO_EXPORTER_PATH_ROOTFS=/host/root', 'VFIO_EXPORTER_PATH_KMSG=/dev/kmsg']) {
      expect(dockerfile).toContain(variable);
    }
  });
});
