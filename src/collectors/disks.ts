import { readBlockDevices, type BlockDeviceRead } from '../host/block-devices.js';
import { errorMessage, fileErrorMessage, listDir, readOptionalText, readText } from '../host/fs.js';
import { procPath, rootPath, type HostPaths } from '../host/paths.js';
import { readPciBus } from '../host/pci-bus.js';
import { parseMountinfo, type Mount } from '../parse/mountinfo.js';
import { parseSwaps, type SwapArea } from '../parse/swaps.js';
import { parseUdevProperties } from '../parse/udev-db.js';
import type { CollectorDefinition } from './types.js';

/** Something on the host that uses a block device: a mount, swap, an md array, LVM/dm, an imported ZFS pool. */
export interface BlockUser {
  /** `mount`, `swap`, `zfs`, or a holder kind (`md`, `lvm`, `crypt`, `multipath`, `dm`, `bcache`, `other`). */
  kind: string;
  /** Mount point, swap path, md/dm name or pool name. */
  name: string;
}

export interface BlockDevice extends Omit<BlockDeviceRead, 'holders' | 'majorMinor'> {
  /** Filesystem or member signature udev's blkid probe found (`ext4`, `zfs_member`, `linux_raid_member`); undefined when unknown. */
  fsType: string | undefined;
  users: BlockUser[];
  /** Whether the host uses the device, or for a disk any of its partitions; undefined when that could not be told (unknown is never "free"). */
  held: boolean | undefined;
}

/** A storage controller (PCI class 01xx), or any other PCI device with block devices behind it (a USB controller). */
export interface BlockController {
  address: string;
  driver: string | undefined;
  blockDevices: number;
}

export interface DiskFacts {
  controllers: BlockController[];
  devices: BlockDevice[];
}

declare module './types.js' {
  interface FactsByCollector {
    disks: DiskFacts;
  }
}

const isStorageClass = (classId: string): boolean => classId.startsWith('0x01');

/** What the host holds open, each read on its own: one unreadable source leaves "held" unknown, not false. */
interface HostUsers {
  mounts: Mount[] | undefined;
  swaps: SwapArea[] | undefined;
  /** Pools the running ZFS module has imported: `/proc/spl/kstat/zfs/<pool>/state` exists for each. */
  zfsPools: Set<string>;
}

async function readHostUsers(paths: HostPaths, errors: string[]): Promise<HostUsers> {
  // PID 1's mount table is the host's, whatever namespace the exporter runs in.
  const mountinfoFile = procPath(paths, '1/mountinfo');
  const swapsFile = procPath(paths, 'swaps');
  let mounts: Mount[] | undefined;
  let swaps: SwapArea[] | undefined;
  try {
    const parsed = parseMountinfo(await readText(mountinfoFile));
    for (const error of parsed.errors) errors.push(`${mountinfoFile}: ${error}`);
    mounts = parsed.errors.length === 0 ? parsed.mounts : undefined;
  } catch (error) {
    errors.push(fileErrorMessage(mountinfoFile, error));
  }
  try {
    // A kernel built without swap support has no /proc/swaps, and no swap.
    const text = await readOptionalText(swapsFile);
    swaps = text === undefined ? [] : parseSwaps(text);
  } catch (error) {
    errors.push(fileErrorMessage(swapsFile, error));
  }
  const kstatDir = procPath(paths, 'spl/kstat/zfs');
  const zfsPools = new Set<string>();
  for (const entry of await listDir(kstatDir)) {
    if ((await readOptionalText(`${kstatDir}/${entry}/state`).catch(() => undefined)) !== undefined) zfsPools.add(entry);
  }
  return { mounts, swaps, zfsPools };
}

const devName = (file: string): string | undefined => (file.startsWith('/dev/') ? file.slice('/dev/'.length) : undefined);

/**
 * What uses one device. ZFS opens its vdevs without a sysfs holder, so pool membership comes from udev's
 * record of the device (blkid's `zfs_member` signature and the pool name as its label) and the pool is
 * held when the ZFS module has it imported. With pools imported and no udev record, ZFS use cannot be told.
 */
