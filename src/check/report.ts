import type { HostMemoryFacts } from '../collectors/memory.js';
import { isVfioDriver } from '../collectors/pci.js';
import type { Snapshot } from '../collectors/types.js';
import { passthroughDeviceCount, type Vm } from '../collectors/vm-types.js';
import { gib, headroomTrend, hostHeadroomBytes, passthroughRisk, reclaimableArcBytes, startHeadroom, type HeadroomTrend, type StartHeadroom } from './headroom.js';
import { aerUncorrectable, findProblems, type Problem } from './problems.js';

export interface DeviceRow {
  address: string;
  ids: string;
  vendorName: string;
  deviceName: string;
  classId: string;
  className: string;
  revision: string;
  driver: string;
  driverOverride: string | null;
  vfioBound: boolean;
  iommuGroup: string | null;
  assignedTo: string[];
  /** Reset methods in the kernel's order; empty: none; null: unknown (kernel before 5.15, or not read). */
  resetMethods: string[] | null;
  /** AER non-fatal + fatal error messages since the device was added; null without AER. */
  aerUncorrectableErrors: number | null;
  sriov: { totalVfs: number; numVfs: number } | null;
  /** A virtual function's physical function. */
  physfn: string | null;
}

export interface GroupRow {
  id: string;
  /** null: a member could not be read. */
  viable: boolean | null;
  members: { address: string; driver: string }[];
}

export interface VmRow {
  vmid: string;
  name: string;
  source: string;
  /** null: its pid file could not be read and no process was found for it. */
  running: boolean | null;
  startOnBoot: boolean;
  template: boolean;
  memoryConfiguredBytes: number | null;
  balloonEnabled: boolean;
  balloonMinBytes: number | null;
  balloonActualBytes: number | null;
  rssBytes: number | null;
  lockedBytes: number | null;
  hugepages: string | null;
  devices: string[];
  startHeadroom: StartHeadroom | null;
  /** A stopped VM without passthrough on a host whose passthrough VMs run: what its start leaves them. */
  passthroughRisk: {
    headroomBytes: number;
    floorBytes: number;
    fullBytes: number;
    floorHeadroomBytes: number;
    fullHeadroomBytes: number;
    /** The running passthrough VMs, largest first. */
    atRisk: string[];
  } | null;
}

export interface StartVerdict {
  vmid: string;
  /** 0: fits (or may start with a warning), 1: would OOM or its devices/group are not ready, 2: could not judge. */
  exitCode: 0 | 1 | 2;
  /** warn: it may start, but once its guest uses all of its memory a passthrough VM is at risk. */
  verdict: 'fits' | 'warn' | 'refuse' | 'unknown';
  reason: string;
}

export interface DiskControllerRow {
  address: string;
  driver: string;
  vfioBound: boolean;
  assignedTo: string[];
  blockDevices: {
    name: string;
    type: 'disk' | 'partition';
    parent: string | null;
    sizeBytes: number;
    model: string | null;
    serial: string | null;
    fsType: string | null;
    /** null: whether the host uses it could not be told. */
    held: boolean | null;
    users: { kind: string; name: string }[];
  }[];
}

/** What the host does with a block device, as `check` and the status page word it. */
export const describeBlockUse = (device: DiskControllerRow['blockDevices'][number]): string => {
  if (device.users.length > 0) return `in use: ${device.users.map((user) => `${user.kind} ${user.name}`).join(', ')}`;
  if (device.held === null) return 'use unknown';
  return device.held ? 'in use (its partitions)' : 'not in use';
};

export interface OomKillRow {
  vmid: string;
  name: string;
  comm: string;
  pid: number;
  constraint: string;
  time: string | null;
  rssBytes: number;
}

export interface CheckReport {
  generatedAt: string;
  problems: Problem[];
  verdict: StartVerdict | null;
  memory: MemoryRow | null;
  vms: VmRow[];
  devices: DeviceRow[];
  groups: GroupRow[];
  /** Storage controllers and other devices with disks behind them, with those disks and what holds them. */
  disks: DiskControllerRow[];
  /** The last OOM kill of each VM the kernel log still holds, newest first. */
  oomKills: OomKillRow[];
  collectors: { name: string; success: boolean; errors: string[] }[];
}

export type MemoryRow = Omit<HostMemoryFacts, 'recent'> & {
  reclaimableArcBytes: number;
  /** MemAvailable + reclaimable ARC − reserve (vfio:host_memory_headroom_bytes). */
  headroomBytes: number;
  /** On the exporter's samples of the last 5 minutes; null from a single sample (`check`). */
  trend: HeadroomTrend | null;
};

