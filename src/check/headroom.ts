import type { HostMemoryFacts } from '../collectors/memory.js';
import { passthroughDeviceCount, type Vm } from '../collectors/vm-types.js';

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

export type MemoryPool = 'memory' | 'hugepages';

const poolOf = (vm: Vm): MemoryPool => (vm.hugepages !== undefined ? 'hugepages' : 'memory');

/** The memory the VM gets at its next start: a pending change (Proxmox `[PENDING]`) applies then. */
export const nextStartMemoryBytes = (vm: Vm): number | undefined => vm.pending?.memoryConfiguredBytes ?? vm.memoryConfiguredBytes;

export function startHeadroom(vm: Vm, memory: HostMemoryFacts, reserveBytes: number): StartHeadroom | undefined {
  const requiredBytes = nextStartMemoryBytes(vm);
  // A template never starts as configured (qemu-server `vm_start`).
  if (requiredBytes === undefined || vm.template) return undefined;
  const pool = poolOf(vm);
  const availableBytes =
    pool === 'hugepages' ? memory.hugepagesFree * memory.hugepageSizeBytes : memory.availableBytes + reclaimableArcBytes(memory) - reserveBytes;
  return { pool, availableBytes, requiredBytes, headroomBytes: availableBytes - requiredBytes };
}

export interface PoolCommitment {
  pool: MemoryPool;
  committedBytes: number;
  capacityBytes: number;
  vmids: string[];
}

/**
 * Guest RAM the host must hold pinned after a reboot: every passthrough VM that runs now or starts on
 * boot. Ordinary memory is held against MemTotal less the reserve, the ARC floor and the hugepage
 * pool; hugepage-backed VMs against the hugepage pool.
 */
export function pinnedCommitment(vms: readonly Vm[], memory: HostMemoryFacts, reserveBytes: number): PoolCommitment[] {
  const hugepagePoolBytes = memory.hugepagesTotal * memory.hugepageSizeBytes;
  const capacity: Record<MemoryPool, number> = {
    memory: memory.totalBytes - reserveBytes - (memory.zfsArc?.minBytes ?? 0) - hugepagePoolBytes,
    hugepages: hugepagePoolBytes,
  };
  const committed = vms.filter((vm) => passthroughDeviceCount(vm) > 0 && !vm.template && (vm.running || vm.startOnBoot));
  return (['memory', 'hugepages'] as const).map((pool) => {
    const inPool = committed.filter((vm) => poolOf(vm) === pool);
    return {
      pool,
      committedBytes: inPool.reduce((sum, vm) => sum + (nextStartMemoryBytes(vm) ?? 0), 0),
      capacityBytes: capacity[pool],
      vmids: inPool.map((vm) => vm.vmid),
    };
  });
}

export const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
