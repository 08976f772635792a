import type { HugepageDemand } from '../parse/hugepages.js';
/** What the `vm` collector knows about each VM: the shape the OOM attribution, `check` and the status page read. */

export type VmSource = 'proxmox' | 'libvirt' | 'qemu';

export interface VmPassthroughDevice {
  /** Full address, `0000:00:17.0`; a short `01:00` in a config is expanded to every function present in sysfs. */
  pciAddress: string;
  /** `hostpci0`… (Proxmox), `hostdev0`… (libvirt), `vfio-pci0`… (a plain QEMU command line). */
  slot: string;
  /** The host's PCI bus lists the device; undefined when the bus could not be listed. */
  present: boolean | undefined;
}

/** A mediated device (vGPU slice): VFIO pins guest RAM for it as for a whole PCI device. */
export interface VmMdevDevice {
  uuid: string;
  /** The PCI device it is carved from, through its sysfs link; undefined when sysfs does not show it. */
  parentPciAddress: string | undefined;
  /** `mdev0`…, in command-line order. */
  slot: string;
}

export interface VmProcess {
  pid: number;
  comm: string;
  /** Undefined when /proc/<pid>/status gave no usable VmRSS. */
  rssBytes: number | undefined;
  /** VmLck + VmPin from /proc/<pid>/status: where VFIO-pinned guest RAM is charged; undefined when either is unusable. */
  lockedBytes: number | undefined;
  /** The process's cgroup path as /proc/<pid>/cgroup gives it (the v1 memory controller's when the host has one, else v2 unified). */
  cgroupPath: string | undefined;
  /**
   * The VM's scope enclosing `cgroupPath` (`qemu.slice/<vmid>.scope`, `machine.slice/machine-qemu…scope`;
   * libvirt puts QEMU in `<scope>/libvirt/emulator`); undefined when QEMU runs in no scope of its own.
   */
  cgroupMemoryPath: string | undefined;
  /** memory.current (v2) / memory.usage_in_bytes (v1) of `cgroupMemoryPath`. */
  cgroupMemoryBytes: number | undefined;
}

export interface VmQmpState {
  /** The last QMP query answered in time with a result (`query-balloon`; `query-status` when the config has no balloon device). */
  up: boolean;
  balloonActualBytes: number | undefined;
  /** Guest RAM now, base + plugged DIMMs (`query-memory-size-summary`); undefined when QEMU lacks the command. */
  memoryBytes: number | undefined;
  /** Why `up` is false (absent socket, refused, timed out, garbage, QMP error). */
  error: string | undefined;
}

export interface Vm {
  vmid: string;
  name: string;
  source: VmSource;
  /** Undefined when its pid file could not be read and no process was found for it: unknown, not stopped. */
  running: boolean | undefined;
  startOnBoot: boolean;
  /**
   * A Proxmox template (`template: 1`): it never starts as configured (qemu-server refuses; a backup starts it
   * with its disks only), so it has no start headroom and commits no memory.
   */
  template: boolean;
  memoryConfiguredBytes: number | undefined;
  /** A balloon device is configured and not disabled. */
  balloonEnabled: boolean;
  /** Balloon floor; 0 when ballooning is off; equals the configured memory when no floor is set. */
  balloonMinBytes: number | undefined;
  /**
   * Guest RAM comes from the hugepage pool, of this size: `2M`, `1G` (Proxmox `hugepages: 2|1024`, libvirt
   * `<page size>`), `any` (Proxmox picks 1G or 2M at start) or `default` (libvirt `<hugepages/>`: the host's default size).
   */
  hugepages: string | undefined;
  /**
   * Guest RAM per pool at the next start, resolved against the host's pools as qemu-server or libvirt would
   * (`any` → 1G or 2M, `default` → the host's default size). Undefined off hugepages, and when the size cannot be told.
   */
  hugepageDemand: HugepageDemand[] | undefined;
  /** Changes that apply at next start (Proxmox `[PENDING]`). */
  pending: { memoryConfiguredBytes: number | undefined; balloonMinBytes: number | undefined } | undefined;
  devices: VmPassthroughDevice[];
  mdevs: VmMdevDevice[];
  /**
   * Problems with the VM's config in this sample: lines that could not be understood, an unresolved PCI
   * mapping, or 1 when the file could not be read at all. Undefined for a QEMU process without a config.
   */
  configProblems: number | undefined;
  /** The config file could not be read or parsed at all: nothing but the VM's id and its process is known. */
  configUnreadable: boolean;
  /**
   * What could not be read for this VM in this sample, or not within the deadline (its config, pid file or
   * /proc files): the figures they give are left out.
   */
  readErrors: string[];
  process: VmProcess | undefined;
  qmp: VmQmpState | undefined;
}

/** PCI and mediated devices: each makes VFIO pin all guest RAM. */
export const passthroughDeviceCount = (vm: Pick<Vm, 'devices' | 'mdevs'>): number => vm.devices.length + vm.mdevs.length;

export interface VmFacts {
  vms: Vm[];
  /** This host's Proxmox node name (`/etc/pve/local`), when it has Proxmox VMs. */
  proxmoxNode?: string | undefined;
}

declare module './types.js' {
  interface FactsByCollector {
    vm: VmFacts;
  }
}
