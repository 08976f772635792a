import { describe, expect, it } from 'vitest';
import { parseMountinfo } from '../../src/parse/mountinfo.js';
import { parseSwaps } from '../../src/parse/swaps.js';
import { parseUdevProperties } from '../../src/parse/udev-db.js';

describe('parseMountinfo', () => {
  it('reads device numbers, mount points with escaped spaces, the filesystem type and the source after the separator', () => {
    const text = [
      '22 1 0:21 / / rw,relatime shared:1 - zfs rpool/ROOT/pve-1 rw,xattr,noacl',
      '60 22 8:17 / /mnt/my\\040backup rw,relatime shared:30 master:4 - ext4 /dev/sdb1 rw',
      // No optional fields at all: the separator comes right after the mount options.
      '61 22 0:55 / /srv/pool rw,relatime - btrfs /dev/sdc rw,space_cache=v2',
      '',
    ].join('\n');
    expect(parseMountinfo(text)).toEqual({
      mounts: [
        { majorMinor: '0:21', mountPoint: '/', fsType: 'zfs', source: 'rpool/ROOT/pve-1' },
        { majorMinor: '8:17', mountPoint: '/mnt/my backup', fsType: 'ext4', source: '/dev/sdb1' },
        { majorMinor: '0:55', mountPoint: '/srv/pool', fsType: 'btrfs', source: '/dev/sdc' },
      ],
      errors: [],
    });
  });

  it('reports a line without the separator or device numbers, and keeps the others', () => {
    const { mounts, errors } = parseMountinfo('22 1 0:21 / / rw - zfs rpool rw\ngarbage line\n23 1 x:y / /a rw - ext4 /dev/sda1 rw\n');
    expect(mounts.map((mount) => mount.mountPoint)).toEqual(['/']);
    expect(errors).toEqual([expect.stringMatching(/^line 2: not a mountinfo line/), expect.stringMatching(/^line 3: /)]);
  });
});

describe('parseSwaps', () => {
  it('reads partitions and files, and an empty table', () => {
    const header = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n';
    expect(parseSwaps(`${header}/dev/sdb2                               partition\t16777212\t0\t\t-2\n/swap\\040file file 8388604 0 -3\n`)).toEqual([
      { filename: '/dev/sdb2', type: 'partition' },
      { filename: '/swap file', type: 'file' },
    ]);
    expect(parseSwaps(header)).toEqual([]);
  });

  it('refuses what is not /proc/swaps', () => {
    expect(() => parseSwaps('MemTotal: 1 kB\n')).toThrow(/no Filename header/);
    expect(() => parseSwaps('Filename Type Size Used Priority\n/dev/sda2\n')).toThrow(/not a swap line/);
  });
});

describe('parseUdevProperties', () => {
  it("takes the E: properties of a udev database record and ignores links, tags and the rest", () => {
    const record = 'S:disk/by-label/rpool\nW:3\nI:2045260\nE:ID_FS_LABEL=rpool\nE:ID_FS_TYPE=zfs_member\nE:ID_MODEL=WDC WDS500G2B0C=00PXH0\nG:systemd\n';
    expect(Object.fromEntries(parseUdevProperties(record))).toEqual({ ID_FS_LABEL: 'rpool', ID_FS_TYPE: 'zfs_member', ID_MODEL: 'WDC WDS500G2B0C=00PXH0' });
  });
});
