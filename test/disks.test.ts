import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BlockDevice, DiskFacts } from '../src/collectors/disks.js';
import { fixtureFlags, sampledApp, seriesLines } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';

const onlyDisks = ['--no-collector.vm', '--no-collector.oom', '--no-collector.memory', '--no-collector.host'];

async function diskSample(flags: string[]): Promise<{ facts: DiskFacts; text: string; success: boolean; errors: string[] }> {
  const { sample } = await sampledApp([...flags, ...onlyDisks]);
  const outcome = sample.snapshot.outcomes.find((each) => each.name === 'disks')!;
  return { facts: sample.snapshot.facts.disks!, text: sample.text, success: outcome.success, errors: outcome.errors };
}

const byName = (facts: DiskFacts): Map<string, BlockDevice> => new Map(facts.devices.map((device) => [device.name, device]));
const sataRoot = (root: string): string => path.join(root, 'sys/devices/pci0000:00/0000:00:17.0');

describe('disks collector on the fixture hosts', () => {
  it('the seed host: the SATA controller on vfio-pci has no block devices on the host; the boot NVMe is held by ZFS', async () => {
    const { facts, text, success } = await diskSample(fixtureFlags('suprox'));
    expect(success).toBe(true);
    expect(facts.controllers).toEqual([
      { address: '0000:00:17.0', driver: 'vfio-pci', blockDevices: 0 },
      { address: '0000:07:00.0', driver: 'nvme', blockDevices: 4 },
    ]);
    expect(seriesLines(text, 'vfio_block_device_info').filter((line) => line.includes('0000:00:17.0'))).toEqual([]);
    const devices = byName(facts);
    expect(devices.get('nvme0n1p3')).toMatchObject({ kind: 'partition', parent: 'nvme0n1', fsType: 'zfs_member', users: [{ kind: 'zfs', name: 'rpool' }], held: true });
    // The disk is held through its partition; the ESP that Proxmox keeps unmounted is free.
    expect(devices.get('nvme0n1')).toMatchObject({ kind: 'disk', users: [], held: true, sizeBytes: 976_773_168 * 512, serial: '20321H801234' });
    expect(devices.get('nvme0n1p2')).toMatchObject({ fsType: 'vfat', users: [], held: false });
  });

  it('the board gone wrong: ahci holds the controller and the host uses its disks through md, a mount, swap and LVM', async () => {
    const { facts, success } = await diskSample(fixtureFlags('suprox-trouble'));
    expect(success).toBe(true);
    const sata = facts.devices.filter((device) => device.pciAddresses.includes('0000:00:17.0'));
    expect(Object.fromEntries(sata.map((device) => [device.name, [device.held, device.users.map((user) => `${user.kind}:${user.name}`)]]))).toEqual({
      sda: [true, []],
      sda1: [true, ['md:md127']],
      sdb: [true, []],
      sdb1: [true, ['mount:/mnt/backup']],
      sdb2: [true, ['swap:/dev/sdb2']],
      sdc: [true, ['lvm:backup-vmstore']],
    });
    // SATA disks carry no serial in sysfs: udev's ID_SERIAL_SHORT is the one lsblk shows.
    expect(byName(facts).get('sda')).toMatchObject({ model: 'WDC WD40EFRX-68N', serial: 'WD-WCC7K4KL1234' });
  });

  it('the same disks, unused: visible on the host but free (suprox-noiommu)', async () => {
    const { facts } = await diskSample(fixtureFlags('suprox-noiommu'));
    const sata = facts.devices.filter((device) => device.pciAddresses.includes('0000:00:17.0'));
    expect(sata.map((device) => device.name)).toEqual(['sda', 'sda1', 'sdb', 'sdb1', 'sdb2', 'sdc']);
    expect(sata.every((device) => device.held === false && device.users.length === 0)).toBe(true);
  });
});

