import type { HostMemoryFacts } from '../collectors/memory.js';
import type { Vm } from '../collectors/vm-types.js';

/**
 * The start-headroom arithmetic, the same as the recording rules in alerts/vfio.rules.yml:
 * memory the host can give a starting VM is MemAvailable plus the ZFS ARC above c_min (the ARC
 * shrinks to c_min under pressure but MemAvailable does not count it), less a reserve for the host.
 * A VM on hugepages draws from the free hugepage pool instead.
 */
export const defaultHostReserveBytes = 1024 ** 3;

export const reclaimableArcBytes = (memory: HostMemoryFacts): number =>
  memory.zfsArc ? Math.max(0, memory.zfsArc.sizeBytes - memory.zfsArc.minBytes) : 0;

export interface StartHeadroom {
  /** What the VM would take from: `memory` (MemAvailable + reclaimable ARC − reserve) or `hugepages`. */
  pool: 'memory' | 'hugepages';
  availableBytes: number;
  requiredBytes: number;
  /** availableBytes − requiredBytes: negative means starting the VM triggers the OOM killer. */
  headroomBytes: number;
}

export function startHeadroom(vm: Vm, memory: HostMemoryFacts, reserveBytes: number): StartHeadroom | undefined {
  if (vm.memoryConfiguredBytes === undefined) return undefined;
  const availableBytes =
    vm.hugepages !== undefined
      ? memory.hugepagesFree * memory.hugepageSizeBytes
      : memory.availableBytes + reclaimableArcBytes(memory) - reserveBytes;
  return {
    pool: vm.hugepages !== undefined ? 'hugepages' : 'memory',
    availableBytes,
    requiredBytes: vm.memoryConfiguredBytes,
    headroomBytes: availableBytes - vm.memoryConfiguredBytes,
  };
}

/**
 * Guest RAM the host must hold pinned after a reboot: every passthrough VM that runs now or starts on
 * boot, against MemTotal less the reserve, the ARC floor and the hugepage pool.
 */
export function pinnedCommitment(vms: readonly Vm[], memory: HostMemoryFacts, reserveBytes: number): { committedBytes: number; capacityBytes: number } {
  const committedBytes = vms
    .filter((vm) => vm.devices.length > 0 && (vm.running || vm.startOnBoot) && vm.hugepages === undefined)
    .reduce((sum, vm) => sum + (vm.memoryConfiguredBytes ?? 0), 0);
  const capacityBytes =
    memory.totalBytes - reserveBytes - (memory.zfsArc?.minBytes ?? 0) - memory.hugepagesTotal * memory.hugepageSizeBytes;
  return { committedBytes, capacityBytes };
}

export const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
