import { readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { isPciAddress, parseHexAttribute, parseNumaNode } from '../parse/sysfs.js';
import { readKernelFileSync, readLinkBasenameSync, readOptionalKernelFileSync } from './fs.js';
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

/**
 * The parent PCI device of a mediated device: `bus/mdev/devices/<uuid>` links into the parent's sysfs
 * directory (drivers/vfio/mdev). Undefined when the link is missing or its parent is not a PCI device.
 */
export async function mdevParentAddress(paths: HostPaths, uuid: string): Promise<string | undefined> {
  try {
    const parent = path.basename(path.dirname(await readlink(sysPath(paths, 'bus/mdev/devices', uuid))));
    return isPciAddress(parent) ? parent : undefined;
  } catch {
    return undefined;
  }
}

const hexAttribute = (dir: string, name: string, digits: number): string => parseHexAttribute(readKernelFileSync(`${dir}/${name}`), digits, name);

/** The part of the identity IOMMU viability needs: the class (bridges are exempt) and the group. */
export type PciGroupAndClass = Pick<PciIdentity, 'classId' | 'iommuGroup'>;

export const readPciGroupAndClass = (dir: string): PciGroupAndClass => ({
  classId: hexAttribute(dir, 'class', 6),
  iommuGroup: readLinkBasenameSync(`${dir}/iommu_group`),
});

/** The rest of a device's identity, once its class and group are known. */
export function readPciIdentity(dir: string, { classId, iommuGroup }: PciGroupAndClass): PciIdentity {
  const numaText = readOptionalKernelFileSync(`${dir}/numa_node`);
  return {
    vendorId: hexAttribute(dir, 'vendor', 4),
    deviceId: hexAttribute(dir, 'device', 4),
    subsystemVendorId: hexAttribute(dir, 'subsystem_vendor', 4),
    subsystemDeviceId: hexAttribute(dir, 'subsystem_device', 4),
    classId,
    revision: hexAttribute(dir, 'revision', 2),
    // Kernels built without NUMA have no numa_node attribute; -1 is the kernel's own "unknown".
    numaNode: numaText === undefined ? '-1' : parseNumaNode(numaText),
    iommuGroup,
  };
}