function memoryRow({ recent, ...memory }: HostMemoryFacts, reserveBytes: number): MemoryRow {
  return {
    ...memory,
    reclaimableArcBytes: reclaimableArcBytes(memory),
    headroomBytes: hostHeadroomBytes(memory, reserveBytes),
    trend: headroomTrend(recent, reserveBytes) ?? null,
  };
}

function vmRow(vm: Vm, vms: readonly Vm[], memory: HostMemoryFacts | undefined, reserveBytes: number): VmRow {
  const risk = memory ? passthroughRisk(vm, vms, memory, reserveBytes) : undefined;
  return {
    vmid: vm.vmid,
    name: vm.name,
    source: vm.source,
    running: vm.running ?? null,
    startOnBoot: vm.startOnBoot,
    template: vm.template,
    memoryConfiguredBytes: vm.memoryConfiguredBytes ?? null,
    balloonEnabled: vm.balloonEnabled,
    balloonMinBytes: vm.balloonMinBytes ?? null,
    balloonActualBytes: vm.qmp?.balloonActualBytes ?? null,
    rssBytes: vm.process?.rssBytes ?? null,
    lockedBytes: vm.process?.lockedBytes ?? null,
    hugepages: vm.hugepages ?? null,
    devices: [...vm.devices.map((device) => device.pciAddress), ...vm.mdevs.map((mdev) => `mdev ${mdev.uuid}${mdev.parentPciAddress ? ` on ${mdev.parentPciAddress}` : ''}`)],
    startHeadroom: vm.running === false && memory ? (startHeadroom(vm, memory, reserveBytes) ?? null) : null,
    passthroughRisk: risk ? { ...risk, atRisk: risk.atRisk.map((each) => each.vmid) } : null,
  };
}

export function judgeStart(snapshot: Snapshot, problems: readonly Problem[], vmid: string, reserveBytes: number): StartVerdict {
  const unknown = (reason: string): StartVerdict => ({ vmid, exitCode: 2, verdict: 'unknown', reason });
  const vms = snapshot.facts.vm?.vms;
  if (!vms) return unknown('the vm collector gave no VMs (disabled or failed)');
  const vm = vms.find((candidate) => candidate.vmid === vmid);
  if (!vm) return unknown(`no VM ${vmid} on this host`);
  if (vm.running) return { vmid, exitCode: 0, verdict: 'fits', reason: `VM ${vmid} is already running` };
  if (vm.running === undefined) return unknown(`whether VM ${vmid} runs is unknown: ${vm.readErrors.join('; ')}`);
  if (vm.template) return { vmid, exitCode: 1, verdict: 'refuse', reason: `VM ${vmid} is a template: qemu-server does not start templates; clone it (qm clone ${vmid} <newid>) and start the clone` };
  const blocking = problems.filter((problem) => problem.vmid === vmid && problem.blocksStart);
  if (blocking.length > 0) return { vmid, exitCode: 1, verdict: 'refuse', reason: blocking.map((problem) => `${problem.summary} Fix: ${problem.fix}`).join('\n') };
  const memory = snapshot.facts.memory;
  if (!memory) return unknown('host memory could not be read');
  const headroom = startHeadroom(vm, memory, reserveBytes);
  if (!headroom) return unknown(vm.hugepages === undefined ? `VM ${vmid} has no configured memory` : `which hugepage pool VM ${vmid} draws on is unknown (hugepages ${vm.hugepages})`);
  if (headroom.size !== undefined && headroom.headroomBytes < 0)
    return {
      vmid,
      exitCode: 1,
      verdict: 'refuse',
      reason: `VM ${vmid} needs ${gib(headroom.requiredBytes)} of ${headroom.size} hugepages but the pool has ${gib(headroom.availableBytes)} free: QEMU cannot map its memory and the start fails. Grow the ${headroom.size} pool (/sys/kernel/mm/hugepages/hugepages-*kB/nr_hugepages).`,
    };
  const risk = passthroughRisk(vm, vms, memory, reserveBytes);
  if (risk && risk.fullHeadroomBytes < 0) {
    const atRisk = risk.atRisk.map((each) => `VM ${each.vmid}${each.name && each.name !== each.vmid ? ` (${each.name})` : ''}`).join(', ');
    return {
      vmid,
      exitCode: 0,
      verdict: 'warn',
      reason: `VM ${vmid} starts ballooned to ${gib(risk.floorBytes)} of the host's ${gib(risk.headroomBytes)} of headroom, but its guest can grow to ${gib(risk.fullBytes)}, ${gib(-risk.fullHeadroomBytes)} more than the host has: then the OOM killer picks the largest process, ${atRisk}, whose memory is pinned. Keep its guest's use below ${gib(risk.headroomBytes)} or free host memory.`,
    };
  }
  const pinned = passthroughDeviceCount(vm) > 0 ? 'pinned ' : '';
  const spared = risk ? ` for the running passthrough VMs (${risk.atRisk.map((each) => each.vmid).join(', ')})` : '';
  const from = headroom.size === undefined ? '' : ` of ${headroom.size} hugepages`;
  return { vmid, exitCode: 0, verdict: 'fits', reason: `VM ${vmid} needs ${gib(headroom.requiredBytes)}${from} ${pinned}and the host can give ${gib(headroom.availableBytes)}: ${gib(headroom.headroomBytes)} to spare${spared}` };
}