async function usersOf(paths: HostPaths, device: BlockDeviceRead, host: HostUsers): Promise<Pick<BlockDevice, 'fsType' | 'serial' | 'users' | 'held'>> {
  const users: BlockUser[] = [];
  for (const mount of host.mounts ?? []) {
    // Block filesystems report the device's numbers; btrfs reports an anonymous one, so its source names the device.
    if (mount.majorMinor === device.majorMinor || devName(mount.source) === device.name) users.push({ kind: 'mount', name: mount.mountPoint });
  }
  for (const swap of host.swaps ?? []) if (swap.type === 'partition' && devName(swap.filename) === device.name) users.push({ kind: 'swap', name: swap.filename });
  for (const holder of device.holders) users.push({ kind: holder.kind, name: holder.name });
  const udevText = await readOptionalText(rootPath(paths, 'run/udev/data', `b${device.majorMinor}`));
  const udev = udevText === undefined ? undefined : parseUdevProperties(udevText);
  const fsType = udev?.get('ID_FS_TYPE') || undefined;
  const pool = fsType === 'zfs_member' ? udev?.get('ID_FS_LABEL') : undefined;
  if (pool !== undefined && host.zfsPools.has(pool)) users.push({ kind: 'zfs', name: pool });
  const zfsUnknown = udev === undefined && host.zfsPools.size > 0;
  const held = users.length > 0 ? true : host.mounts === undefined || host.swaps === undefined || zfsUnknown ? undefined : false;
  // SATA and SAS disks have no serial in sysfs; udev's ID_SERIAL_SHORT is the one lsblk shows.
  return { fsType, serial: device.serial ?? (udev?.get('ID_SERIAL_SHORT') || undefined), users, held };
}

export const disksCollector: CollectorDefinition<'disks'> = {
  name: 'disks',
  description: 'block devices behind storage controllers and what on the host holds them (mounts, swap, md, LVM/dm, ZFS)',
  defaultEnabled: true,
  create() {
    return {
      async collect(context) {
        const { paths } = context;
        const errors: string[] = [];
        const [bus, read, host] = await Promise.all([readPciBus(paths, context), readBlockDevices(paths), readHostUsers(paths, errors)]);
        for (const { name, error } of read.failures) errors.push(`block device ${name}: ${errorMessage(error)}`);
        const devices: BlockDevice[] = [];
        for (const device of read.devices) {
          const { name, kind, parent, sizeBytes, model, pciAddresses } = device;
          devices.push({ name, kind, parent, sizeBytes, model, pciAddresses, ...(await usersOf(paths, device, host)) });
        }
        // The host uses a disk when it uses any of its partitions: a disk reads free only when all of it is.
        for (const disk of devices.filter((device) => device.kind === 'disk' && device.held !== true)) {
          const partitions = devices.filter((device) => device.parent === disk.name).map((device) => device.held);
          if (partitions.includes(true)) disk.held = true;
          else if (partitions.includes(undefined)) disk.held = undefined;
        }
        const counts = new Map<string, number>();
        for (const device of devices) for (const address of device.pciAddresses) counts.set(address, (counts.get(address) ?? 0) + 1);
        const controllers = bus.devices
          .filter((device) => isStorageClass(device.classId) || counts.has(device.address))
          .map((device) => ({ address: device.address, driver: device.driver, blockDevices: counts.get(device.address) ?? 0 }));
        return { facts: { controllers, devices }, errors };
      },
    };
  },
  render({ controllers, devices }, sink) {
    const count = sink.gauge('vfio_pci_device_block_devices', 'Block devices (disks and partitions) the host sees behind the PCI device; 0 for a storage controller on vfio-pci.', ['pci_address']);
    const info = sink.gauge('vfio_block_device_info', 'A block device behind a PCI device; value is always 1.', ['pci_address', 'device', 'type', 'parent', 'model', 'serial', 'fs_type']);
    const size = sink.gauge('vfio_block_device_size_bytes', 'Size of the block device.', ['pci_address', 'device']);
    const holder = sink.gauge('vfio_block_device_holder_info', 'Something on the host that uses the block device: a mount, swap, md, LVM/device-mapper, ZFS pool; value is always 1.', ['pci_address', 'device', 'kind', 'holder']);
    const held = sink.gauge('vfio_block_device_held', '1 when the host uses the block device (mounted, swap, md, LVM/dm, ZFS), 0 when nothing does; absent when that cannot be told.', ['pci_address', 'device']);
    for (const controller of controllers) count({ pci_address: controller.address }, controller.blockDevices);
    for (const device of devices) {
      for (const pci_address of device.pciAddresses) {
        const labels = { pci_address, device: device.name };
        info({ ...labels, type: device.kind, parent: device.parent ?? '', model: device.model ?? '', serial: device.serial ?? '', fs_type: device.fsType ?? '' }, 1);
        size(labels, device.sizeBytes);
        for (const user of device.users) holder({ ...labels, kind: user.kind, holder: user.name }, 1);
        if (device.held !== undefined) held(labels, device.held ? 1 : 0);
      }
    }
  },
};
