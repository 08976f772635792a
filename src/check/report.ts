import type { HostMemoryFacts } from '../collectors/memory.js';
import type { Snapshot } from '../collectors/types.js';
import type { Vm } from '../collectors/vm-types.js';
import { gib, reclaimableArcBytes, startHeadroom, type StartHeadroom } from './headroom.js';
import { findProblems, type Problem } from './problems.js';

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
  memoryConfiguredBytes: number | null;
  balloonEnabled: boolean;
  balloonMinBytes: number | null;
  balloonActualBytes: number | null;
  rssBytes: number | null;
  lockedBytes: number | null;
  hugepages: string | null;
  devices: string[];
  startHeadroom: StartHeadroom | null;
}

export interface StartVerdict {
  vmid: string;
  /** 0: fits, 1: would OOM or its devices/group are not ready, 2: could not judge. */
  exitCode: 0 | 1 | 2;
  verdict: 'fits' | 'refuse' | 'unknown';
  reason: string;
}

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
  memory: (HostMemoryFacts & { reclaimableArcBytes: number }) | null;
  vms: VmRow[];
  devices: DeviceRow[];
  groups: GroupRow[];
  /** The last OOM kill of each VM the kernel log still holds, newest first. */
  oomKills: OomKillRow[];
  collectors: { name: string; success: boolean; errors: string[] }[];
}

function vmRow(vm: Vm, memory: HostMemoryFacts | undefined, reserveBytes: number): VmRow {
  return {
    vmid: vm.vmid,
    name: vm.name,
    source: vm.source,
    running: vm.running ?? null,
    startOnBoot: vm.startOnBoot,
    memoryConfiguredBytes: vm.memoryConfiguredBytes ?? null,
    balloonEnabled: vm.balloonEnabled,
    balloonMinBytes: vm.balloonMinBytes ?? null,
    balloonActualBytes: vm.qmp?.balloonActualBytes ?? null,
    rssBytes: vm.process?.rssBytes ?? null,
    lockedBytes: vm.process?.lockedBytes ?? null,
    hugepages: vm.hugepages ?? null,
    devices: vm.devices.map((device) => device.pciAddress),
    startHeadroom: vm.running === false && memory ? (startHeadroom(vm, memory, reserveBytes) ?? null) : null,
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
  const blocking = problems.filter((problem) => problem.vmid === vmid && problem.blocksStart);
  if (blocking.length > 0) return { vmid, exitCode: 1, verdict: 'refuse', reason: blocking.map((problem) => `${problem.summary} Fix: ${problem.fix}`).join('\n') };
  const memory = snapshot.facts.memory;
  if (!memory) return unknown('host memory could not be read');
  const headroom = startHeadroom(vm, memory, reserveBytes);
  if (!headroom) return unknown(`VM ${vmid} has no configured memory`);
  const pinned = vm.devices.length > 0 ? 'pinned ' : '';
  return { vmid, exitCode: 0, verdict: 'fits', reason: `VM ${vmid} needs ${gib(headroom.requiredBytes)} ${pinned}and the host can give ${gib(headroom.availableBytes)}: ${gib(headroom.headroomBytes)} to spare` };
}

/** The whole host as `check`, `check --json` and the status page show it. */
export function buildReport(snapshot: Snapshot, options: { reserveBytes: number; vmid: string | undefined }): CheckReport {
  const { pci, iommu, memory, vm } = snapshot.facts;
  const vms = vm?.vms ?? [];
  const problems = findProblems({ snapshot, reserveBytes: options.reserveBytes });
  const assigned = new Map<string, string[]>();
  for (const each of vms) for (const device of each.devices) assigned.set(device.pciAddress, [...(assigned.get(device.pciAddress) ?? []), each.vmid]);
  return {
    generatedAt: new Date(snapshot.takenAtMs).toISOString(),
    problems,
    verdict: options.vmid === undefined ? null : judgeStart(snapshot, problems, options.vmid, options.reserveBytes),
    memory: memory ? { ...memory, reclaimableArcBytes: reclaimableArcBytes(memory) } : null,
    vms: vms.map((each) => vmRow(each, memory, options.reserveBytes)),
    devices: (pci?.devices ?? []).map((device) => ({
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
    })),
    groups: (iommu?.groups ?? []).map((group) => ({
      id: group.id,
      viable: group.viable ?? null,
      members: group.members.map((member) => ({ address: member.address, driver: member.driverKnown ? (member.driver ?? 'none') : 'unknown' })),
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
