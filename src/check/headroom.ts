import type { HostMemoryFacts, MemoryPoint } from '../collectors/memory.js';
import type { HugepagePool } from '../host/hugepages.js';
import { hugepageSizeLabel } from '../parse/hugepages.js';
import { passthroughDeviceCount, type Vm } from '../collectors/vm-types.js';

/**
 * The start-headroom arithmetic, the same as the recording rules in alerts/vfio.rules.yml:
 * memory the host can give a starting VM is MemAvailable plus the ZFS ARC above c_min (the ARC
 * shrinks to c_min under pressure but MemAvailable does not count it), less a reserve for the host.
 * A VM on hugepages draws from the free, unreserved pages of the pool of its page size instead.
 */
export const defaultHostReserveBytes = 1024 ** 3;

export const reclaimableArcBytes = (memory: Pick<MemoryPoint, 'zfsArc'>): number =>
  memory.zfsArc ? Math.max(0, memory.zfsArc.sizeBytes - memory.zfsArc.minBytes) : 0;

export interface StartHeadroom {
  /** What the VM would take from: `memory` (MemAvailable + reclaimable ARC − reserve) or `hugepages`. */
  pool: MemoryPool;
  /** The page size of the hugepage pool (`1G`, `2M`), as the `size` label has it; undefined for memory. */
  size: string | undefined;
  availableBytes: number;
  requiredBytes: number;
  /** availableBytes − requiredBytes: negative means starting the VM triggers the OOM killer. */
  headroomBytes: number;
}

export type MemoryPool = 'memory' | 'hugepages';

const poolOf = (vm: Vm): MemoryPool => (vm.hugepages !== undefined ? 'hugepages' : 'memory');

const poolOfSize = (memory: HostMemoryFacts, size: string): HugepagePool | undefined => memory.hugepagePools.find((pool) => hugepageSizeLabel(pool.pageBytes) === size);

/**
 * Free pages of the pool of this size not promised to a mapping already made (vfio:host_hugepages_free_bytes):
 * what QEMU can map at start. No pool of that size: none.
 */
export function hugepagesFreeBytes(memory: HostMemoryFacts, size: string): number {
  const pool = poolOfSize(memory, size);
  return pool === undefined ? 0 : (pool.freePages - pool.reservedPages) * pool.pageBytes;
}

/** The memory the VM gets at its next start: a pending change (Proxmox `[PENDING]`) applies then. */
export const nextStartMemoryBytes = (vm: Vm): number | undefined => vm.pending?.memoryConfiguredBytes ?? vm.memoryConfiguredBytes;

/** What a new VM could take now without the OOM killer stepping in (vfio:host_memory_headroom_bytes). */
export const hostHeadroomBytes = (memory: Pick<MemoryPoint, 'availableBytes' | 'zfsArc'>, reserveBytes: number): number => memory.availableBytes + reclaimableArcBytes(memory) - reserveBytes;

export function startHeadroom(vm: Vm, memory: HostMemoryFacts, reserveBytes: number): StartHeadroom | undefined {
  const requiredBytes = nextStartMemoryBytes(vm);
  // A template never starts as configured (qemu-server `vm_start`).
  if (requiredBytes === undefined || vm.template) return undefined;
  if (poolOf(vm) === 'memory') {
    const availableBytes = hostHeadroomBytes(memory, reserveBytes);
    return { pool: 'memory', size: undefined, availableBytes, requiredBytes, headroomBytes: availableBytes - requiredBytes };
  }
  // Each pool the VM draws on is judged alone; the tightest speaks for the VM. Pools not told: not judged.
  const perPool = (vm.hugepageDemand ?? []).map(({ size, bytes }): StartHeadroom => {
    const availableBytes = hugepagesFreeBytes(memory, size);
    return { pool: 'hugepages', size, availableBytes, requiredBytes: bytes, headroomBytes: availableBytes - bytes };
  });
  return perPool.sort((a, b) => a.headroomBytes - b.headroomBytes)[0];
}

export interface HeadroomTrend {
  /** deriv() of the headroom over the samples (vfio:host_memory_headroom_change_bytes_per_second). */
  changeBytesPerSecond: number;
  /** Until headroom is gone at that pace (vfio:host_memory_exhaustion_seconds): only while it falls and is not gone. */
  exhaustionSeconds: number | null;
}

/**
 * The trend of the headroom over the samples of the window, as the recording rules compute it.
 * PromQL's deriv() is the least-squares slope with time in seconds from the first sample
 * (prometheus promql/functions.go, funcDeriv and linearRegression); a constant series has slope 0.
 */
export function headroomTrend(points: readonly MemoryPoint[], reserveBytes: number): HeadroomTrend | undefined {
  if (points.length < 2) return undefined;
  const firstMs = points[0]!.atMs;
  const values = points.map((point) => hostHeadroomBytes(point, reserveBytes));
  let sumX = 0;
  let sumY = 0;
  let sumXY = 0;
  let sumX2 = 0;
  points.forEach((point, index) => {
    const x = (point.atMs - firstMs) / 1e3;
    sumX += x;
    sumY += values[index]!;
    sumXY += x * values[index]!;
    sumX2 += x * x;
  });
  const n = points.length;
  const changeBytesPerSecond = values.every((value) => value === values[0]) ? 0 : (sumXY - (sumX * sumY) / n) / (sumX2 - (sumX * sumX) / n);
  const headroomBytes = values[n - 1]!;
  return { changeBytesPerSecond, exhaustionSeconds: changeBytesPerSecond < 0 && headroomBytes >= 0 ? headroomBytes / -changeBytesPerSecond : null };
}

/**
 * The least a VM takes once its guest has touched its memory (vfio:vm_memory_floor_bytes):
 * auto-ballooning shrinks it to its balloon floor, never below; without a balloon, all of it.
 */