/** The whole host as `check`, `check --json` and the status page show it. */
export function buildReport(snapshot: Snapshot, options: { reserveBytes: number; vmid: string | undefined }): CheckReport {
  const { pci, iommu, memory, vm, disks, pci_health } = snapshot.facts;
  const health = new Map((pci_health?.devices ?? []).map((device) => [device.address, device]));
  const vms = vm?.vms ?? [];
  const problems = findProblems({ snapshot, reserveBytes: options.reserveBytes });
  const assigned = new Map<string, string[]>();
  for (const each of vms) for (const device of each.devices) assigned.set(device.pciAddress, [...(assigned.get(device.pciAddress) ?? []), each.vmid]);
  return {
    generatedAt: new Date(snapshot.takenAtMs).toISOString(),
    problems,
    verdict: options.vmid === undefined ? null : judgeStart(snapshot, problems, options.vmid, options.reserveBytes),
    memory: memory ? memoryRow(memory, options.reserveBytes) : null,
    vms: vms.map((each) => vmRow(each, vms, memory, options.reserveBytes)),
    devices: (pci?.devices ?? []).map((device) => {
      const deviceHealth = health.get(device.address);
      return {
      address: device.address,
      ids: `${device.vendorId.slice(2)}:${device.deviceId.slice(2)}`,
      vendorName: device.vendorName,
      deviceName: device.deviceName,
      classId: device.classId,
      className: device.className,
      revision: device.revision,
      driver: device.driver ?? 'none',
      driverOverride: device.driverOverride ?? null,
      vfioBound: device.vfioBound,
      iommuGroup: device.iommuGroup ?? null,
      assignedTo: assigned.get(device.address) ?? [],
      resetMethods: deviceHealth?.resetMethods ?? null,
      aerUncorrectableErrors: deviceHealth?.aer.nonfatal || deviceHealth?.aer.fatal ? aerUncorrectable(deviceHealth) : null,
      sriov: deviceHealth?.sriov ?? null,
      physfn: deviceHealth?.physfn ?? null,
      };
    }),
    groups: (iommu?.groups ?? []).map((group) => ({
      id: group.id,
      viable: group.viable ?? null,
      members: group.members.map((member) => ({ address: member.address, driver: member.driverKnown ? (member.driver ?? 'none') : 'unknown' })),
    })),
    disks: (disks?.controllers ?? []).map((controller) => ({
      address: controller.address,
      driver: controller.driver ?? 'none',
      vfioBound: isVfioDriver(controller.driver),
      assignedTo: assigned.get(controller.address) ?? [],
      blockDevices: disks!.devices
        .filter((device) => device.pciAddresses.includes(controller.address))
        .map((device) => ({
          name: device.name,
          type: device.kind,
          parent: device.parent ?? null,
          sizeBytes: device.sizeBytes,
          model: device.model ?? null,
          serial: device.serial ?? null,
          fsType: device.fsType ?? null,
          held: device.held ?? null,
          users: device.users,
        })),
    })),
    oomKills: (snapshot.facts.oom?.kernelLog?.lastKills ?? [])
      .map((kill) => ({
        vmid: kill.vmid,
        name: vms.find((candidate) => candidate.vmid === kill.vmid)?.name ?? '',
        comm: kill.comm,
        pid: kill.pid,
        constraint: kill.constraint,
        time: kill.timestampSeconds === undefined ? null : new Date(kill.timestampSeconds * 1000).toISOString(),
        rssBytes: kill.rssBytes,
      }))
      .sort((a, b) => (b.time ?? '').localeCompare(a.time ?? '')),
    collectors: snapshot.outcomes.map((outcome) => ({ name: outcome.name, success: outcome.success, errors: outcome.errors })),
  };
}
