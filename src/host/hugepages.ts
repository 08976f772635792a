import path from 'node:path';
import { listDir, readOptionalText, readText } from './fs.js';
import { procPath, sysPath, type HostPaths } from './paths.js';
import { defaultHugepageBytes, hugepageDirSizeBytes, parseHugepageCount, type HostHugepageSizes } from '../parse/hugepages.js';

/** One NUMA node's share of a pool: `/sys/devices/system/node/node<K>/hugepages/hugepages-<N>kB/`. */
export interface HugepageNodePool {
  node: string;
  pages: number;
  freePages: number;
  surplusPages: number;
}

/** One pool: `/sys/kernel/mm/hugepages/hugepages-<N>kB/`. */
export interface HugepagePool {
  pageBytes: number;
  /** `nr_hugepages`: the persistent pool and the surplus pages in it. */
  pages: number;
  /** `free_hugepages`: not in use, reserved ones included. */
  freePages: number;
  /** `resv_hugepages`: free pages promised to mappings already made (hugetlbfs reserves at mmap, faults later). */
  reservedPages: number;
  /** `surplus_hugepages`: pages above the persistent pool, from overcommit or a shrunk pool whose pages are in use. */
  surplusPages: number;
  /** Per NUMA node, by node number; empty on kernels without CONFIG_NUMA. */
  nodes: HugepageNodePool[];
}

const hugepagesDir = (paths: HostPaths): string => sysPath(paths, 'kernel/mm/hugepages');

/** The kernel's pool directories, one per page size it supports; none on kernels without hugetlbfs (no directory). */
async function listPoolDirs(paths: HostPaths): Promise<{ name: string; pageBytes: number }[]> {
  return (await listDir(hugepagesDir(paths))).flatMap((name) => {
    const pageBytes = hugepageDirSizeBytes(name);
    return pageBytes === undefined ? [] : [{ name, pageBytes }];
  });
}

const readCount = async (dir: string, name: string): Promise<number> => {
  const file = path.join(dir, name);
  return parseHugepageCount(await readText(file), file);
};

/**
 * Every pool, smallest page first, with its per-node split. The global directory holds nr/free/resv/surplus
 * (hugetlb_attrs); the per-node one nr/free/surplus only (per_node_hstate_attrs): reservations are global.
 */
export async function readHugepagePools(paths: HostPaths): Promise<HugepagePool[]> {
  const nodeNames = (await listDir(sysPath(paths, 'devices/system/node'))).filter((name) => /^node\d+$/.test(name)).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  // Nodes without memory (CPU-only) have no hugepages directory (hugetlb_register_node).
  const nodeSizes = new Map(await Promise.all(nodeNames.map(async (node) => [node, new Set(await listDir(sysPath(paths, 'devices/system/node', node, 'hugepages')))] as const)));
  const pools = await Promise.all(
    (await listPoolDirs(paths)).map(async ({ name, pageBytes }): Promise<HugepagePool> => {
      const dir = path.join(hugepagesDir(paths), name);
      const [pages, freePages, reservedPages, surplusPages] = await Promise.all(['nr_hugepages', 'free_hugepages', 'resv_hugepages', 'surplus_hugepages'].map((file) => readCount(dir, file)));
      const nodes = await Promise.all(
        nodeNames.filter((node) => nodeSizes.get(node)!.has(name)).map(async (node): Promise<HugepageNodePool> => {
          const nodeDir = sysPath(paths, 'devices/system/node', node, 'hugepages', name);
          const [nodePages, nodeFree, nodeSurplus] = await Promise.all(['nr_hugepages', 'free_hugepages', 'surplus_hugepages'].map((file) => readCount(nodeDir, file)));
          return { node: node.slice('node'.length), pages: nodePages!, freePages: nodeFree!, surplusPages: nodeSurplus! };
        }),
      );
      return { pageBytes, pages: pages!, freePages: freePages!, reservedPages: reservedPages!, surplusPages: surplusPages!, nodes };
    }),
  );
  return pools.sort((a, b) => a.pageBytes - b.pageBytes);
}

/**
 * What a VM's hugepage setting resolves against: the pools the kernel has and its default page size, from the
 * kernel command line rather than /proc/meminfo, which the memory collector reads: a hung meminfo read must not
 * take the vm collector with it.
 */
export async function readHostHugepageSizes(paths: HostPaths): Promise<HostHugepageSizes> {
  const cmdline = await readOptionalText(procPath(paths, 'cmdline'));
  return { sizesBytes: (await listPoolDirs(paths)).map(({ pageBytes }) => pageBytes), defaultBytes: defaultHugepageBytes(cmdline ?? '') };
}