export function memoryFloorBytes(vm: Vm): number | undefined {
  const nextStartBytes = nextStartMemoryBytes(vm);
  if (nextStartBytes === undefined) return undefined;
  return vm.balloonEnabled && vm.balloonMinBytes !== undefined && vm.balloonMinBytes < nextStartBytes ? vm.balloonMinBytes : nextStartBytes;
}

/** What the start of a VM without passthrough leaves the passthrough VMs that run. */
export interface PassthroughRisk {
  /** Host headroom before the start. */
  headroomBytes: number;
  floorBytes: number;
  fullBytes: number;
  /** headroom − floor (vfio:vm_start_passthrough_headroom_bytes): negative, the start hands a passthrough VM to the OOM killer. */
  floorHeadroomBytes: number;
  /** headroom − all of its memory: negative, its guest can grow into what the passthrough VMs need. */
  fullHeadroomBytes: number;
  /** The running passthrough VMs, largest first: the OOM killer picks the largest process. */
  atRisk: Vm[];
}

const residentBytes = (vm: Vm): number => vm.process?.rssBytes ?? nextStartMemoryBytes(vm) ?? 0;

/**
 * For a stopped VM (not a template) without passthrough and off hugepages (those draw on the pool) on a host whose
 * passthrough VMs run: how its start leaves them. Undefined when the question does not arise.
 */
export function passthroughRisk(vm: Vm, vms: readonly Vm[], memory: HostMemoryFacts, reserveBytes: number): PassthroughRisk | undefined {
  if (vm.running !== false || vm.template || passthroughDeviceCount(vm) > 0 || poolOf(vm) === 'hugepages') return undefined;
  const atRisk = vms.filter((other) => other.running === true && passthroughDeviceCount(other) > 0).sort((a, b) => residentBytes(b) - residentBytes(a));
  const floorBytes = memoryFloorBytes(vm);
  const fullBytes = nextStartMemoryBytes(vm);
  if (atRisk.length === 0 || floorBytes === undefined || fullBytes === undefined) return undefined;
  const headroomBytes = hostHeadroomBytes(memory, reserveBytes);
  return { headroomBytes, floorBytes, fullBytes, floorHeadroomBytes: headroomBytes - floorBytes, fullHeadroomBytes: headroomBytes - fullBytes, atRisk };
}

export interface PoolCommitment {
  pool: MemoryPool;
  /** The page size of the hugepage pool; undefined for memory. */
  size: string | undefined;
  committedBytes: number;
  capacityBytes: number;
  vmids: string[];
}

/**
 * Guest RAM the host must hold pinned after a reboot: every passthrough VM that runs now or starts on
 * boot. Ordinary memory is held against MemTotal less the reserve, the ARC floor and every hugepage
 * pool; hugepage-backed VMs against the pool of each page size they draw on.
 */
export function pinnedCommitment(vms: readonly Vm[], memory: HostMemoryFacts, reserveBytes: number): PoolCommitment[] {
  const poolBytes = (pool: HugepagePool): number => pool.pages * pool.pageBytes;
  const committed = vms.filter((vm) => passthroughDeviceCount(vm) > 0 && !vm.template && (vm.running || vm.startOnBoot));
  const inMemory = committed.filter((vm) => poolOf(vm) === 'memory');
  const ordinary: PoolCommitment = {
    pool: 'memory',
    size: undefined,
    committedBytes: inMemory.reduce((sum, vm) => sum + (nextStartMemoryBytes(vm) ?? 0), 0),
    capacityBytes: memory.totalBytes - reserveBytes - (memory.zfsArc?.minBytes ?? 0) - memory.hugepagePools.reduce((sum, pool) => sum + poolBytes(pool), 0),
    vmids: inMemory.map((vm) => vm.vmid),
  };
  const demanded = committed.flatMap((vm) => (vm.hugepageDemand ?? []).map((demand) => ({ vmid: vm.vmid, ...demand })));
  const sizes = [...new Set([...memory.hugepagePools.map((pool) => hugepageSizeLabel(pool.pageBytes)), ...demanded.map(({ size }) => size)])];
  const hugepages = sizes.map((size): PoolCommitment => {
    const inPool = demanded.filter((demand) => demand.size === size);
    const pool = poolOfSize(memory, size);
    return {
      pool: 'hugepages',
      size,
      committedBytes: inPool.reduce((sum, demand) => sum + demand.bytes, 0),
      capacityBytes: pool === undefined ? 0 : poolBytes(pool),
      vmids: inPool.map(({ vmid }) => vmid),
    };
  });
  return [ordinary, ...hugepages];
}

export const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

/** How the trend reads: how fast headroom falls and when it is gone at that pace, or that it does not fall. */
export function describeTrend(trend: HeadroomTrend): string {
  const perMinute = trend.changeBytesPerSecond * 60;
  if (trend.exhaustionSeconds === null) return perMinute < 0 ? `falling by ${gib(-perMinute)} a minute, already gone` : 'not falling over the last 5 minutes';
  const minutes = trend.exhaustionSeconds / 60;
  return `falling by ${gib(-perMinute)} a minute: gone in ${minutes < 1 ? `${Math.round(trend.exhaustionSeconds)} s` : `${minutes.toFixed(minutes < 10 ? 1 : 0)} min`} at this pace`;
}

/** Each pool as `1G: 8 free of 16` (reserved pages not free), or that there is none. */
export const describeHugepagePools = (pools: readonly HugepagePool[]): string =>
  pools.length === 0 ? 'none' : pools.map((pool) => `${hugepageSizeLabel(pool.pageBytes)}: ${pool.freePages - pool.reservedPages} free of ${pool.pages}`).join(', ');
