import type { IommuFacts } from '../collectors/iommu.js';
import type { HostMemoryFacts } from '../collectors/memory.js';
import type { PciDevice, PciFacts } from '../collectors/pci.js';
import type { Snapshot } from '../collectors/types.js';
import type { Vm } from '../collectors/vm-types.js';
import { gib, pinnedCommitment, startHeadroom } from './headroom.js';

export type Severity = 'critical' | 'warning' | 'info';

/** One thing wrong on the host, named as the alert that fires for it, with the fix. */
export interface Problem {
  alert: string;
  severity: Severity;
  /** The VM it concerns, when it concerns one. */
  vmid: string | undefined;
  summary: string;
  fix: string;
  /** Anchor in docs/runbooks.md. */
  runbook: string;
  /** Whether it keeps the VM from starting safely (check --vmid exits 1). */
  blocksStart: boolean;
}

export interface ProblemInputs {
  snapshot: Snapshot;
  reserveBytes: number;
}

const mib = (bytes: number): number => Math.floor(bytes / 1024 ** 2);
const runbook = (alert: string): string => `docs/runbooks.md#${alert.toLowerCase()}`;
const vmLabel = (vm: Vm): string => (vm.name && vm.name !== vm.vmid ? `VM ${vm.vmid} (${vm.name})` : `VM ${vm.vmid}`);
const hasPassthrough = (vm: Vm): boolean => vm.devices.length > 0;

/** How to apply a memory or balloon change, in the VM's own tooling. */
const configCommand = (vm: Vm, change: { memoryMiB?: number; balloonOff?: boolean }): string => {
  if (vm.source === 'proxmox') {
    const args = [change.balloonOff ? '--balloon 0' : '', change.memoryMiB !== undefined ? `--memory ${change.memoryMiB}` : ''].filter(Boolean);
    return `qm set ${vm.vmid} ${args.join(' ')}`;
  }
  const steps: string[] = [];
  if (change.memoryMiB !== undefined) steps.push(`virsh setmaxmem ${vm.vmid} ${change.memoryMiB}M --config && virsh setmem ${vm.vmid} ${change.memoryMiB}M --config`);
  if (change.balloonOff) steps.push(`virsh edit ${vm.vmid}: <memballoon model='none'/>`);
  return vm.source === 'libvirt' ? steps.join('; ') : `start QEMU with ${change.memoryMiB !== undefined ? `-m ${change.memoryMiB}` : ''}${change.balloonOff ? ' and no virtio-balloon device' : ''}`.trim();
};

function memoryProblems(vms: readonly Vm[], memory: HostMemoryFacts, reserveBytes: number): Problem[] {
  const problems: Problem[] = [];
  for (const vm of vms.filter(hasPassthrough)) {
    const balloonBelowMemory =
      vm.balloonEnabled && vm.balloonMinBytes !== undefined && vm.memoryConfiguredBytes !== undefined && vm.balloonMinBytes < vm.memoryConfiguredBytes;
    if (vm.running === false) {
      const headroom = startHeadroom(vm, memory, reserveBytes);
      if (headroom && headroom.headroomBytes < 0) {
        const fitsMiB = Math.floor(mib(Math.max(0, headroom.availableBytes)) / 1024) * 1024;
        const pool = headroom.pool === 'hugepages' ? 'free hugepages' : 'MemAvailable + reclaimable ZFS ARC − reserve';
        problems.push({
          alert: 'VfioPassthroughVMStartWouldOOM',
          severity: vm.startOnBoot ? 'critical' : 'warning',
          vmid: vm.vmid,
          summary: `${vmLabel(vm)} needs ${gib(headroom.requiredBytes)} pinned but the host can give ${gib(headroom.availableBytes)} (${pool}): starting it now triggers the OOM killer, short by ${gib(-headroom.headroomBytes)}.`,
          fix:
            headroom.pool === 'hugepages'
              ? `Grow the hugepage pool (sysctl vm.nr_hugepages) by ${Math.ceil(-headroom.headroomBytes / Math.max(1, memory.hugepageSizeBytes))} pages, or lower the VM's memory to ${fitsMiB} MiB: ${configCommand(vm, { memoryMiB: fitsMiB })}`
              : `Lower the VM's memory to what fits (${fitsMiB} MiB)${balloonBelowMemory ? ' and turn ballooning off' : ''}: ${configCommand(vm, { memoryMiB: fitsMiB, balloonOff: balloonBelowMemory })}; or free host memory first (stop other VMs, cap the ZFS ARC with zfs_arc_max).`,
          runbook: runbook('VfioPassthroughVMStartWouldOOM'),
          blocksStart: true,
        });
      }
    }
    if (balloonBelowMemory) {
      problems.push({
        alert: 'VfioPassthroughVMBalloonEnabled',
        severity: 'warning',
        vmid: vm.vmid,
        summary: `${vmLabel(vm)} has a host PCI device and ballooning on (floor ${gib(vm.balloonMinBytes!)} of ${gib(vm.memoryConfiguredBytes!)}): VFIO pins all guest RAM, so the balloon cannot give any back and the host must hold the full ${gib(vm.memoryConfiguredBytes!)}.`,
        fix: `Turn ballooning off: ${configCommand(vm, { balloonOff: true })}`,
        runbook: runbook('VfioPassthroughVMBalloonEnabled'),
        blocksStart: false,
      });
    }
  }
  for (const { pool, committedBytes, capacityBytes, vmids } of pinnedCommitment(vms, memory, reserveBytes)) {
    if (committedBytes <= capacityBytes) continue;
    const capacity = pool === 'hugepages' ? 'the hugepage pool' : 'MemTotal − reserve − ARC floor − hugepage pool';
    problems.push({
      alert: 'VfioPassthroughMemoryOvercommitted',
      severity: 'warning',
      vmid: undefined,
      summary: `Passthrough VMs that run or start on boot (${vmids.join(', ')}) pin ${gib(committedBytes)} of ${pool}, more than the ${gib(capacityBytes)} the host can hold (${capacity}): after a reboot not all of them will start.`,
      fix: 'Lower the memory of some passthrough VMs (qm set <vmid> --memory <MiB>), take one off start-on-boot (qm set <vmid> --onboot 0), or lower the ZFS ARC floor (zfs_arc_min).',
      runbook: runbook('VfioPassthroughMemoryOvercommitted'),
      blocksStart: false,
    });
  }
  return problems;
}

