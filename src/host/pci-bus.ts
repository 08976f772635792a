import { realpathSync, statSync } from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { parseDriverOverride } from '../parse/sysfs.js';
import { isMissing, readLinkBasenameSync, readOptionalKernelFileSync } from './fs.js';
import type { HostPaths } from './paths.js';
import { listPciAddresses, pciDevicesDir, readPciGroupAndClass, readPciIdentity, type PciGroupAndClass, type PciIdentity } from './sysfs-pci.js';

/** A value, or why it could not be read. */
export type Read<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** One PCI device as a sample reads it. Class and group are needed by everyone; a failure past them is the pci collector's alone. */
export interface PciDeviceRead extends PciGroupAndClass {
  address: string;
  /** Bound driver (basename of the `driver` link); undefined when unbound. */
  driver: string | undefined;
  identity: Read<PciIdentity>;
  driverOverride: Read<string | undefined>;
}

export interface PciBusRead {
  devices: PciDeviceRead[];
  /** Devices not read at all: gone mid-read (ENOENT), or their class, group or driver unreadable. */
  failures: { address: string; error: unknown }[];
  /**
   * Changes whenever a read differs from the one before (a device added, removed, re-read, rebound, a
   * new driver_override, any failure): collectors whose facts come from an equal read keep their facts.
   */
  generation: number;
}

/** Devices read between two turns of the event loop: reads are synchronous, a scrape must not wait for a whole bus. */
const devicesPerTurn = 256;

interface CachedDevice {
  /** The device's real directory under /sys/devices. */
  dir: string;
  inode: number;
  groupAndClass: PciGroupAndClass;
  identity: PciIdentity | undefined;
  driver: string | undefined;
  driverOverride: string | undefined;
}

const attempt = <T>(read: () => T): Read<T> => {
  try {
    return { ok: true, value: read() };
  } catch (error) {
    return { ok: false, error };
  }
};

/** The inode of a directory, or undefined when it is gone. */
const inodeOf = (dir: string): number | undefined => {
  try {
    return statSync(dir).ino;
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
};

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
  private readDevice(busEntry: string, address: string, next: Map<string, CachedDevice>): { device: PciDeviceRead; unchanged: boolean } {
    const cached = this.devices.get(busEntry);
    let dir = cached?.dir;
    let inode = dir === undefined ? undefined : inodeOf(dir);
    if (dir === undefined || inode === undefined) {
      // New, or gone from where it was (removed, or added again under another bridge).
      dir = realpathSync.native(busEntry);
      inode = statSync(dir).ino;
    }
    const known = cached !== undefined && cached.dir === dir && cached.inode === inode ? cached : undefined;
    const groupAndClass = known?.groupAndClass ?? readPciGroupAndClass(dir);
    const identity: Read<PciIdentity> = known?.identity ? { ok: true, value: known.identity } : attempt(() => readPciIdentity(dir, groupAndClass));
    const driver = readLinkBasenameSync(`${dir}/driver`);
    const driverOverride = attempt(() => {
      const text = readOptionalKernelFileSync(`${dir}/driver_override`);
      return text === undefined ? undefined : parseDriverOverride(text);
    });
    const overrideValue = driverOverride.ok ? driverOverride.value : undefined;
    next.set(busEntry, { dir, inode, groupAndClass, identity: identity.ok ? identity.value : undefined, driver, driverOverride: overrideValue });
    const unchanged = known?.identity !== undefined && driverOverride.ok && known.driver === driver && known.driverOverride === overrideValue;
    return { device: { address, ...groupAndClass, driver, identity, driverOverride }, unchanged };
  }

  private async readAll(paths: HostPaths): Promise<PciBusRead> {
    const busDir = pciDevicesDir(paths);
    const addresses = await listPciAddresses(paths);
    const next = new Map<string, CachedDevice>();
    const devices: PciDeviceRead[] = [];
    const failures: PciBusRead['failures'] = [];
    let unchanged = addresses.length === this.devices.size;
    for (let index = 0; index < addresses.length; index++) {
      if (index > 0 && index % devicesPerTurn === 0) await yieldToEventLoop();
      const address = addresses[index]!;
      try {
        const read = this.readDevice(`${busDir}/${address}`, address, next);
        devices.push(read.device);
        unchanged &&= read.unchanged;
      } catch (error) {
        failures.push({ address, error });
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
