/** What the `vm` collector knows about each VM: the shape the OOM attribution, `check` and the status page read. */

export type VmSource = 'proxmox' | 'libvirt' | 'qemu';

export interface VmPassthroughDevice {
  /** Full address, `0000:00:17.0`; a short `01:00` in a config is expanded to every function present in sysfs. */
  pciAddress: string;
  /** `hostpci0`… (Proxmox), `hostdev0`… (libvirt), `vfio-pci0`… (a plain QEMU command line). */
  slot: string;
}

export interface VmProcess {
  pid: number;
  comm: string;
  rssBytes: number;
  /** VmLck + VmPin from /proc/<pid>/status: where VFIO-pinned guest RAM is charged. */
  lockedBytes: number;
  /** The VM's cgroup path as /proc/<pid>/cgroup gives it (v2 unified, else the v1 memory controller). */
  cgroupPath: string | undefined;
  /** memory.current (v2) / memory.usage_in_bytes (v1) of that cgroup. */
  cgroupMemoryBytes: number | undefined;
}

export interface VmQmpState {
  /** The last `query-balloon` answered in time with a result. */
  up: boolean;
  balloonActualBytes: number | undefined;
  /** Why `up` is false (absent socket, refused, timed out, garbage, QMP error). */
  error: string | undefined;
}

export interface Vm {
  vmid: string;
  name: string;
  source: VmSource;
  running: boolean;
  startOnBoot: boolean;
  memoryConfiguredBytes: number | undefined;
  /** A balloon device is configured and not disabled. */
  balloonEnabled: boolean;
  /** Balloon floor; 0 when ballooning is off; equals the configured memory when no floor is set. */
  balloonMinBytes: number | undefined;
  /** Proxmox `hugepages:` (`2`, `1024`, `any`) or libvirt `<hugepages/>`: guest RAM comes from the hugepage pool. */
  hugepages: string | undefined;
  /** Changes that apply at next start (Proxmox `[PENDING]`). */
  pending: { memoryConfiguredBytes: number | undefined; balloonMinBytes: number | undefined } | undefined;
  devices: VmPassthroughDevice[];
  process: VmProcess | undefined;
  qmp: VmQmpState | undefined;
}

export interface VmFacts {
  vms: Vm[];
}

declare module './types.js' {
  interface FactsByCollector {
    vm: VmFacts;
  }
}