const vendorDevice = (device: PciDevice): string => `${device.vendorId.slice(2)}:${device.deviceId.slice(2)}`;

function deviceProblems(vms: readonly Vm[], pci: PciFacts, iommu: IommuFacts | undefined): Problem[] {
  const problems: Problem[] = [];
  const devices = new Map(pci.devices.map((device) => [device.address, device]));
  for (const vm of vms) {
    for (const assigned of vm.devices) {
      if (assigned.present === false) {
        problems.push({
          alert: 'VfioPassthroughDeviceMissing',
          severity: 'warning',
          vmid: vm.vmid,
          summary: `${vmLabel(vm)} is assigned ${assigned.pciAddress} as ${assigned.slot}, but the host has no PCI device at that address: the VM does not start with it.`,
          fix: `Find where the card went (lspci -nn; a move to another slot changes its address, a dead card or a BIOS change can hide it) and point ${assigned.slot} at it (${vm.source === 'proxmox' ? `qm set ${vm.vmid} --${assigned.slot} <addr>` : 'virsh edit'}), or remove ${assigned.slot}.`,
          runbook: runbook('VfioPassthroughDeviceMissing'),
          blocksStart: true,
        });
        continue;
      }
      const device = devices.get(assigned.pciAddress);
      if (!device?.driver || device.vfioBound || device.driver === 'pci-stub') continue;
      problems.push({
        alert: 'VfioPassthroughDeviceOnHostDriver',
        severity: 'warning',
        vmid: vm.vmid,
        summary: `${assigned.pciAddress} (${device.deviceName || vendorDevice(device)}), assigned to ${vmLabel(vm)} as ${assigned.slot}, is bound to the host driver ${device.driver}: the host can use it (and the disks or links behind it) before the VM gets it.`,
        fix: `Have vfio-pci claim it at boot: echo "options vfio-pci ids=${vendorDevice(device)}" >> /etc/modprobe.d/vfio.conf; echo "softdep ${device.driver} pre: vfio-pci" >> /etc/modprobe.d/vfio.conf; update-initramfs -u -k all; reboot. Or now, for this device only: echo vfio-pci > /sys/bus/pci/devices/${assigned.pciAddress}/driver_override; echo ${assigned.pciAddress} > /sys/bus/pci/devices/${assigned.pciAddress}/driver/unbind; echo ${assigned.pciAddress} > /sys/bus/pci/drivers_probe`,
        runbook: runbook('VfioPassthroughDeviceOnHostDriver'),
        blocksStart: true,
      });
    }
  }
  if (!iommu) return problems;
  const assignedTo = new Map<string, Vm[]>();
  for (const vm of vms) for (const device of vm.devices) assignedTo.set(device.pciAddress, [...(assignedTo.get(device.pciAddress) ?? []), vm]);
  for (const group of iommu.groups) {
    if (group.blocking.length === 0) continue;
    const users = [...new Set(group.members.flatMap((member) => assignedTo.get(member.address) ?? []))];
    const vfioMembers = group.members.filter((member) => member.driver?.includes('vfio'));
    if (users.length === 0 && vfioMembers.length === 0) continue;
    const blockers = group.blocking.map((member) => `${member.address} on ${member.driver}`).join(', ');
    for (const vm of users.length > 0 ? users : [undefined]) {
      problems.push({
        alert: 'VfioIOMMUGroupNotViable',
        severity: 'warning',
        vmid: vm?.vmid,
        summary: `IOMMU group ${group.id} holds a passed-through device${vm ? ` of ${vmLabel(vm)}` : ''} next to ${blockers}: VFIO refuses a group while any device in it is on a host driver.`,
        fix: `Pass every device of group ${group.id} to the same VM, or bind them to vfio-pci too (driver_override), or move the card to a slot with its own group (check ACS on the root port).`,
        runbook: runbook('VfioIOMMUGroupNotViable'),
        blocksStart: true,
      });
    }
  }
  if (!iommu.enabled) {
    for (const vm of vms.filter(hasPassthrough)) {
      problems.push({
        alert: 'VfioIOMMUDisabled',
        severity: 'critical',
        vmid: vm.vmid,
        summary: `${vmLabel(vm)} has host PCI devices but the kernel has no IOMMU groups: passthrough cannot work.`,
        fix: 'Enable VT-d (Intel) or AMD-Vi/IOMMU in the firmware, add intel_iommu=on iommu=pt (Intel) to the kernel command line (/etc/kernel/cmdline then proxmox-boot-tool refresh, or GRUB_CMDLINE_LINUX_DEFAULT then update-grub), and reboot.',
        runbook: runbook('VfioIOMMUDisabled'),
        blocksStart: true,
      });
    }
  }
  return problems;
}

