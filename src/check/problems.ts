import type { BlockUser, DiskFacts } from '../collectors/disks.js';
import type { IommuFacts } from '../collectors/iommu.js';
import type { HostMemoryFacts } from '../collectors/memory.js';
import type { PciDevice, PciFacts } from '../collectors/pci.js';
import type { PciHealthDevice, PciHealthFacts } from '../collectors/pci-health.js';
import { isHostModule, type BootBindingDevice, type BootBindingFacts } from '../collectors/boot-binding.js';
import type { Snapshot } from '../collectors/types.js';
import { passthroughDeviceCount, type Vm } from '../collectors/vm-types.js';
import { hugepageLabelBytes, hugepageSizeLabel } from '../parse/hugepages.js';
import { gib, passthroughRisk, pinnedCommitment, startHeadroom, type StartHeadroom } from './headroom.js';

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
/**
 * A memory size to propose: what the host can give, rounded down to whole GiB, or to 128 MiB steps when it
 * has less than 1 GiB to give (whole GiB would propose nothing); 0 when not even that fits.
 */
export function memoryThatFitsMiB(availableBytes: number): number {
  const step = availableBytes >= 1024 ** 3 ? 1024 : 128;
  return Math.floor(mib(Math.max(0, availableBytes)) / step) * step;
}
const runbook = (alert: string): string => `docs/runbooks.md#${alert.toLowerCase()}`;
const vmLabel = (vm: Vm): string => (vm.name && vm.name !== vm.vmid ? `VM ${vm.vmid} (${vm.name})` : `VM ${vm.vmid}`);
const hasPassthrough = (vm: Vm): boolean => passthroughDeviceCount(vm) > 0;

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

/** How to grow the pool of one page size: the sysfs file and the boot parameters that keep it. */
function hugepagePoolWords(size: string, memory: HostMemoryFacts): { pageBytes: number; grow: (pages: number) => string } | undefined {
  const pool = memory.hugepagePools.find((each) => hugepageSizeLabel(each.pageBytes) === size);
  const pageBytes = pool?.pageBytes ?? hugepageLabelBytes(size);
  if (pageBytes === undefined) return undefined;
  const pages = pool?.pages ?? 0;
  return {
    pageBytes,
    grow: (more) =>
      `echo ${pages + more} > /sys/kernel/mm/hugepages/hugepages-${pageBytes / 1024}kB/nr_hugepages, and to keep it across reboots hugepagesz=${size} hugepages=${pages + more} on the kernel command line${pageBytes >= 1024 ** 3 ? ' (1 GiB pages are found at boot; later the kernel rarely has a free, aligned GiB)' : ''}`,
  };
}

/** Grow the pool by the pages it lacks; or, for a VM on this pool alone, take only whole pages of what it has free. */
function hugepageFix(vm: Vm, headroom: StartHeadroom, pool: { pageBytes: number; grow: (pages: number) => string }): string {
  const pagesShort = Math.ceil(-headroom.headroomBytes / pool.pageBytes);
  const alsoProxmox = vm.source === 'proxmox' ? ' qemu-server tries to add them itself at start, and the start fails when the kernel cannot find them.' : '';
  const fitsMiB = mib(Math.floor(Math.max(0, headroom.availableBytes) / pool.pageBytes) * pool.pageBytes);
  const lower = vm.hugepageDemand?.length === 1 && fitsMiB > 0 ? ` Or lower the VM's memory to ${fitsMiB} MiB: ${configCommand(vm, { memoryMiB: fitsMiB })}` : '';
  return `Grow the ${headroom.size} pool by ${pagesShort} pages: ${pool.grow(pagesShort)}.${alsoProxmox}${lower}`;
}

