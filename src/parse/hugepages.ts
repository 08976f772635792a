/**
 * Pure parsers for the kernel's hugepage pools in sysfs (mm/hugetlb.c, Documentation/admin-guide/mm/hugetlbpage.rst)
 * and the resolution of a VM's hugepage setting to the pools it draws on.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/**
 * A page size as the `size` label shows it, on pools and VMs alike: `2M`, `1G`, `<n>K` for other sizes.
 * The same label on both sides is what joins a VM to its pool in PromQL.
 */
export function hugepageSizeLabel(bytes: number): string {
  if (bytes % GiB === 0) return `${bytes / GiB}G`;
  if (bytes % MiB === 0) return `${bytes / MiB}M`;
  return `${Math.round(bytes / KiB)}K`;
}

/** The inverse of hugepageSizeLabel: `1G` → bytes; undefined for anything else. */
export function hugepageLabelBytes(label: string): number | undefined {
  const match = /^(\d+)([KMG])$/.exec(label);
  return match ? Number(match[1]) * { K: KiB, M: MiB, G: GiB }[match[2] as 'K' | 'M' | 'G'] : undefined;
}

/** `hugepages-1048576kB` (one directory per supported size, hugetlb_sysfs_add_hstate) → page size in bytes. */
export function hugepageDirSizeBytes(name: string): number | undefined {
  const match = /^hugepages-(\d+)kB$/.exec(name);
  return match ? Number(match[1]) * KiB : undefined;
}

/** `nr_hugepages`, `free_hugepages`...: one decimal count and a newline. */
export function parseHugepageCount(text: string, file: string): number {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) throw new Error(`${file}: not a page count: ${JSON.stringify(trimmed.slice(0, 40))}`);
  return Number(trimmed);
}

/**
 * The default hugepage size (Hugepagesize, hugetlbfs mounts without pagesize=): `default_hugepagesz=` on the kernel
 * command line (mm/hugetlb.c `default_hugepagesz_setup`, memparse suffixes), else the architecture's HPAGE_SIZE,
 * 2 MiB on x86-64. `hugepagesz=1G hugepages=8` adds a pool and leaves the default alone.
 */
export function defaultHugepageBytes(cmdline: string): number {
  // The first one counts: the kernel ignores any later default_hugepagesz=.
  const match = /(?:^|\s)default_hugepagesz=(\d+)([KMG]?)(?=\s|$)/i.exec(cmdline);
  return match ? Number(match[1]) * { '': 1, K: KiB, M: MiB, G: GiB }[match[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'] : 2 * MiB;
}

/** The page size one guest NUMA node's RAM is backed by: bytes, the host's default size, or Proxmox `any`. */
export type GuestPageSize = number | 'default' | 'any';

export interface HugepageGuestNode {
  memoryBytes: number;
  page: GuestPageSize;
}

export interface HostHugepageSizes {
  /** Sizes the kernel has a pool for (a `hugepages-<N>kB` directory), bytes. */
  sizesBytes: readonly number[];
  /** The default page size (defaultHugepageBytes), what libvirt's `<hugepages/>` without `<page>` gets. */
  defaultBytes: number;
}

/** Guest RAM a VM takes from the pool of one page size, bytes. */
export interface HugepageDemand {
  size: string;
  pageBytes: number;
  bytes: number;
}

/**
 * qemu-server `PVE::QemuServer::Memory::hugepages_size` for `hugepages: any`, per guest NUMA node: 1 GiB pages
 * when the host has that pool and the node's memory is a whole number of GiB, else 2 MiB pages when the host has
 * that pool; with neither, qemu-server refuses to start the VM.
 */
function resolveAny(memoryBytes: number, host: HostHugepageSizes): number | undefined {
  if (host.sizesBytes.includes(GiB) && memoryBytes % GiB === 0) return GiB;
  return host.sizesBytes.includes(2 * MiB) ? 2 * MiB : undefined;
}

/**
 * What each pool gives the VM at start, largest page first. A size the host has no pool for stays in the
 * demand (the start fails for want of pages). Undefined when the size cannot be told: `any` on a host without
 * the pools it resolves to (qemu-server refuses the start then).
 */
export function hugepageDemand(nodes: readonly HugepageGuestNode[], host: HostHugepageSizes): HugepageDemand[] | undefined {
  const bySize = new Map<number, number>();
  for (const node of nodes) {
    const pageBytes = node.page === 'any' ? resolveAny(node.memoryBytes, host) : node.page === 'default' ? host.defaultBytes : node.page;
    if (pageBytes === undefined) return undefined;
    bySize.set(pageBytes, (bySize.get(pageBytes) ?? 0) + node.memoryBytes);
  }
  return [...bySize]
    .sort(([a], [b]) => b - a)
    .map(([pageBytes, bytes]) => ({ size: hugepageSizeLabel(pageBytes), pageBytes, bytes }));
}