/** As the rule vfio:vm_oom_kills_recent: a VM's kill counts as recent for 15 minutes. */
export const recentKillSeconds = 900;

function oomProblems(snapshot: Snapshot, vms: readonly Vm[]): Problem[] {
  const nowSeconds = snapshot.takenAtMs / 1000;
  return (snapshot.facts.oom?.kernelLog?.lastKills ?? [])
    .filter((kill) => kill.vmid !== '' && kill.timestampSeconds !== undefined && kill.timestampSeconds > nowSeconds - recentKillSeconds)
    .map((kill) => {
      const vm = vms.find((candidate) => candidate.vmid === kill.vmid);
      return {
        alert: 'VfioVMOOMKilled',
        severity: 'critical' as const,
        vmid: kill.vmid,
        summary: `${vm ? vmLabel(vm) : `VM ${kill.vmid}`} was killed by the OOM killer at ${new Date(kill.timestampSeconds! * 1000).toISOString()} (${kill.comm} pid ${kill.pid}, ${kill.constraint || 'no constraint logged'}), holding ${gib(kill.rssBytes)}.`,
        fix: 'Before starting it again, make it fit: turn ballooning off and lower its memory to what the host can give (vfio-exporter check --vmid ' + kill.vmid + ' names the size), or free host memory.',
        runbook: runbook('VfioVMOOMKilled'),
        blocksStart: false,
      };
    });
}

function collectorProblems(snapshot: Snapshot): Problem[] {
  return snapshot.outcomes
    .filter((outcome) => !outcome.success)
    .map((outcome) => ({
      alert: 'VfioExporterCollectorFailing',
      severity: 'warning' as const,
      vmid: undefined,
      summary: `Collector ${outcome.name} failed: ${outcome.errors.join('; ')}`,
      fix: 'Check the paths the exporter reads (--path.* flags) and its permissions; the log names the file.',
      runbook: runbook('VfioExporterCollectorFailing'),
      blocksStart: false,
    }));
}

const severityOrder: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

/** Every problem on the host, most severe first. */
export function findProblems({ snapshot, reserveBytes }: ProblemInputs): Problem[] {
  const { vm, memory, pci, iommu } = snapshot.facts;
  const vms = vm?.vms ?? [];
  return [
    ...(memory ? memoryProblems(vms, memory, reserveBytes) : []),
    ...(pci ? deviceProblems(vms, pci, iommu) : []),
    ...oomProblems(snapshot, vms),
    ...collectorProblems(snapshot),
  ].sort((a, b) => severityOrder[a.severity] - severityOrder[b.severity]);
}
