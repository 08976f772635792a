import { readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { isPciAddress, parseHexAttribute, parseNumaNode } from '../parse/sysfs.js';
import { isMissing, readOptionalFile, type FileTree } from './fs.js';
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

const hexAttribute = async (tree: FileTree, dir: string, name: string, digits: number): Promise<string> =>
  parseHexAttribute(await tree.read(`${dir}/${name}`), digits, name);

/**
 * The name a device link points at, or undefined when the link does not exist. The kernel makes `driver` point
 * into `.../drivers/<name>` (drivers/base/bus.c, driver_sysfs_add) and `iommu_group` into
 * `.../iommu_groups/<id>` (drivers/iommu/iommu.c, iommu_group_add_device): any other target (a loop, a
 * stray link in a copied tree) is an error, not a name.
 */
async function linkedName(tree: FileTree, link: string, parent: string, name: RegExp): Promise<string | undefined> {
  let target: string;
  try {
    target = await tree.readLink(link);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
  const base = path.posix.basename(target);
  if (path.posix.basename(path.posix.dirname(target)) !== parent || !name.test(base))
    throw new Error(`${link}: link to ${JSON.stringify(target.slice(0, 80))} does not name an entry of ${parent}`);
  return base;
}

export const readIommuGroupLink = (tree: FileTree, dir: string): Promise<string | undefined> =>
  linkedName(tree, `${dir}/iommu_group`, 'iommu_groups', /^\d+$/);

export const readDriverLink = (tree: FileTree, dir: string): Promise<string | undefined> =>
  linkedName(tree, `${dir}/driver`, 'drivers', /^[^\s/]+$/);

export const readClass = (tree: FileTree, dir: string): Promise<string> => hexAttribute(tree, dir, 'class', 6);

/** The rest of a device's identity, once its class and group are known. */
export async function readPciIdentity(tree: FileTree, dir: string, classId: string, iommuGroup: string | undefined): Promise<PciIdentity> {
  const [vendorId, deviceId, subsystemVendorId, subsystemDeviceId, revision, numaText] = await Promise.all([
    hexAttribute(tree, dir, 'vendor', 4),
    hexAttribute(tree, dir, 'device', 4),
    hexAttribute(tree, dir, 'subsystem_vendor', 4),
    hexAttribute(tree, dir, 'subsystem_device', 4),
    hexAttribute(tree, dir, 'revision', 2),
    readOptionalFile(tree, `${dir}/numa_node`),
  ]);
  return {
    vendorId,
    deviceId,
    subsystemVendorId,
    subsystemDeviceId,
    classId,
    revision,
    // Kernels built without NUMA have no numa_node attribute; -1 is the kernel's own "unknown".
    numaNode: numaText === undefined ? '-1' : parseNumaNode(numaText),
    iommuGroup,
  };
}
