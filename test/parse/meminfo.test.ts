import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArcstats, parseMeminfo, parsePressure } from '../../src/parse/meminfo.js';
import { hostDir } from '../helpers/fixtures.js';

const fixture = (file: string): string => readFileSync(path.join(hostDir('suprox'), 'proc', file), 'utf8');

describe('meminfo', () => {
  it('gives bytes for kB fields and counts for hugepage fields', () => {
    const meminfo = parseMeminfo(fixture('meminfo'));
    expect(meminfo.get('MemTotal')).toBe(32617444 * 1024);
    expect(meminfo.get('MemAvailable')).toBe(9 * 1024 ** 3);
    expect(meminfo.get('HugePages_Total')).toBe(0);
    expect(meminfo.get('Hugepagesize')).toBe(2 * 1024 ** 2);
    expect(meminfo.get('Active(anon)')).toBe(112968 * 1024);
  });
});

describe('arcstats', () => {
  it('reads size, c_min and c_max past the two header lines', () => {
    const arc = parseArcstats(fixture('spl/kstat/zfs/arcstats'));
    expect(arc.get('size')).toBe(6 * 1024 ** 3);
    expect(arc.get('c_min')).toBe(1019295744);
    expect(arc.get('c_max')).toBe(16308722688);
    expect(arc.has('name')).toBe(false);
  });
});

describe('pressure', () => {
  it('converts µs totals to seconds', () => {
    expect(parsePressure(fixture('pressure/memory'))).toEqual({ someSeconds: 48.211967, fullSeconds: 21.87741 });
  });
  it('accepts a some-only file and rejects garbage', () => {
    expect(parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n')).toEqual({ someSeconds: 0.000005, fullSeconds: undefined });
    expect(() => parsePressure('garbage')).toThrow(/no "some/);
  });
});
