import { readdir } from 'node:fs/promises';
import { isPciAddress, parseDriverOverride, parseHexAttribute, parseNumaNode } from '../parse/sysfs.js';
import { readLinkBasename, readOptionalText, readText } from './fs.js';
import { sysPath, type HostPaths } from './paths.js';

export interface PciDeviceAttributes {
  address: string;
  vendorId: string;
  deviceId: string;
  subsystemVendorId: string;
  subsystemDeviceId: string;
  classId: string;
  revision: string;
  numaNode: string;
  /** Bound driver (basename of the `driver` link); undefined when unbound. */
  driver: string | undefined;
  driverOverride: string | undefined;
  iommuGroup: string | undefined;
}

export const pciDevicesDir = (paths: HostPaths): string => sysPath(paths, 'bus/pci/devices');

/** Addresses of every PCI device the kernel lists, sorted. A missing bus directory means a wrong --path.sysfs: it throws. */
export async function listPciAddresses(paths: HostPaths): Promise<string[]> {
  return (await readdir(pciDevicesDir(paths))).filter(isPciAddress).sort();
}

export async function readPciDriver(paths: HostPaths, address: string): Promise<string | undefined> {
  return readLinkBasename(sysPath(paths, 'bus/pci/devices', address, 'driver'));
}

export async function readPciClass(paths: HostPaths, address: string): Promise<string> {
  return parseHexAttribute(await readText(sysPath(paths, 'bus/pci/devices', address, 'class')), 6, 'class');
}

/** Reads one device's attributes. Throws (ENOENT) when the device went away while being read. */
export async function readPciDevice(paths: HostPaths, address: string): Promise<PciDeviceAttributes> {
  const attribute = (name: string): Promise<string> => readText(sysPath(paths, 'bus/pci/devices', address, name));
  const hex = async (name: string, digits: number): Promise<string> => parseHexAttribute(await attribute(name), digits, name);
  const [vendorId, deviceId, subsystemVendorId, subsystemDeviceId, classId, revision, numaText, driverOverrideText, driver, iommuGroup] =
    await Promise.all([
      hex('vendor', 4),
      hex('device', 4),
      hex('subsystem_vendor', 4),
      hex('subsystem_device', 4),
      readPciClass(paths, address),
      hex('revision', 2),
      readOptionalText(sysPath(paths, 'bus/pci/devices', address, 'numa_node')),
      readOptionalText(sysPath(paths, 'bus/pci/devices', address, 'driver_override')),
      readPciDriver(paths, address),
      readLinkBasename(sysPath(paths, 'bus/pci/devices', address, 'iommu_group')),
    ]);
  return {
    address,
    vendorId,
    deviceId,
    subsystemVendorId,
    subsystemDeviceId,
    classId,
    revision,
    // Kernels built without NUMA have no numa_node attribute; -1 is the kernel's own "unknown".
    numaNode: numaText === undefined ? '-1' : parseNumaNode(numaText),
    driver,
    driverOverride: driverOverrideText === undefined ? undefined : parseDriverOverride(driverOverrideText),
    iommuGroup,
  };
}
