import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { parseDriverOverride } from '../parse/sysfs.js';
import { fileTree, isMissing, readOptionalFile, type FileTree } from './fs.js';
import type { HostPaths } from './paths.js';
import { listPciAddresses, pciDevicesDir, readClass, readDriverLink, readIommuGroupLink, readPciIdentity, type PciIdentity } from './sysfs-pci.js';

/** A value, or why it could not be read. */
export type Read<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * One device as added by the kernel and bound to one driver: its real directory and the names in it. The
 * kernel creates a device's attributes when it adds the device (device_add with pci_dev_groups, each
 * group's is_visible asked then: drivers/pci/pci-sysfs.c) and a driver may add its own when it binds, so
 * the directory is listed again only when the device is added again or its driver changes. The same
 * object until then: a key for whatever only those change.
 */
export interface PciDeviceInstance {
  /** The device's real directory under /sys/devices. */
  dir: string;
  attributes: ReadonlySet<string>;
}

/** One PCI device as a sample reads it. Class, group and driver are needed by everyone; a failure past them is the pci collector's alone. */
export interface PciDeviceRead {
  address: string;
  instance: PciDeviceInstance;
  classId: string;
  iommuGroup: string | undefined;
  /** Bound driver (basename of the `driver` link); undefined when unbound. */
  driver: string | undefined;
  identity: Read<PciIdentity>;
  driverOverride: Read<string | undefined>;
}

/** A device whose class, group or driver could not be read: what could be, for IOMMU viability. */
export interface PciDeviceFailure {
  address: string;
  error: unknown;
  iommuGroup: Read<string | undefined>;
  classId: Read<string>;
  driver: Read<string | undefined>;
}

export interface PciBusRead {
  devices: PciDeviceRead[];
  /** Devices not read in full: gone mid-read (ENOENT), or their class, group or driver unreadable. */
  failures: PciDeviceFailure[];
  /**
   * Changes whenever a read differs from the one before (a device added, removed, re-read, rebound, a
   * new driver_override, any failure): collectors whose facts come from an equal read keep their facts.
   */
  generation: number;
}

/** Devices read between two turns of the event loop: reads from sysfs are synchronous, a scrape must not wait for a whole bus. */
const devicesPerTurn = 256;

interface CachedDevice {
  /** The device's real directory under /sys/devices. */
  dir: string;
  inode: number;
  instance: PciDeviceInstance;
  classId: string;
  iommuGroup: string | undefined;
  identity: PciIdentity | undefined;
  driver: string | undefined;
  driverOverride: string | undefined;
}

const attempt = async <T>(read: () => Promise<T>): Promise<Read<T>> => {
  try {
    return { ok: true, value: await read() };
  } catch (error) {
    return { ok: false, error };
  }
};

