import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isMissing, listDir, readOptionalText, readText } from './fs.js';
import { sysPath, type HostPaths } from './paths.js';

/** A device that holds a block device open: an md array, a device-mapper target (LVM, dm-crypt), bcache. */
export interface BlockHolder {
  /** `md`, `lvm`, `crypt`, `multipath`, `dm`, `bcache`, or `other`. */
  kind: string;
  /** The holder's name: `md127`, the dm name (`pve-root`), ... */
  name: string;
}

/** A disk or partition as sysfs shows it, with the PCI devices it hangs off. */
export interface BlockDeviceRead {
  name: string;
  /** `major:minor` from the `dev` attribute. */
  majorMinor: string;
  kind: 'disk' | 'partition';
  /** The whole disk of a partition. */
  parent: string | undefined;
  sizeBytes: number;
  model: string | undefined;
  /** `serial` of an NVMe controller or virtio disk; SATA/SAS disks have none in sysfs (udev's ID_SERIAL_SHORT has it). */
  serial: string | undefined;
  /** Full PCI addresses of the controllers the device is reached through (several for NVMe multipath). */
  pciAddresses: string[];
  holders: BlockHolder[];
}

const pciAddressPattern = /\/([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])(?=\/)/g;

/** The deepest PCI device in a sysfs device path: the controller the block device hangs off. */
const deepestPciAddress = (devicePath: string): string | undefined => [...devicePath.matchAll(pciAddressPattern)].pop()?.[1];

const trimmed = async (file: string): Promise<string | undefined> => {
  const text = await readOptionalText(file);
  const value = text?.trim();
  return value === '' ? undefined : value;
};

/**
 * A namespace of a multipath-capable NVMe subsystem lives under /sys/devices/virtual/nvme-subsystem/nvme-subsysN
 * (drivers/nvme/host/multipath.c nvme_mpath_alloc_disk); its controllers are the `nvmeX` links of that subsystem.
 */
async function nvmeSubsystemControllers(paths: HostPaths, devicePath: string): Promise<string[]> {
  const subsystem = /\/nvme-subsystem\/(nvme-subsys\d+)\//.exec(devicePath)?.[1];
  if (!subsystem) return [];
  const dir = sysPath(paths, 'class/nvme-subsystem', subsystem);
  const addresses: string[] = [];
  for (const entry of await listDir(dir)) {
    if (!/^nvme\d+$/.test(entry)) continue;
    const address = deepestPciAddress(`${await fs.realpath(path.join(dir, entry))}/`);
    if (address) addresses.push(address);
  }
  return addresses;
}

/** Kind of a holder by its name and, for device-mapper, the target's uuid prefix (LVM-, CRYPT-, mpath-). */
async function readHolder(paths: HostPaths, name: string): Promise<BlockHolder> {
  if (/^md\d+$/.test(name) || name.startsWith('md_')) return { kind: 'md', name };
  if (name.startsWith('bcache')) return { kind: 'bcache', name };
  if (!name.startsWith('dm-')) return { kind: 'other', name };
  const dmDir = sysPath(paths, 'class/block', name, 'dm');
  const [dmName, uuid] = await Promise.all([trimmed(path.join(dmDir, 'name')), trimmed(path.join(dmDir, 'uuid'))]);
  const prefix = uuid?.split('-')[0]?.toUpperCase();
  const kind = prefix === 'LVM' ? 'lvm' : prefix === 'CRYPT' ? 'crypt' : prefix === 'MPATH' ? 'multipath' : 'dm';
  return { kind, name: dmName ?? name };
}

/**
 * Every block device behind a PCI device, from /sys/class/block: a device's link resolves to its place
 * under /sys/devices, which runs through the PCI device it hangs off (SATA `.../0000:00:17.0/ata1/host0/
 * target0:0:0/0:0:0:0/block/sda`, NVMe `.../0000:07:00.0/nvme/nvme0/nvme0n1`). Virtual devices (loop, dm,
 * md, zram) hang off none and are left out; they appear as holders.
 */
export async function readBlockDevices(paths: HostPaths): Promise<{ devices: BlockDeviceRead[]; failures: { name: string; error: unknown }[] }> {
  const classDir = sysPath(paths, 'class/block');
  // A sysfs without class/block is not a Linux sysfs: say so rather than report no disks.
  await fs.access(classDir);
  const devices: BlockDeviceRead[] = [];
  const failures: { name: string; error: unknown }[] = [];
  for (const name of await listDir(classDir)) {
    try {
      const device = await readBlockDevice(paths, classDir, name);
      if (device) devices.push(device);
    } catch (error) {
      // A device removed while we read it (hot-unplug) is no failure.
      if (!isMissing(error)) failures.push({ name, error });
    }
  }
  return { devices, failures };
}

async function readBlockDevice(paths: HostPaths, classDir: string, name: string): Promise<BlockDeviceRead | undefined> {
  const dir = await fs.realpath(path.join(classDir, name));
  const nested = deepestPciAddress(dir);
  const pciAddresses = nested ? [nested] : await nvmeSubsystemControllers(paths, dir);
  if (pciAddresses.length === 0) return undefined;
  const isPartition = (await readOptionalText(path.join(dir, 'partition'))) !== undefined;
  const diskDir = isPartition ? path.dirname(dir) : dir;
  const [majorMinor, sectors, model, serial, holderNames] = await Promise.all([
    readText(path.join(dir, 'dev')),
    readText(path.join(dir, 'size')),
    trimmed(path.join(diskDir, 'device/model')),
    trimmed(path.join(diskDir, 'device/serial')),
    listDir(path.join(dir, 'holders')),
  ]);
  const sizeSectors = Number(sectors.trim());
  if (!/^\d+:\d+$/.test(majorMinor.trim()) || sectors.trim() === '' || !Number.isSafeInteger(sizeSectors)) throw new Error(`${dir}: dev or size unreadable`);
  return {
    name,
    majorMinor: majorMinor.trim(),
    kind: isPartition ? 'partition' : 'disk',
    parent: isPartition ? path.basename(diskDir) : undefined,
    // The kernel counts block device sizes in 512-byte sectors whatever the logical block size (block/genhd.c).
    sizeBytes: sizeSectors * 512,
    model,
    serial,
    pciAddresses,
    holders: await Promise.all(holderNames.map((holder) => readHolder(paths, holder))),
  };
}
