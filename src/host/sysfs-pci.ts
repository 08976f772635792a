import { statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { isPciAddress, parseDriverOverride, parseHexAttribute, parseNumaNode } from '../parse/sysfs.js';
import { readAttributeSync, readLinkBasenameSync, readOptionalAttributeSync } from './fs.js';
import { sysPath, type HostPaths } from './paths.js';

/** What the kernel fixes when it adds a PCI device: it stays the same until the device is removed. */
export interface PciIdentity {
  vendorId: string;
  deviceId: string;
  subsystemVendorId: string;
  subsystemDeviceId: string;
  classId: string;
  revision: string;
  numaNode: string;
  iommuGroup: string | undefined;
}

export interface PciDeviceAttributes extends PciIdentity {
  address: string;
  /** Bound driver (basename of the `driver` link); undefined when unbound. */
  driver: string | undefined;
  driverOverride: string | undefined;
}

export const pciDevicesDir = (paths: HostPaths): string => sysPath(paths, 'bus/pci/devices');

/** Addresses of every PCI device the kernel lists, sorted. A missing bus directory means a wrong --path.sysfs: it throws. */
export async function listPciAddresses(paths: HostPaths): Promise<string[]> {
  return (await readdir(pciDevicesDir(paths))).filter(isPciAddress).sort();
}

const hexAttribute = (dir: string, name: string, digits: number): string => parseHexAttribute(readAttributeSync(`${dir}/${name}`), digits, name);

/** Reads a device's whole identity from its sysfs directory. */
export function readPciIdentity(dir: string): PciIdentity {
  const numaText = readOptionalAttributeSync(`${dir}/numa_node`);
  return {
    vendorId: hexAttribute(dir, 'vendor', 4),
    deviceId: hexAttribute(dir, 'device', 4),
    subsystemVendorId: hexAttribute(dir, 'subsystem_vendor', 4),
    subsystemDeviceId: hexAttribute(dir, 'subsystem_device', 4),
    classId: hexAttribute(dir, 'class', 6),
    revision: hexAttribute(dir, 'revision', 2),
    // Kernels built without NUMA have no numa_node attribute; -1 is the kernel's own "unknown".
    numaNode: numaText === undefined ? '-1' : parseNumaNode(numaText),
    iommuGroup: readLinkBasenameSync(`${dir}/iommu_group`),
  };
}

/** The part of the identity IOMMU viability needs: the class (bridges are exempt) and the group. */
export const readPciGroupAndClass = (dir: string): Pick<PciIdentity, 'classId' | 'iommuGroup'> => ({
  classId: hexAttribute(dir, 'class', 6),
  iommuGroup: readLinkBasenameSync(`${dir}/iommu_group`),
});

export interface PciDeviceState<Identity> {
  address: string;
  identity: Identity;
  driver: string | undefined;
  /** Only read by readers built with `readDriverOverride`. */
  driverOverride: string | undefined;
}

/** Identity of each device directory, with the directory's inode when it was read. */
type IdentityCache<Identity> = Map<string, { inode: number; identity: Identity }>;

/** Devices read between two turns of the event loop: reads are synchronous, a scrape must not wait for a whole bus. */
const devicesPerTurn = 256;

/**
 * Reads PCI devices from sysfs, keeping each device's identity between samples. A device's
 * directory gets a new inode when the device is removed and added again (hot-plug, VFs torn down
 * and re-created), so the identity is re-read only then; the driver binding and driver_override,
 * which change at any time, are read on every sample. (`numa_node` is writable, but only as a
 * boot-time firmware workaround that taints the kernel; it counts as identity here.)
 */
export class PciDeviceReader<Identity> {
  private identities: IdentityCache<Identity> = new Map();

  constructor(private readonly options: { readIdentity: (dir: string) => Identity; readDriverOverride: boolean }) {}

  /** One device. Throws (ENOENT) when the device went away while being read. */
  private readDevice(paths: HostPaths, address: string, next: IdentityCache<Identity>): PciDeviceState<Identity> {
    const dir = sysPath(paths, 'bus/pci/devices', address);
    const { ino } = statSync(dir);
    const cached = this.identities.get(dir);
    const identity = cached?.inode === ino ? cached.identity : this.options.readIdentity(dir);
    next.set(dir, { inode: ino, identity });
    const overrideText = this.options.readDriverOverride ? readOptionalAttributeSync(`${dir}/driver_override`) : undefined;
    return {
      address,
      identity,
      driver: readLinkBasenameSync(`${dir}/driver`),
      driverOverride: overrideText === undefined ? undefined : parseDriverOverride(overrideText),
    };
  }

  /**
   * Reads every listed device, yielding to the event loop between batches. A device that fails is
   * handed to `failed` and the others are still read; devices gone from the bus leave the cache.
   */
  async readAll(paths: HostPaths, failed: (address: string, error: unknown) => void): Promise<PciDeviceState<Identity>[]> {
    const addresses = await listPciAddresses(paths);
    const next: IdentityCache<Identity> = new Map();
    const devices: PciDeviceState<Identity>[] = [];
    for (let index = 0; index < addresses.length; index++) {
      if (index > 0 && index % devicesPerTurn === 0) await yieldToEventLoop();
      const address = addresses[index]!;
      try {
        devices.push(this.readDevice(paths, address, next));
      } catch (error) {
        failed(address, error);
      }
    }
    this.identities = next;
    return devices;
  }
}
