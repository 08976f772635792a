import { readOptionalText } from '../host/fs.js';
import { procPath } from '../host/paths.js';
import { aerSeverities, readPciHealth, type PciHealthRead } from '../host/sysfs-pci-health.js';
import { kernelHasResetMethod, type AerCounters } from '../parse/pci-health.js';
import { readEachPciDevice } from './each-pci-device.js';
import type { CollectorDefinition } from './types.js';

export interface PciHealthDevice extends Omit<PciHealthRead, 'virtfns'> {
  address: string;
  /** A virtual function's index under its physical function (`virtfnN`). */
  vfIndex: number | undefined;
}

export interface PciHealthFacts {
  devices: PciHealthDevice[];
}

declare module './types.js' {
  interface FactsByCollector {
    pci_health: PciHealthFacts;
  }
}

const sameList = <T>(a: readonly T[] | undefined, b: readonly T[] | undefined, same: (x: T, y: T) => boolean): boolean =>
  a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((x, index) => same(x, b[index]!)));

const sameAer = (a: AerCounters | undefined, b: AerCounters | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.messages === b.messages && sameList(a.errors, b.errors, (x, y) => x.error === y.error && x.count === y.count));

/** Whether two reads of a device say the same: then the earlier object stands, and its text with it. */
const sameHealth = (a: PciHealthDevice, b: PciHealthDevice): boolean =>
  a.address === b.address &&
  a.parent === b.parent &&
  a.physfn === b.physfn &&
  a.vfIndex === b.vfIndex &&
  a.sriov?.totalVfs === b.sriov?.totalVfs &&
  a.sriov?.numVfs === b.sriov?.numVfs &&
  sameList(a.resetMethods, b.resetMethods, (x, y) => x === y) &&
  aerSeverities.every((severity) => sameAer(a.aer[severity], b.aer[severity]) && a.aerRootPort[severity] === b.aerRootPort[severity]);

export const pciHealthCollector: CollectorDefinition<'pci_health'> = {
  name: 'pci_health',
  description: 'PCI device reset methods, PCIe AER error counters, SR-IOV functions and upstream bridges',
  defaultEnabled: true,
  create(_settings, log) {
    // A sample whose devices all read as before hands back the same facts, whose text the sampler keeps.
    let last: PciHealthFacts | undefined;
    return {
      async collect(context) {
        const release = await readOptionalText(procPath(context.paths, 'sys/kernel/osrelease'));
        const hasResetMethod = release === undefined ? undefined : kernelHasResetMethod(release);
        const vfIndexes = new Map<string, number>();
        const { values: devices, errors } = await readEachPciDevice(context, 'pci_health', log, async (tree, { address, instance }): Promise<PciHealthDevice> => {
          const { virtfns, ...read } = await readPciHealth(tree, instance, hasResetMethod);
          for (const { index, address: vf } of virtfns) vfIndexes.set(vf, index);
          return { address, ...read, vfIndex: undefined };
        });
        for (const device of devices) if (device.physfn !== undefined) device.vfIndex = vfIndexes.get(device.address);
        if (last === undefined || last.devices.length !== devices.length || last.devices.some((device, index) => !sameHealth(device, devices[index]!))) last = { devices };
        return { facts: last, errors };
      },
    };
  },
  render({ devices }, sink) {
    const parent = sink.gauge('vfio_pci_device_parent_info', 'The bridge (upstream port) a PCI device sits behind; value is always 1.', ['pci_address', 'parent_address']);
    const resetMethods = sink.gauge(
      'vfio_pci_device_reset_methods',
      'Reset methods the kernel has for the PCI device (reset_method); 0 = none, absent = unknown (kernel before 5.15).',
      ['pci_address'],
    );
    const resetMethod = sink.gauge('vfio_pci_device_reset_method_info', 'One reset method the kernel has for the PCI device; value is always 1.', ['pci_address', 'reset_method']);
    const aerErrors = sink.counter('vfio_pci_device_aer_errors_total', 'PCIe AER errors seen by the device, by severity and kind (aer_dev_*).', ['pci_address', 'severity', 'error']);
    const aerMessages = sink.counter('vfio_pci_device_aer_error_messages_total', 'PCIe AER error messages (ERR_COR, ERR_NONFATAL, ERR_FATAL) the device sent (aer_dev_* TOTAL_ERR_*).', [
      'pci_address', 'severity',
    ]);
    const aerRootPort = sink.counter(
      'vfio_pci_device_aer_rootport_error_messages_total',
      'PCIe AER error messages a root port received from the devices below it and itself (aer_rootport_total_err_*).',
      ['pci_address', 'severity'],
    );
    const totalVfs = sink.gauge('vfio_pci_device_sriov_totalvfs', 'Virtual functions the SR-IOV physical function supports (sriov_totalvfs).', ['pci_address']);
    const numVfs = sink.gauge('vfio_pci_device_sriov_numvfs', 'Virtual functions enabled on the SR-IOV physical function (sriov_numvfs).', ['pci_address']);
    const vfInfo = sink.gauge('vfio_pci_device_sriov_vf_info', 'An SR-IOV virtual function and its physical function; value is always 1.', ['pci_address', 'physfn_address', 'vf_index']);
    for (const device of devices) {
      const pci_address = device.address;
      if (device.parent !== undefined) parent({ pci_address, parent_address: device.parent }, 1);
      if (device.resetMethods !== undefined) {
        resetMethods({ pci_address }, device.resetMethods.length);
        for (const method of device.resetMethods) resetMethod({ pci_address, reset_method: method }, 1);
      }
      for (const severity of aerSeverities) {
        const counters = device.aer[severity];
        if (counters) {
          for (const { error, count } of counters.errors) aerErrors({ pci_address, severity, error }, count);
          aerMessages({ pci_address, severity }, counters.messages);
        }
        const received = device.aerRootPort[severity];
        if (received !== undefined) aerRootPort({ pci_address, severity }, received);
      }
      if (device.sriov) {
        totalVfs({ pci_address }, device.sriov.totalVfs);
        numVfs({ pci_address }, device.sriov.numVfs);
      }
      if (device.physfn !== undefined) vfInfo({ pci_address, physfn_address: device.physfn, vf_index: device.vfIndex === undefined ? '' : String(device.vfIndex) }, 1);
    }
  },
};
