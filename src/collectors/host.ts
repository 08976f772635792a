import type { CollectorDefinition } from './types.js';

/** Inventory that helps triage passthrough; it comes from systeminformation and ignores `--path.*`. */
export interface HostFacts {
  systemVendor: string;
  systemModel: string;
  biosVersion: string;
  /** `vmx` (Intel VT-x), `svm` (AMD-V) or `none`. */
  cpuVirtualization: string;
  kernelRelease: string;
}

declare module './types.js' {
  interface FactsByCollector {
    host: HostFacts;
  }
}

export const cpuVirtualizationFlag = (flags: string): string => {
  const set = new Set(flags.split(/\s+/));
  return set.has('vmx') ? 'vmx' : set.has('svm') ? 'svm' : 'none';
};

export const hostCollector: CollectorDefinition<'host'> = {
  name: 'host',
  description: 'host inventory (vendor, model, BIOS, CPU virtualization, kernel) from systeminformation; ignores --path.*',
  defaultEnabled: true,
  create() {
    // Inventory does not change while the exporter runs: read it once.
    let inventory: Promise<HostFacts> | undefined;
    return {
      async collect() {
        // Loaded on first use: neither `--help`, `capture` nor a host with this collector off holds it in memory.
        inventory ??= import('systeminformation')
          .then(({ default: si }) => Promise.all([si.system(), si.bios(), si.cpuFlags(), si.osInfo()]))
          .then(([system, bios, flags, os]) => ({
            systemVendor: system.manufacturer,
            systemModel: system.model,
            biosVersion: bios.version,
            cpuVirtualization: cpuVirtualizationFlag(flags),
            kernelRelease: os.kernel,
          }));
        return { facts: await inventory, errors: [] };
      },
    };
  },
  render(facts, sink) {
    sink.gauge('vfio_host_info', 'Host inventory for passthrough triage; value is always 1.', [
      'system_vendor', 'system_model', 'bios_version', 'cpu_virtualization', 'kernel_release',
    ])(
      {
        system_vendor: facts.systemVendor,
        system_model: facts.systemModel,
        bios_version: facts.biosVersion,
        cpu_virtualization: facts.cpuVirtualization,
        kernel_release: facts.kernelRelease,
      },
      1,
    );
  },
};
