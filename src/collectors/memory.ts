import { errorMessage, readOptionalText, readText } from '../host/fs.js';
import { readHugepagePools, type HugepagePool } from '../host/hugepages.js';
import { procPath } from '../host/paths.js';
import { hugepageSizeLabel } from '../parse/hugepages.js';
import { parseArcstats, parseMeminfo, parsePressure, type PressureTotals } from '../parse/meminfo.js';
import type { MetricSink } from '../metrics/sink.js';
import type { CollectorDefinition } from './types.js';

export interface HostMemoryFacts {
  totalBytes: number;
  availableBytes: number;
  freeBytes: number;
  swapTotalBytes: number;
  swapFreeBytes: number;
  hugepagesTotal: number;
  hugepagesFree: number;
  hugepageSizeBytes: number;
  /** Every page size's pool from sysfs, smallest page first: /proc/meminfo shows the default size only. */
  hugepagePools: HugepagePool[];
  /** Absent on hosts without ZFS. */
  zfsArc: { sizeBytes: number; minBytes: number; maxBytes: number } | undefined;
  /** Absent on kernels without PSI (or booted with psi=0). */
  pressure: PressureTotals | undefined;
  /** This sample and those of the trend window before it, oldest first: how fast memory drains. */
  recent: MemoryPoint[];
}

/** What the headroom of one sample is made of. */
export interface MemoryPoint {
  atMs: number;
  availableBytes: number;
  zfsArc: { sizeBytes: number; minBytes: number } | undefined;
}

/** As the `[5m]` of vfio:host_memory_headroom_change_bytes_per_second in alerts/vfio.rules.yml. */
export const memoryTrendWindowMs = 5 * 60_000;

declare module './types.js' {
  interface FactsByCollector {
    memory: HostMemoryFacts;
  }
}

const required = (values: Map<string, number>, key: string, file: string): number => {
  const value = values.get(key);
  if (value === undefined) throw new Error(`${file}: no ${key}`);
  return value;
};

function renderHugepagePools(pools: readonly HugepagePool[], sink: MetricSink): void {
  const perSize = (name: string, help: string): ((labels: { size: string }, value: number) => void) => sink.gauge(name, help, ['size']);
  const pageSize = perSize('vfio_host_hugepage_page_size_bytes', 'Page size of the hugepage pool of this size label; the label is the one vfio_vm_hugepages_bytes carries.');
  const pages = perSize('vfio_host_hugepage_pool_pages', 'nr_hugepages of the pool of this page size (/sys/kernel/mm/hugepages), surplus pages included.');
  const free = perSize('vfio_host_hugepage_pool_free_pages', 'free_hugepages: pages of the pool not in use, reserved ones included.');
  const reserved = perSize('vfio_host_hugepage_pool_reserved_pages', 'resv_hugepages: free pages promised to mappings already made; not there for a new VM.');
  const surplus = perSize('vfio_host_hugepage_pool_surplus_pages', 'surplus_hugepages: pages above the persistent pool (overcommit, or a pool shrunk while its pages are in use).');
  const nodeLabels = ['node', 'size'];
  const nodePages = sink.gauge('vfio_host_numa_hugepage_pool_pages', 'nr_hugepages of the pool of this page size on this NUMA node.', nodeLabels);
  const nodeFree = sink.gauge('vfio_host_numa_hugepage_pool_free_pages', 'free_hugepages of the pool of this page size on this NUMA node.', nodeLabels);
  const nodeSurplus = sink.gauge('vfio_host_numa_hugepage_pool_surplus_pages', 'surplus_hugepages of the pool of this page size on this NUMA node.', nodeLabels);
  for (const pool of pools) {
    const size = hugepageSizeLabel(pool.pageBytes);
    pageSize({ size }, pool.pageBytes);
    pages({ size }, pool.pages);
    free({ size }, pool.freePages);
    reserved({ size }, pool.reservedPages);
    surplus({ size }, pool.surplusPages);
    for (const node of pool.nodes) {
      nodePages({ node: node.node, size }, node.pages);
      nodeFree({ node: node.node, size }, node.freePages);
      nodeSurplus({ node: node.node, size }, node.surplusPages);
    }
  }
}

