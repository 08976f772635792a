import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { kernelAtLeast } from '../parse/kernel-release.js';
import { parseDriverOverride } from '../parse/sysfs.js';
import { fileTree, isMissing, readOptionalFile, type FileTree } from './fs.js';
import { procPath, sysPath, type HostPaths } from './paths.js';
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

/**
 * How long the bus may go without a stat of every device directory and a readlink of every `driver` while
 * the uevent sequence number stands still. A probe that fails sends no uevent: a `driver` link read while it
 * ran is corrected within this time.
 */
const quietBusMaxAgeMs = 5 * 60_000;

/**
 * The kernel's uevent sequence number, counted up for every uevent it sends (lib/kobject_uevent.c,
 * kobject_uevent_env), or undefined when it cannot stand for the bus: a device added or removed sends one
 * (device_add, device_del), and since 4.14 a driver bound or unbound does too (drivers/base/dd.c,
 * driver_bound and __device_release_driver); before 4.14, or without the file or the release, every sample
 * reads every device.
 */
async function ueventSeqnum(paths: HostPaths, sysfs: FileTree): Promise<string | undefined> {
  try {
    const procfs = await fileTree(paths.procfs);
    const [release, seqnum] = await Promise.all([
      readOptionalFile(procfs, procPath(paths, 'sys/kernel/osrelease')),
      readOptionalFile(sysfs, sysPath(paths, 'kernel/uevent_seqnum')),
    ]);
    return release !== undefined && kernelAtLeast(release, 4, 14) === true && seqnum !== undefined && /^\d+\n?$/.test(seqnum) ? seqnum.trim() : undefined;
  } catch {
    // Unreadable: the devices themselves say what is wrong, if anything.
    return undefined;
  }
}

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
 * kernfs does not reuse inode numbers), so the identity is re-read only then. driver_override, which
 * root writes at any time without an event, is read every time; the directory's inode and the driver
 * binding whenever the kernel's uevent sequence number moved (ueventSeqnum), and at least every five
 * minutes. (`numa_node` is writable, but only as a boot-time firmware workaround that taints the kernel;
 * it counts as identity here.) Reads go to the device's real directory, resolved once, not through the
 * bus's symlinks.
 */
class PciBusReader {
  private devices = new Map<string, CachedDevice>();
  private last: { sample: object; read: Promise<PciBusRead> } | undefined;
  private generation = 0;
  /** The uevent sequence number before the last read of every device's directory and driver, and its time. */
  private fullRead: { seqnum: string; at: number } | undefined;

  /** The bus as `sample` sees it: read once, whichever of the sample's collectors asks first. */
  read(paths: HostPaths, sample: object): Promise<PciBusRead> {
    if (this.last?.sample !== sample) this.last = { sample, read: this.readAll(paths) };
    return this.last.read;
  }

  /**
   * One device, and whether it reads as it did last time. On a `quiet` bus no device was added, removed,
   * bound or unbound since its last full read: its directory and driver are as then.
   */
  private async readDevice(tree: FileTree, busEntry: string, address: string, next: Map<string, CachedDevice>, quiet: boolean): Promise<DeviceOutcome> {
    const cached = this.devices.get(busEntry);
    let dir = cached?.dir;
    let inode: number | undefined;
    try {
      inode = dir === undefined ? undefined : quiet ? cached?.inode : await inodeOf(tree, dir);
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
      quiet && known ? { ok: true as const, value: known.driver } : attempt(() => readDriverLink(tree, deviceDir)),
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
    const startedAt = Date.now();
    // Read before the devices: an event while they are read makes the next sample read them all again.
    const seqnum = await ueventSeqnum(paths, tree);
    const addresses = await listPciAddresses(paths);
    const quiet =
      seqnum !== undefined &&
      this.fullRead?.seqnum === seqnum &&
      Date.now() - this.fullRead.at < quietBusMaxAgeMs &&
      addresses.length === this.devices.size &&
      addresses.every((address) => this.devices.has(`${busDir}/${address}`));
    const next = new Map<string, CachedDevice>();
    const devices: PciDeviceRead[] = [];
    const failures: PciDeviceFailure[] = [];
    let unchanged = addresses.length === this.devices.size;
    // Synchronous reads one device after the other, with a turn of the event loop between batches; through
    // the thread pool, a batch at once.
    for (let start = 0; start < addresses.length; start += devicesPerTurn) {
      if (start > 0) await yieldToEventLoop();
      const batch = addresses.slice(start, start + devicesPerTurn);
      const read = (address: string): Promise<DeviceOutcome> => this.readDevice(tree, `${busDir}/${address}`, address, next, quiet);
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
    if (failures.length > 0 || seqnum === undefined) this.fullRead = undefined;
    else if (!quiet) this.fullRead = { seqnum, at: startedAt };
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