function memoryProblems(vms: readonly Vm[], memory: HostMemoryFacts, reserveBytes: number): Problem[] {
  const problems: Problem[] = [];
  for (const vm of vms.filter(hasPassthrough)) {
    const balloonBelowMemory =
      vm.balloonEnabled && vm.balloonMinBytes !== undefined && vm.memoryConfiguredBytes !== undefined && vm.balloonMinBytes < vm.memoryConfiguredBytes;
    if (vm.running === false) {
      const headroom = startHeadroom(vm, memory, reserveBytes);
      if (headroom && headroom.headroomBytes < 0) {
        const fitsMiB = memoryThatFitsMiB(headroom.availableBytes);
        const hugepages = headroom.size !== undefined ? hugepagePoolWords(headroom.size, memory) : undefined;
        problems.push({
          alert: 'VfioPassthroughVMStartWouldOOM',
          severity: vm.startOnBoot ? 'critical' : 'warning',
          vmid: vm.vmid,
          summary: hugepages
            ? `${vmLabel(vm)} needs ${gib(headroom.requiredBytes)} of ${headroom.size} hugepages but the pool has ${gib(headroom.availableBytes)} free: QEMU cannot map its memory and the start fails (no OOM kill), short by ${gib(-headroom.headroomBytes)}.`
            : `${vmLabel(vm)} needs ${gib(headroom.requiredBytes)} pinned but the host can give ${gib(headroom.availableBytes)} (MemAvailable + reclaimable ZFS ARC − reserve): starting it now triggers the OOM killer, short by ${gib(-headroom.headroomBytes)}.`,
          fix: hugepages
            ? hugepageFix(vm, headroom, hugepages)
            : fitsMiB === 0
              ? `The host has no memory to give this VM now: free host memory first (stop other VMs, cap the ZFS ARC with zfs_arc_max)${balloonBelowMemory ? `, and turn ballooning off: ${configCommand(vm, { balloonOff: true })}` : ''}.`
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
  for (const vm of vms) {
    const risk = passthroughRisk(vm, vms, memory, reserveBytes);
    if (!risk || risk.floorHeadroomBytes >= 0) continue;
    const fitsMiB = Math.floor(mib(Math.max(0, risk.headroomBytes)) / 1024) * 1024;
    const takes = risk.floorBytes < risk.fullBytes ? `its balloon floor, of ${gib(risk.fullBytes)}` : 'all of its memory';
    problems.push({
      alert: 'VfioVMStartEndangersPassthrough',
      severity: 'warning',
      vmid: vm.vmid,
      summary: `${vmLabel(vm)} has no host PCI device, but once started takes at least ${gib(risk.floorBytes)} (${takes}) and the host has ${gib(risk.headroomBytes)} of headroom: starting it leaves ${gib(risk.floorHeadroomBytes)}, and the OOM killer picks the largest process, ${risk.atRisk.map(vmLabel).join(', ')} with its memory pinned.`,
      fix: `Free host memory before starting it (stop another VM, cap the ZFS ARC with zfs_arc_max)${fitsMiB > 0 ? `, or give it at most ${fitsMiB} MiB: ${configCommand(vm, { memoryMiB: fitsMiB })}` : ''}.`,
      runbook: runbook('VfioVMStartEndangersPassthrough'),
      blocksStart: true,
    });
  }
  for (const { pool, size, committedBytes, capacityBytes, vmids } of pinnedCommitment(vms, memory, reserveBytes)) {
    if (committedBytes <= capacityBytes) continue;
    const capacity = pool === 'hugepages' ? `the ${size} hugepage pool` : 'MemTotal − reserve − ARC floor − hugepage pools';
    problems.push({
      alert: 'VfioPassthroughMemoryOvercommitted',
      severity: 'warning',
      vmid: undefined,
      summary: `Passthrough VMs that run or start on boot (${vmids.join(', ')}) pin ${gib(committedBytes)} of ${pool === 'hugepages' ? `${size} hugepages` : pool}, more than the ${gib(capacityBytes)} the host can hold (${capacity}): after a reboot not all of them will start.`,
      fix:
        pool === 'hugepages'
          ? `Grow the ${size} pool to hold them (hugepagesz=${size} hugepages=<pages> on the kernel command line), lower the memory of some of them (qm set <vmid> --memory <MiB>), or take one off start-on-boot (qm set <vmid> --onboot 0).`
          : 'Lower the memory of some passthrough VMs (qm set <vmid> --memory <MiB>), take one off start-on-boot (qm set <vmid> --onboot 0), or lower the ZFS ARC floor (zfs_arc_min).',
      runbook: runbook('VfioPassthroughMemoryOvercommitted'),
      blocksStart: false,
    });
  }
  return problems;
}

const vendorDevice = (device: PciDevice): string => `${device.vendorId.slice(2)}:${device.deviceId.slice(2)}`;

/**
 * The commands that make vfio-pci claim `device` at boot, before `driver`: from what boot_binding read when it
 * knows the device (ids already set, other devices with the same ids, initramfs), else from its vendor:device.
 */
function reserveAtBootCommands(device: PciDevice, driver: string, boot: BootBindingFacts | undefined): string {
  const bootDevice = boot?.devices.find((each) => each.address === device.address);
  if (boot && bootDevice) return bootReservationFix(bootDevice, boot, [driver]);
  return [...modprobeCommands([`options vfio-pci ids=${vendorDevice(device)}`, `softdep ${driver} pre: vfio-pci`]), 'update-initramfs -u -k all; reboot'].join('; ');
}

function deviceProblems(vms: readonly Vm[], pci: PciFacts, iommu: IommuFacts | undefined, boot: BootBindingFacts | undefined): Problem[] {
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
        fix: `Have vfio-pci claim it at boot: ${reserveAtBootCommands(device, device.driver, boot)}. Or now, for this device only: echo vfio-pci > /sys/bus/pci/devices/${assigned.pciAddress}/driver_override; echo ${assigned.pciAddress} > /sys/bus/pci/devices/${assigned.pciAddress}/driver/unbind; echo ${assigned.pciAddress} > /sys/bus/pci/drivers_probe`,
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

/** LVM names its dm devices `<vg>-<lv>` with every `-` inside a name doubled (lvm2 lib/misc/lvm-string.c build_dm_name). */
const volumeGroupOf = (dmName: string): string => (/^((?:[^-]|--)+)-/.exec(dmName)?.[1] ?? dmName).replace(/--/g, '-');

/** The command that makes the host let go of a block device. */
const releaseCommand = ({ kind, name }: BlockUser): string =>
  ({
    mount: `umount ${name}`,
    swap: `swapoff ${name}`,
    md: `mdadm --stop /dev/${name}`,
    lvm: `vgchange -an ${volumeGroupOf(name)}`,
    crypt: `cryptsetup close ${name}`,
    multipath: `multipath -f ${name}`,
    dm: `dmsetup remove ${name}`,
    zfs: `zpool export ${name}`,
  })[kind] ?? `stop ${kind} ${name}`;

const describeUser = (user: BlockUser): string => `${user.kind} ${user.name}`;

function diskProblems(vms: readonly Vm[], disks: DiskFacts, pci: PciFacts | undefined, boot: BootBindingFacts | undefined): Problem[] {
  const problems: Problem[] = [];
  const controllers = new Map(disks.controllers.map((controller) => [controller.address, controller]));
  const pciDevices = new Map((pci?.devices ?? []).map((device) => [device.address, device]));
  for (const vm of vms) {
    for (const assigned of vm.devices) {
      const controller = controllers.get(assigned.pciAddress);
      if (!controller || controller.blockDevices === 0) continue;
      const behind = disks.devices.filter((device) => device.pciAddresses.includes(assigned.pciAddress));
      const used = behind.filter((device) => device.users.length > 0);
      const pciDevice = pciDevices.get(assigned.pciAddress);
      const reserve = pciDevice
        ? `reserve the controller for vfio-pci at boot: ${reserveAtBootCommands(pciDevice, controller.driver ?? pciDevice.driver ?? '<driver>', boot)}`
        : 'reserve the controller for vfio-pci at boot (options vfio-pci ids=..., softdep <driver> pre: vfio-pci)';
      const where = `${assigned.pciAddress}${pciDevice?.deviceName ? ` (${pciDevice.deviceName})` : ''}, assigned to ${vmLabel(vm)} as ${assigned.slot}`;
      if (used.length > 0) {
        const release = [...new Set(used.flatMap((device) => device.users.map(releaseCommand)))];
        problems.push({
          alert: 'VfioPassthroughDiskHeldByHost',
          severity: 'critical',
          vmid: vm.vmid,
          summary: `${where}, has disks the host uses: ${used.map((device) => `${device.name} (${device.users.map(describeUser).join(', ')})`).join(', ')}. Starting the VM takes them from under the host; with the host driver kept, two kernels write the same disks.`,
          fix: `Release the disks first (${release.join('; ')}) and drop them from /etc/fstab, mdadm.conf, LVM and ZFS import lists; then ${reserve}`,
          runbook: runbook('VfioPassthroughDiskHeldByHost'),
          blocksStart: true,
        });
      } else if (vm.running === false) {
        const visible = behind.filter((device) => device.kind === 'disk');
        const unknown = behind.filter((device) => device.held === undefined).map((device) => device.name);
        problems.push({
          alert: 'VfioPassthroughControllerDisksOnHost',
          severity: 'warning',
          vmid: vm.vmid,
          summary: `${where}, is on the host driver ${controller.driver ?? 'none'} and the host sees its disks (${visible.map((device) => [device.name, device.model].filter(Boolean).join(' ')).join(', ')}), ${unknown.length > 0 ? `and whether it uses ${unknown.join(', ')} could not be told` : 'though nothing uses them now'}: until the VM starts, the host can mount, assemble or import them.`,
          fix: `So that the host never sees the disks, ${reserve}`,
          runbook: runbook('VfioPassthroughControllerDisksOnHost'),
          blocksStart: false,
        });
      }
    }
  }
  return problems;
}

/** `0000:0a:00.1` → `0000:0a:00`: the functions of one card. */
const slotOf = (address: string): string => address.replace(/\.[0-7]$/, '');

/** Uncorrectable AER error messages a device sent since it was added (the rules look at the last 15 minutes). */
export const aerUncorrectable = (device: PciHealthDevice | undefined): number => (device?.aer.nonfatal?.messages ?? 0) + (device?.aer.fatal?.messages ?? 0);

/** As the rules VfioPassthroughDeviceNoReset (slot without any reset method) and VfioPassthroughDeviceAERErrors (since boot). */
function deviceHealthProblems(vms: readonly Vm[], health: PciHealthFacts): Problem[] {
  const problems: Problem[] = [];
  const byAddress = new Map(health.devices.map((device) => [device.address, device]));
  for (const vm of vms) {
    for (const { pciAddress, slot } of vm.devices) {
      const device = byAddress.get(pciAddress);
      if (!device) continue;
      const slotKnown = health.devices.filter((each) => slotOf(each.address) === slotOf(pciAddress) && each.resetMethods !== undefined);
      if (device.resetMethods?.length === 0 && slotKnown.every((each) => each.resetMethods!.length === 0)) {
        problems.push({
          alert: 'VfioPassthroughDeviceNoReset',
          severity: 'warning',
          vmid: vm.vmid,
          summary: `${pciAddress}, assigned to ${vmLabel(vm)} as ${slot}, has no reset method (reset_method), nor has any other function of its slot: VFIO cannot reset it between VM runs, so a reboot or a second start of the VM gets the device as the guest left it and can hang.`,
          fix: `Restart the VM only with a host reboot in between, or move the card to a slot where it is alone behind its bridge (gives it "bus"); for AMD GPUs load vendor-reset and echo device_specific > /sys/bus/pci/devices/${pciAddress}/reset_method. If the methods were disabled by hand: echo default > /sys/bus/pci/devices/${pciAddress}/reset_method`,
          runbook: runbook('VfioPassthroughDeviceNoReset'),
          blocksStart: false,
        });
      }
      for (const reporter of [device, device.parent === undefined ? undefined : byAddress.get(device.parent)]) {
        const errors = aerUncorrectable(reporter);
        if (!reporter || errors === 0) continue;
        const where = reporter === device ? pciAddress : `${reporter.address}, the port ${pciAddress} sits behind,`;
        problems.push({
          alert: 'VfioPassthroughDeviceAERErrors',
          severity: 'info',
          vmid: vm.vmid,
          summary: `${where} counted ${errors} uncorrectable PCIe error(s) (AER non-fatal or fatal) since it was added; ${pciAddress} is assigned to ${vmLabel(vm)} as ${slot}. The alert fires while new ones come.`,
          fix: `Read which: grep . /sys/bus/pci/devices/${reporter.address}/aer_dev_{nonfatal,fatal}; journalctl -k | grep -i AER. Reseat the card or riser, try another slot, or lower the slot's link speed in the firmware.`,
          runbook: runbook('VfioPassthroughDeviceAERErrors'),
          blocksStart: false,
        });
      }
    }
  }
  return problems;
}

const hex4 = (value: number): string => value.toString(16).padStart(4, '0');

const modprobeCommands = (lines: readonly string[]): string[] => lines.map((line) => `echo "${line}" >> /etc/modprobe.d/vfio.conf`);

/**
 * The modprobe.d and initramfs lines that make vfio-pci claim `device` at boot, and the commands that apply
 * them; `drivers` are host drivers seen holding it, held back too when modules.alias is missing.
 */
function bootReservationFix(device: BootBindingDevice, boot: BootBindingFacts, drivers: readonly string[] = []): string {
  const { vendor, device: deviceId, subvendor, subdevice } = device.ids;
  const sameIds = boot.devices.filter((other) => other.address !== device.address && other.ids.vendor === vendor && other.ids.device === deviceId);
  const sameSubsystem = sameIds.filter((other) => other.ids.subvendor === subvendor && other.ids.subdevice === subdevice);
  const lines: string[] = [];
  if (device.vfioIds.length === 0) {
    if (sameSubsystem.length > 0) {
      const others = sameSubsystem.map((other) => other.address).join(', ');
      return `${others} has the same ids, so vfio-pci ids= would take it too: bind this one by address instead, in /etc/udev/rules.d/99-vfio.rules: ACTION=="add", SUBSYSTEM=="pci", KERNEL=="${device.address}", ATTR{driver_override}="vfio-pci" (set before udev loads ${(device.modules ?? []).join(', ')}), and "vfio-pci" in /etc/modules-load.d/vfio.conf; then update-initramfs -u -k all; reboot`;
    }
    // The subsystem ids tell this device from another with the same vendor:device.
    lines.push(`options vfio-pci ids=${hex4(vendor)}:${hex4(deviceId)}${sameIds.length > 0 ? `:${hex4(subvendor)}:${hex4(subdevice)}` : ''}`);
  }
  const claimers = [...new Set([...(device.modules ?? []), ...drivers])];
  for (const module of claimers.filter((name) => isHostModule(name) && !device.heldBack.includes(name))) lines.push(`softdep ${module} pre: vfio-pci`);
  const steps = modprobeCommands(lines);
  if (boot.vfioInInitramfs === false) steps.push('add "vfio_pci" (after "vfio" and "vfio_iommu_type1") to /etc/initramfs-tools/modules');
  steps.push('update-initramfs -u -k all; reboot');
  return steps.join('; ');
}

/** As the rule VfioPassthroughDeviceNotReservedAtBoot. */
function bootBindingProblems(vms: readonly Vm[], boot: BootBindingFacts): Problem[] {
  const byAddress = new Map(boot.devices.map((device) => [device.address, device]));
  return vms
    .filter((vm) => vm.startOnBoot && !vm.template && !vm.configUnreadable)
    .flatMap((vm) =>
      vm.devices.flatMap(({ pciAddress, slot }) => {
        const device = byAddress.get(pciAddress);
        const hostModules = (device?.modules ?? []).filter(isHostModule);
        if (!device || device.reserved !== false || hostModules.length === 0) return [];
        return [
          {
            alert: 'VfioPassthroughDeviceNotReservedAtBoot',
            severity: 'warning' as const,
            vmid: vm.vmid,
            summary: `${pciAddress}, assigned to ${vmLabel(vm)} as ${slot} and started on boot, is claimed at boot by ${hostModules.join(', ')} before vfio-pci: nothing reserves it${device.vfioIds.length > 0 ? ` (vfio-pci ids=${device.vfioIds.map((each) => each.id).join(',')} covers it, but ${hostModules.filter((name) => !device.heldBack.includes(name)).join(', ')} is not held back)` : ''}.`,
            fix: bootReservationFix(device, boot),
            runbook: runbook('VfioPassthroughDeviceNotReservedAtBoot'),
            blocksStart: false,
          },
        ];
      }),
    );
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
  const { vm, memory, pci, iommu, disks, pci_health, boot_binding } = snapshot.facts;
  const vms = vm?.vms ?? [];
  return [
    ...(memory ? memoryProblems(vms, memory, reserveBytes) : []),
    ...(pci ? deviceProblems(vms, pci, iommu, boot_binding) : []),
    ...(disks ? diskProblems(vms, disks, pci, boot_binding) : []),
    ...(pci_health ? deviceHealthProblems(vms, pci_health) : []),
    ...(boot_binding ? bootBindingProblems(vms, boot_binding) : []),
    ...oomProblems(snapshot, vms),
    ...collectorProblems(snapshot),
  ].sort((a, b) => severityOrder[a.severity] - severityOrder[b.severity]);
}
