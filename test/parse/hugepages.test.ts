import { describe, expect, it } from 'vitest';
import { defaultHugepageBytes, hugepageDemand, hugepageDirSizeBytes, hugepageLabelBytes, hugepageSizeLabel, parseHugepageCount } from '../../src/parse/hugepages.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const bothPools = { sizesBytes: [2 * MiB, GiB], defaultBytes: 2 * MiB };

describe('hugepage pools', () => {
  it('names a page size as the VM label does, and back', () => {
    expect([2 * MiB, GiB, 16 * GiB, 64 * 1024].map(hugepageSizeLabel)).toEqual(['2M', '1G', '16G', '64K']);
    expect(['2M', '1G', '64K', 'any', '1G+2M'].map(hugepageLabelBytes)).toEqual([2 * MiB, GiB, 64 * 1024, undefined, undefined]);
  });

  it('reads the page size from the directory name, and nothing else', () => {
    expect(hugepageDirSizeBytes('hugepages-1048576kB')).toBe(GiB);
    expect(hugepageDirSizeBytes('hugepages-2048kB')).toBe(2 * MiB);
    expect(hugepageDirSizeBytes('hugepages-2048')).toBeUndefined();
  });

  it('takes the default size from the first default_hugepagesz=, else 2 MiB; hugepagesz= alone changes nothing', () => {
    expect(defaultHugepageBytes('BOOT_IMAGE=/boot/vmlinuz ro quiet hugepagesz=1G hugepages=8')).toBe(2 * MiB);
    expect(defaultHugepageBytes('ro default_hugepagesz=1G hugepagesz=1G hugepages=16 default_hugepagesz=2M')).toBe(GiB);
    expect(defaultHugepageBytes('ro xdefault_hugepagesz=1G')).toBe(2 * MiB);
  });

  it('reads a page count, and names the file when it is not one', () => {
    expect(parseHugepageCount('16\n', 'nr_hugepages')).toBe(16);
    expect(() => parseHugepageCount('-1\n', '/sys/x/free_hugepages')).toThrow('/sys/x/free_hugepages: not a page count: "-1"');
  });
});

describe('which pool a VM draws on', () => {
  it('resolves Proxmox any per guest node as qemu-server does: 1G for whole GiB, else 2M', () => {
    const nodes = [
      { memoryBytes: 8 * GiB, page: 'any' as const },
      { memoryBytes: 3 * GiB + 512 * MiB, page: 'any' as const },
    ];
    expect(hugepageDemand(nodes, bothPools)).toEqual([
      { size: '1G', pageBytes: GiB, bytes: 8 * GiB },
      { size: '2M', pageBytes: 2 * MiB, bytes: 3 * GiB + 512 * MiB },
    ]);
    // No 1 GiB pool on the host: 2 MiB pages for all of it.
    expect(hugepageDemand(nodes, { sizesBytes: [2 * MiB], defaultBytes: 2 * MiB })).toEqual([{ size: '2M', pageBytes: 2 * MiB, bytes: 11 * GiB + 512 * MiB }]);
  });

  it('leaves the pool unknown when any resolves to nothing, and keeps a size the host lacks', () => {
    expect(hugepageDemand([{ memoryBytes: 3 * GiB + 512 * MiB, page: 'any' }], { sizesBytes: [GiB], defaultBytes: GiB })).toBeUndefined();
    expect(hugepageDemand([{ memoryBytes: GiB, page: 'default' }], { sizesBytes: [GiB], defaultBytes: GiB })).toEqual([{ size: '1G', pageBytes: GiB, bytes: GiB }]);
    // The start fails for want of a 1 GiB pool: the demand stands, the pool is empty.
    expect(hugepageDemand([{ memoryBytes: 4 * GiB, page: GiB }], { sizesBytes: [2 * MiB], defaultBytes: 2 * MiB })).toEqual([{ size: '1G', pageBytes: GiB, bytes: 4 * GiB }]);
  });
});