/** The inode of a directory, or undefined when it is gone. */
const inodeOf = async (tree: FileTree, dir: string): Promise<number | undefined> => {
  try {
    return await tree.inode(dir);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
};

type DeviceOutcome = { device: PciDeviceRead; unchanged: boolean } | { failure: PciDeviceFailure };

/**
 * Reads the PCI bus, keeping each device's identity between samples. A device's directory gets a
 * new inode when the device is removed and added again (hot-plug, VFs torn down and re-created;
 * kernfs does not reuse inode numbers), so the identity is re-read only then; the driver binding and
 * driver_override, which change at any time, are read every time. (`numa_node` is writable, but only
 * as a boot-time firmware workaround that taints the kernel; it counts as identity here.) Reads go to
 * the device's real directory, resolved once, not through the bus's symlinks.
 */
class PciBusReader {
  private devices = new Map<string, CachedDevice>();
  private last: { sample: object; read: Promise<PciBusRead> } | undefined;
  private generation = 0;

  /** The bus as `sample` sees it: read once, whichever of the sample's collectors asks first. */
  read(paths: HostPaths, sample: object): Promise<PciBusRead> {
    if (this.last?.sample !== sample) this.last = { sample, read: this.readAll(paths) };
    return this.last.read;
  }

  /** One device, and whether it reads as it did last time. */
  private async readDevice(tree: FileTree, busEntry: string, address: string, next: Map<string, CachedDevice>): Promise<DeviceOutcome> {
    const cached = this.devices.get(busEntry);
    let dir = cached?.dir;
    let inode: number | undefined;
    try {
      inode = dir === undefined ? undefined : await inodeOf(tree, dir);
      if (dir === undefined || inode === undefined) {
        // New, or gone from where it was (removed, or added again under another bridge).
        dir = await tree.realpath(busEntry);
        inode = await tree.inode(dir);
      }
    } catch (error) {
      const failed = { ok: false as const, error };
      return { failure: { address, error, iommuGroup: failed, classId: failed, driver: failed } };
    }
    const deviceDir = dir;
    const known = cached !== undefined && cached.dir === dir && cached.inode === inode ? cached : undefined;
    const [iommuGroup, classId, driver] = await Promise.all([
      known ? { ok: true as const, value: known.iommuGroup } : attempt(() => readIommuGroupLink(tree, deviceDir)),
      known ? { ok: true as const, value: known.classId } : attempt(() => readClass(tree, deviceDir)),
      attempt(() => readDriverLink(tree, deviceDir)),
    ]);
    if (!iommuGroup.ok || !classId.ok || !driver.ok) {
      const error = [iommuGroup, classId, driver].find((read) => !read.ok)!.error;
      return { failure: { address, error, iommuGroup, classId, driver } };
    }
    const listed: Read<PciDeviceInstance> =
      known !== undefined && known.driver === driver.value
        ? { ok: true, value: known.instance }
        : await attempt(async () => ({ dir: deviceDir, attributes: new Set(await tree.list(deviceDir)) }));
    if (!listed.ok) return { failure: { address, error: listed.error, iommuGroup, classId, driver } };
    const instance = listed.value;
    const [identity, driverOverride] = await Promise.all([
      known?.identity ? { ok: true as const, value: known.identity } : attempt(() => readPciIdentity(tree, deviceDir, classId.value, iommuGroup.value)),
      // Kernels before 3.16 have no driver_override.
      instance.attributes.has('driver_override')
        ? attempt(async () => {
            const text = await readOptionalFile(tree, `${deviceDir}/driver_override`);
            return text === undefined ? undefined : parseDriverOverride(text);
          })
        : { ok: true as const, value: undefined },
    ]);
    const overrideValue = driverOverride.ok ? driverOverride.value : undefined;
    next.set(busEntry, {
      dir,
      inode,
      instance,
      classId: classId.value,
      iommuGroup: iommuGroup.value,
      identity: identity.ok ? identity.value : undefined,
      driver: driver.value,
      driverOverride: overrideValue,
    });
    const unchanged = known?.identity !== undefined && driverOverride.ok && known.driver === driver.value && known.driverOverride === overrideValue;
    return {
      device: { address, instance, classId: classId.value, iommuGroup: iommuGroup.value, driver: driver.value, identity, driverOverride },
      unchanged,
    };
  }

  private async readAll(paths: HostPaths): Promise<PciBusRead> {
    const busDir = pciDevicesDir(paths);
    const tree = await fileTree(paths.sysfs);
    const addresses = await listPciAddresses(paths);
    const next = new Map<string, CachedDevice>();
    const devices: PciDeviceRead[] = [];
    const failures: PciDeviceFailure[] = [];
    let unchanged = addresses.length === this.devices.size;
    // Synchronous reads one device after the other, with a turn of the event loop between batches; through
    // the thread pool, a batch at once.
    for (let start = 0; start < addresses.length; start += devicesPerTurn) {
      if (start > 0) await yieldToEventLoop();
      const batch = addresses.slice(start, start + devicesPerTurn);
      const read = (address: string): Promise<DeviceOutcome> => this.readDevice(tree, `${busDir}/${address}`, address, next);
      const outcomes: DeviceOutcome[] = [];
      if (tree.inMemory) for (const address of batch) outcomes.push(await read(address));
      else outcomes.push(...(await Promise.all(batch.map(read))));
      for (const outcome of outcomes) {
        if ('failure' in outcome) {
          failures.push(outcome.failure);
        } else {
          devices.push(outcome.device);
          unchanged &&= outcome.unchanged;
        }
      }
    }
    this.devices = next;
    if (!unchanged || failures.length > 0) this.generation++;
    return { devices, failures, generation: this.generation };
  }
}

const readers = new WeakMap<HostPaths, PciBusReader>();

/**
 * The PCI bus as one sample reads it. The pci and iommu collectors both need every device's class,
 * group and driver: the first of them to ask in a sample reads the bus, the other gets the same read
 * (`sample` is the sample's collect context). Identities are kept per `paths` between samples.
 */
export function readPciBus(paths: HostPaths, sample: object): Promise<PciBusRead> {
  let reader = readers.get(paths);
  if (!reader) {
    reader = new PciBusReader();
    readers.set(paths, reader);
  }
  return reader.read(paths, sample);
}
