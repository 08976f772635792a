import { errorMessage, isMissing } from '../host/fs.js';
import { loadPciIds } from '../host/pciids.js';
import { readPciBus } from '../host/pci-bus.js';
import type { PciDeviceAttributes, PciIdentity } from '../host/sysfs-pci.js';
import { detached } from '../parse/detach.js';
import { lookupPciNames, type PciNames } from '../parse/pciids.js';
import type { CollectorDefinition } from './types.js';

export interface PciDevice extends PciDeviceAttributes, PciNames {
  vfioBound: boolean;
}

export interface PciFacts {
  devices: PciDevice[];
}

declare module './types.js' {
  interface FactsByCollector {
    pci: PciFacts;
  }
}

/** vfio-pci and the vendor variant drivers (mlx5_vfio_pci, nvgrace_gpu_vfio_pci, ...) all carry `vfio`. */
export const isVfioDriver = (driver: string | undefined): boolean => driver !== undefined && driver.includes('vfio');

export const pciCollector: CollectorDefinition<'pci'> = {
  name: 'pci',
  description: 'PCI devices: ids, names, bound driver, driver_override',
  defaultEnabled: true,
  create(_settings, log) {
    // The names of the kinds of device this host has, by vendor, device and class id. The whole of pci.ids
    // parsed is ~9 MB of heap; it is read when a kind of device not seen before shows up, and let go.
    const names = new Map<string, PciNames>();
    const namesKey = ({ vendorId, deviceId, classId }: PciIdentity): string => `${vendorId}:${deviceId}:${classId}`;
    let last: { generation: number; facts: PciFacts } | undefined;
    // Each device as last built, with the identity read it was built from: a device that reads as before is
    // the same object again, so that its series are replayed rather than formatted (a rebind formats one device).
    let built = new Map<string, { identity: PciIdentity; device: PciDevice }>();
    return {
      async collect(context) {
        const { paths } = context;
        const errors: string[] = [];
        const bus = await readPciBus(paths, context);
        // The bus reads as it did when these facts were made: the same facts again, whose text the sampler keeps.
        if (last?.generation === bus.generation) return { facts: last.facts, errors };
        const unnamed = bus.devices.flatMap(({ identity }) => (identity.ok && !names.has(namesKey(identity.value)) ? [identity.value] : []));
        if (unnamed.length > 0) {
          const { ids, file } = await loadPciIds(paths);
          if (!file) log.warn('pci.ids not found; device names will be empty', { collector: 'pci' });
          for (const identity of unnamed) {
            const found = lookupPciNames(ids, identity.vendorId, identity.deviceId, identity.classId);
            names.set(namesKey(identity), { vendorName: detached(found.vendorName), deviceName: detached(found.deviceName), className: detached(found.className) });
          }
        }
        for (const { address, error } of bus.failures) {
          // A device removed while we read it (hot-unplug, SR-IOV VFs torn down) is not an error.
          if (isMissing(error)) log.debug('PCI device vanished during sample', { collector: 'pci', device: address });
          else errors.push(`${address}: ${errorMessage(error)}`);
        }
        const devices: PciDevice[] = [];
        const nextBuilt = new Map<string, { identity: PciIdentity; device: PciDevice }>();
        for (const { address, driver, identity, driverOverride } of bus.devices) {
          const failed = !identity.ok ? identity.error : !driverOverride.ok ? driverOverride.error : undefined;
          if (!identity.ok || !driverOverride.ok) {
            errors.push(`${address}: ${errorMessage(failed)}`);
            continue;
          }
          const previous = built.get(address);
          const device =
            previous?.identity === identity.value && previous.device.driver === driver && previous.device.driverOverride === driverOverride.value
              ? previous.device
              : {
                  address,
                  ...identity.value,
                  driver,
                  driverOverride: driverOverride.value,
                  ...names.get(namesKey(identity.value))!,
                  vfioBound: isVfioDriver(driver),
                };
          nextBuilt.set(address, { identity: identity.value, device });
          devices.push(device);
        }
        built = nextBuilt;
        const facts = { devices };
        last = errors.length === 0 ? { generation: bus.generation, facts } : undefined;
        return { facts, errors };
      },
    };
  },
  render({ devices }, sink) {
    const info = sink.gauge('vfio_pci_device_info', 'PCI device identity; value is always 1.', [
      'pci_address', 'vendor_id', 'device_id', 'subsystem_vendor_id', 'subsystem_device_id', 'class_id',
      'revision', 'vendor_name', 'device_name', 'class_name', 'iommu_group', 'numa_node',
    ]);
    const driver = sink.gauge('vfio_pci_device_driver_info', 'Driver bound to the PCI device ("none" when unbound).', ['pci_address', 'driver']);
    const vfioBound = sink.gauge('vfio_pci_device_vfio_bound', '1 when the device is bound to vfio-pci or a vfio variant driver.', ['pci_address']);
    const override = sink.gauge('vfio_pci_device_driver_override_info', 'driver_override set on the PCI device; value is always 1.', ['pci_address', 'driver_override']);
    for (const device of devices)
      sink.group(device, () => {
        const pci_address = device.address;
        info(
          {
            pci_address,
            vendor_id: device.vendorId,
            device_id: device.deviceId,
            subsystem_vendor_id: device.subsystemVendorId,
            subsystem_device_id: device.subsystemDeviceId,
            class_id: device.classId,
            revision: device.revision,
            vendor_name: device.vendorName,
            device_name: device.deviceName,
            class_name: device.className,
            iommu_group: device.iommuGroup ?? '',
            numa_node: device.numaNode,
          },
          1,
        );
        driver({ pci_address, driver: device.driver ?? 'none' }, 1);
        vfioBound({ pci_address }, device.vfioBound ? 1 : 0);
        if (device.driverOverride !== undefined) override({ pci_address, driver_override: device.driverOverride }, 1);
      });
  },
};
