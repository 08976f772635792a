import { describe, expect, it } from 'vitest';
import { kernelHasResetMethod, parseAerCounters, parseResetMethods, parseUnsigned } from '../../src/parse/pci-health.js';

describe('reset_method', () => {
  it('lists the methods in the order the kernel tries them', () => {
    expect(parseResetMethods('flr bus\n')).toEqual(['flr', 'bus']);
    expect(parseResetMethods('device_specific pm\n')).toEqual(['device_specific', 'pm']);
  });
  it('reads an emptied attribute (every method disabled by hand) as none', () => {
    expect(parseResetMethods('')).toEqual([]);
  });
  it('refuses what is not a method list', () => {
    expect(() => parseResetMethods('flr\u0000bus')).toThrow(/not a method name/);
  });
  it('knows from the release whether the kernel has the attribute (5.15+)', () => {
    expect(kernelHasResetMethod('6.5.13-1-pve\n')).toBe(true);
    expect(kernelHasResetMethod('5.15.0-91-generic')).toBe(true);
    expect(kernelHasResetMethod('5.14.21-150400.24.11-default')).toBe(false);
    expect(kernelHasResetMethod('4.19.0-26-amd64')).toBe(false);
    expect(kernelHasResetMethod('garbage')).toBeUndefined();
  });
});

describe('aer_dev_* (drivers/pci/pcie/aer.c, aer_stats_dev_attr)', () => {
  it('reads every named error, a nameless bit and the total of messages', () => {
    const text = 'RxErr 3\nBadTLP 1\nBadDLLP 0\nRollover 0\nTimeout 0\nNonFatalErr 0\nCorrIntErr 0\nHeaderOF 0\ndev_cor_errs_bit[16] 2\nTOTAL_ERR_COR 5\n';
    expect(parseAerCounters(text, 'aer_dev_correctable')).toEqual({
      errors: [
        { error: 'RxErr', count: 3 },
        { error: 'BadTLP', count: 1 },
        { error: 'BadDLLP', count: 0 },
        { error: 'Rollover', count: 0 },
        { error: 'Timeout', count: 0 },
        { error: 'NonFatalErr', count: 0 },
        { error: 'CorrIntErr', count: 0 },
        { error: 'HeaderOF', count: 0 },
        { error: 'dev_cor_errs_bit[16]', count: 2 },
      ],
      messages: 5,
    });
  });
  it('keeps counts beyond 2^32', () => {
    expect(parseAerCounters('CmpltTO 8589934592\nTOTAL_ERR_NONFATAL 8589934592\n', 'aer_dev_nonfatal').messages).toBe(8589934592);
  });
  it('refuses a file without its total or with a line it does not know', () => {
    expect(() => parseAerCounters('RxErr 3\n', 'aer_dev_correctable')).toThrow(/no TOTAL_ line/);
    expect(() => parseAerCounters('RxErr three\nTOTAL_ERR_COR 1\n', 'aer_dev_correctable')).toThrow(/not a counter/);
    expect(() => parseAerCounters('RxErr 1 2\nTOTAL_ERR_COR 1\n', 'aer_dev_correctable')).toThrow(/not a "<error> <count>" line/);
  });
});

describe('single-number attributes', () => {
  it('reads sriov_totalvfs and the root port totals', () => {
    expect(parseUnsigned('63\n', 'sriov_totalvfs')).toBe(63);
    expect(() => parseUnsigned('-1\n', 'sriov_numvfs')).toThrow(/sriov_numvfs: not a counter/);
  });
});
