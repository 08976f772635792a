import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../test/helpers/fixtures.js';

/**
 * A fleet of N hosts made from the fixture hosts' golden scrapes (real /metrics of each fixture host). VM ids
 * repeat across hosts, as they do in a fleet of Proxmox nodes, and memory sizes differ (x1, x2, x4) so no two
 * neighbours are identical. Of every 50 hosts the first few are in trouble, the others take turns among the
 * healthy ones.
 */
export const fleetMixes = {
  // Most hosts as their admins left them after the alerts: the cluster node and the libvirt GPU host raise
  // nothing, the fixed seed host keeps one warning (starting its build VM would endanger the NAS). In trouble:
  // the seed host before its fix in three states (VM 101 cannot start on any) and the cluster node before its
  // fix (VM 106 short of 1 GiB pages, a ballooning passthrough VM, devices not reserved at boot).
  fleet: { healthy: ['pve-cluster-fixed', 'libvirt-gpu', 'suprox-fixed'], troubled: ['suprox', 'suprox-trouble', 'suprox-noiommu', 'pve-cluster', 'pve-cluster'] },
  // Two hosts in three with standing alerts: the cluster node before its fix takes a third of the healthy turns.
  harsh: { healthy: ['suprox-fixed', 'pve-cluster', 'libvirt-gpu'], troubled: ['suprox', 'suprox-trouble', 'suprox-noiommu'] },
} as const;
export type FleetMix = keyof typeof fleetMixes;

// VMs that cannot start on each fixture: the seed's VM 101 (12 GiB pinned, balloon on) in its three states
// before the fix; the cluster node's VM 106 needs sixteen 1 GiB pages of a pool of eight (test/fixtures/build-hosts.ts).
const startAlertVms: Record<string, string[]> = { suprox: ['101'], 'suprox-trouble': ['101'], 'suprox-noiommu': ['101'], 'pve-cluster': ['106'] };
const everyNth = 50;

// The alerts each fixture host raises, whatever its memory scale: what `test/fleet-remote-write.test.ts` and the
// promtool tests of each case show, one fixture at a time.
const seedBeforeFix = ['VfioPassthroughDeviceNotReservedAtBoot', 'VfioPassthroughVMBalloonEnabled', 'VfioPassthroughVMStartWouldOOM'];
const hostDriverTrouble = ['VfioPassthroughControllerDisksOnHost', 'VfioPassthroughDeviceOnHostDriver'];
const fixtureAlerts: Record<string, string[]> = {
  suprox: seedBeforeFix,
  'suprox-trouble': [...seedBeforeFix, ...hostDriverTrouble, 'VfioIOMMUGroupNotViable', 'VfioPassthroughDiskHeldByHost'],
  'suprox-noiommu': [...seedBeforeFix, ...hostDriverTrouble, 'VfioIOMMUDisabled'],
  'suprox-fixed': ['VfioVMStartEndangersPassthrough'],
  'pve-cluster': [...seedBeforeFix, 'VfioPassthroughMemoryOvercommitted'],
  'pve-cluster-fixed': [],
  'libvirt-gpu': [],
};

export interface FleetHost {
  /** `instance` label as a scrape of the real host would give it. */
  instance: string;
  /** Cluster the host belongs to, as a fleet's external or target label. */
  cluster: string;
  /** Fixture host whose scrape this host serves. */
  fixture: string;
  /** The VMs VfioPassthroughVMStartWouldOOM must name on this host, and no other. */
  startAlertVms: string[];
  /** The alerts this host must raise, pending or firing, and no other. */
  alerts: string[];
  /** The host's /metrics, its last-sample time left as `<timestamp>` for the server to fill in. */
  body: string;
}

export function fixtureOf(index: number, mix: FleetMix): string {
  const { healthy, troubled } = fleetMixes[mix];
  return troubled[index % everyNth] ?? healthy[index % healthy.length]!;
}

const goldenCache = new Map<string, string>();
const golden = (fixture: string): string => {
  let text = goldenCache.get(fixture);
  if (text === undefined) {
    text = readFileSync(path.join(repoRoot, 'test/golden', `${fixture}.prom`), 'utf8');
    goldenCache.set(fixture, text);
  }
  return text;
};

// Memory in bytes: the host's and its VMs' (all scaled alike, so each host keeps its own verdicts).
const memorySample = /^(vfio_(?:host_memory|host_swap|host_zfs_arc|vm_memory|vm_pending_memory)\w*_bytes(?:\{[^}]*\})?) (\S+)$/gm;

export function fleetHost(index: number, mix: FleetMix): FleetHost {
  const fixture = fixtureOf(index, mix);
  const scale = 2 ** (index % 3);
  const body = golden(fixture)
    .replace(memorySample, (_line, series: string, value: string) => `${series} ${Number(value) * scale}`)
    .replace(/<duration>/g, '0.002')
    .replace('<version>', process.version);
  const name = `pve-${String(index).padStart(4, '0')}`;
  return { instance: `${name}:9847`, cluster: `dc${index % 4}`, fixture, startAlertVms: startAlertVms[fixture] ?? [], alerts: fixtureAlerts[fixture]!, body };
}