export const memoryCollector: CollectorDefinition<'memory'> = {
  name: 'memory',
  description: 'host memory: /proc/meminfo, hugepage pools of every size, ZFS ARC, memory pressure (PSI)',
  defaultEnabled: true,
  create() {
    return {
      async collect({ paths, previous }) {
        const atMs = Date.now();
        const meminfoFile = procPath(paths, 'meminfo');
        const arcFile = procPath(paths, 'spl/kstat/zfs/arcstats');
        const pressureFile = procPath(paths, 'pressure/memory');
        const meminfo = parseMeminfo(await readText(meminfoFile));
        const hugepagePools = await readHugepagePools(paths);
        const errors: string[] = [];
        const arcText = await readOptionalText(arcFile);
        const arc = arcText === undefined ? undefined : parseArcstats(arcText);
        // Kernels without PSI (or booted with psi=0) have no /proc/pressure: not an error. A garbled file is.
        let pressure: PressureTotals | undefined;
        try {
          const pressureText = await readOptionalText(pressureFile);
          pressure = pressureText === undefined ? undefined : parsePressure(pressureText);
        } catch (error) {
          errors.push(`${pressureFile}: ${errorMessage(error)}`);
        }
        // MemAvailable exists since Linux 3.14.
        const availableBytes = required(meminfo, 'MemAvailable', meminfoFile);
        const zfsArc = arc && {
          sizeBytes: required(arc, 'size', arcFile),
          minBytes: required(arc, 'c_min', arcFile),
          maxBytes: required(arc, 'c_max', arcFile),
        };
        const earlier = (previous?.facts.memory?.recent ?? []).filter((point) => point.atMs >= atMs - memoryTrendWindowMs && point.atMs < atMs);
        return {
          facts: {
            totalBytes: required(meminfo, 'MemTotal', meminfoFile),
            availableBytes,
            freeBytes: required(meminfo, 'MemFree', meminfoFile),
            swapTotalBytes: meminfo.get('SwapTotal') ?? 0,
            swapFreeBytes: meminfo.get('SwapFree') ?? 0,
            hugepagesTotal: meminfo.get('HugePages_Total') ?? 0,
            hugepagesFree: meminfo.get('HugePages_Free') ?? 0,
            hugepageSizeBytes: meminfo.get('Hugepagesize') ?? 0,
            hugepagePools,
            zfsArc,
            pressure,
            recent: [...earlier, { atMs, availableBytes, zfsArc }],
          },
          errors,
        };
      },
    };
  },
  render(facts, sink) {
    const gauge = (name: string, help: string, value: number): void => sink.gauge(name, help)({}, value);
    gauge('vfio_host_memory_total_bytes', 'MemTotal from /proc/meminfo.', facts.totalBytes);
    gauge('vfio_host_memory_available_bytes', 'MemAvailable from /proc/meminfo (does not count the ZFS ARC).', facts.availableBytes);
    gauge('vfio_host_memory_free_bytes', 'MemFree from /proc/meminfo.', facts.freeBytes);
    gauge('vfio_host_swap_total_bytes', 'SwapTotal from /proc/meminfo.', facts.swapTotalBytes);
    gauge('vfio_host_swap_free_bytes', 'SwapFree from /proc/meminfo.', facts.swapFreeBytes);
    gauge('vfio_host_hugepages', 'HugePages_Total: pages in the default-size hugepage pool (named without _total, which promtool reserves for counters).', facts.hugepagesTotal);
    gauge('vfio_host_hugepages_free', 'HugePages_Free: pages of the pool not in use.', facts.hugepagesFree);
    gauge('vfio_host_hugepage_size_bytes', 'Hugepagesize: size of a default hugepage.', facts.hugepageSizeBytes);
    renderHugepagePools(facts.hugepagePools, sink);
    if (facts.zfsArc) {
      gauge('vfio_host_zfs_arc_size_bytes', 'ZFS ARC size; not in MemAvailable, shrinks down to c_min under pressure.', facts.zfsArc.sizeBytes);
      gauge('vfio_host_zfs_arc_min_bytes', 'ZFS ARC c_min: the size the ARC will not shrink below.', facts.zfsArc.minBytes);
      gauge('vfio_host_zfs_arc_max_bytes', 'ZFS ARC c_max.', facts.zfsArc.maxBytes);
    }
    if (facts.pressure) {
      const stalled = sink.counter('vfio_host_memory_pressure_stalled_seconds_total', 'Time tasks stalled on memory (PSI), some or all (full) of them.', ['kind']);
      stalled({ kind: 'some' }, facts.pressure.someSeconds);
      if (facts.pressure.fullSeconds !== undefined) stalled({ kind: 'full' }, facts.pressure.fullSeconds);
    }
  },
};