describe('disks collector: unknown is never free', () => {
  it('an unreadable mount table leaves every device without a mount holder unknown, and says why', async () => {
    const { root, flags } = copyHost('suprox-trouble');
    rmSync(path.join(root, 'proc/1/mountinfo'));
    mkdirSync(path.join(root, 'proc/1/mountinfo'));
    const { facts, text, success, errors } = await diskSample(flags);
    expect(success).toBe(false);
    expect(errors).toEqual([expect.stringMatching(/proc\/1\/mountinfo: not a regular file$/)]);
    const devices = byName(facts);
    // md, swap and LVM are still known to hold theirs; the mounted partition and the free ESP are unknown.
    expect(devices.get('sda1')?.held).toBe(true);
    expect(devices.get('sdb1')?.held).toBeUndefined();
    expect(devices.get('nvme0n1p2')?.held).toBeUndefined();
    expect(text).not.toContain('vfio_block_device_held{pci_address="0000:00:17.0",device="sdb1"}');
    expect(text).toContain('vfio_block_device_held{pci_address="0000:00:17.0",device="sda1"} 1');
  });

  it('a partition with no udev record on a host with an imported ZFS pool is unknown, and so is its disk', async () => {
    const { root, flags } = copyHost('suprox');
    rmSync(path.join(root, 'root/run/udev/data/b259:3'));
    const devices = byName((await diskSample(flags)).facts);
    expect(devices.get('nvme0n1p3')?.held).toBeUndefined();
    expect(devices.get('nvme0n1')?.held).toBeUndefined();
    // A host without imported pools: no udev record does not matter.
    rmSync(path.join(root, 'proc/spl/kstat/zfs/rpool'), { recursive: true });
    expect(byName((await diskSample(flags)).facts).get('nvme0n1p3')?.held).toBe(false);
  });

  it('a device whose size cannot be read is reported alone; the others stay', async () => {
    const { root, flags } = copyHost('suprox-trouble');
    writeFileSync(path.join(sataRoot(root), 'ata3/host2/target2:0:0/2:0:0:0/block/sdc/size'), 'garbage\n');
    const { facts, success, errors } = await diskSample(flags);
    expect(success).toBe(false);
    expect(errors).toEqual([expect.stringMatching(/^block device sdc: .*sdc: dev or size unreadable/)]);
    expect(facts.devices.map((device) => device.name)).toContain('sdb2');
    expect(facts.devices.map((device) => device.name)).not.toContain('sdc');
  });

  it('a sysfs without class/block fails the collector instead of reporting no disks', async () => {
    const { root, flags } = copyHost('suprox');
    rmSync(path.join(root, 'sys/class/block'), { recursive: true });
    const { text, success } = await diskSample(flags);
    expect(success).toBe(false);
    expect(seriesLines(text, 'vfio_pci_device_block_devices')).toEqual([]);
  });
});

describe('disks collector: layouts beyond the fixtures', () => {
  it('btrfs (anonymous device number) is matched by its source; a multipath NVMe namespace by its subsystem controllers', async () => {
    const { root, flags } = copyHost('suprox-noiommu');
    writeFileSync(path.join(root, 'proc/1/mountinfo'), '22 1 0:21 / / rw - zfs rpool/ROOT/pve-1 rw\n61 22 0:55 / /srv/pool rw,relatime - btrfs /dev/sdc rw\n');
    // A shared-namespace NVMe subsystem: the namespace hangs off the subsystem, the controller off the PCI device.
    const subsystem = path.join(root, 'sys/devices/virtual/nvme-subsystem/nvme-subsys1');
    mkdirSync(path.join(subsystem, 'nvme1n1'), { recursive: true });
    writeFileSync(path.join(subsystem, 'nvme1n1/dev'), '259:8\n');
    writeFileSync(path.join(subsystem, 'nvme1n1/size'), '2048\n');
    const controller = path.join(root, 'sys/devices/pci0000:00/0000:00:1c.1/0000:03:00.0/nvme/nvme1');
    mkdirSync(controller, { recursive: true });
    symlinkSync(path.relative(subsystem, controller), path.join(subsystem, 'nvme1'));
    mkdirSync(path.join(root, 'sys/class/nvme-subsystem'), { recursive: true });
    symlinkSync('../../devices/virtual/nvme-subsystem/nvme-subsys1', path.join(root, 'sys/class/nvme-subsystem/nvme-subsys1'));
    symlinkSync('../../devices/virtual/nvme-subsystem/nvme-subsys1/nvme1n1', path.join(root, 'sys/class/block/nvme1n1'));
    const { facts } = await diskSample(flags);
    const devices = byName(facts);
    expect(devices.get('sdc')?.users).toEqual([{ kind: 'mount', name: '/srv/pool' }]);
    expect(devices.get('nvme1n1')).toMatchObject({ pciAddresses: ['0000:03:00.0'], sizeBytes: 2048 * 512 });
    expect(facts.controllers.find((each) => each.address === '0000:03:00.0')?.blockDevices).toBe(1);
  });
});

describe('disks collector on this machine', () => {
  it('finds the block devices lsblk shows behind PCI devices, with the same numbers, sizes and mounts', async () => {
    const { facts } = await diskSample(['--path.kmsg=/dev/null']);
    const lsblk = JSON.parse(execFileSync('lsblk', ['-b', '-J', '-o', 'NAME,MAJ:MIN,SIZE,MOUNTPOINTS'], { encoding: 'utf8' })) as {
      blockdevices: { name: string; 'maj:min': string; size: number; mountpoints: (string | null)[]; children?: unknown[] }[];
    };
    const flat = lsblk.blockdevices.flatMap(function walk(device): typeof lsblk.blockdevices {
      return [device, ...((device.children ?? []) as typeof lsblk.blockdevices).flatMap(walk)];
    });
    expect(facts.devices.length).toBeGreaterThan(0);
    for (const device of facts.devices) {
      const listed = flat.find((each) => each.name === device.name);
      expect(listed, `${device.name} is in lsblk`).toBeDefined();
      expect(device.sizeBytes).toBe(listed!.size);
      const mounts = listed!.mountpoints.filter((each): each is string => each !== null).sort();
      expect(device.users.filter((user) => user.kind === 'mount').map((user) => user.name).sort()).toEqual(mounts);
      expect(device.pciAddresses.every((address) => /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(address))).toBe(true);
    }
  });
});
