import { describeHugepagePools, describeTrend, gib } from './headroom.js';
import { describeBlockUse, type CheckReport, type DeviceRow, type VmRow } from './report.js';

const shortAddress = (address: string): string => address.replace(/^0000:/, '');

const vmMemory = (vm: VmRow): string => {
  const parts = [`memory ${vm.memoryConfiguredBytes === null ? '?' : gib(vm.memoryConfiguredBytes)}`];
  parts.push(vm.balloonEnabled ? `balloon on (floor ${vm.balloonMinBytes === null ? '?' : gib(vm.balloonMinBytes)})` : 'balloon off');
  if (vm.hugepages) parts.push(`hugepages ${vm.hugepages}`);
  if (vm.rssBytes !== null) parts.push(`rss ${gib(vm.rssBytes)}`);
  if (vm.lockedBytes !== null) parts.push(`locked ${gib(vm.lockedBytes)}`);
  if (vm.balloonActualBytes !== null) parts.push(`balloon actual ${gib(vm.balloonActualBytes)}`);
  if (vm.startHeadroom) parts.push(`start headroom ${gib(vm.startHeadroom.headroomBytes)}`);
  if (vm.passthroughRisk) parts.push(`leaves ${gib(vm.passthroughRisk.floorHeadroomBytes)} at its floor for passthrough VM ${vm.passthroughRisk.atRisk.join(', ')}`);
  return parts.join(', ');
};

/** Reset, SR-IOV and AER facts of a device, for a second detail line; undefined when there are none. */
const deviceHealth = (device: DeviceRow): string | undefined => {
  const parts: string[] = [];
  if (device.resetMethods !== null) parts.push(`reset: ${device.resetMethods.length > 0 ? device.resetMethods.join(' ') : 'none'}`);
  if (device.sriov) parts.push(`SR-IOV: ${device.sriov.numVfs} of ${device.sriov.totalVfs} VFs enabled`);
  if (device.physfn) parts.push(`VF of ${shortAddress(device.physfn)}`);
  if (device.aerUncorrectableErrors !== null) parts.push(`AER uncorrectable errors since boot: ${device.aerUncorrectableErrors}`);
  return parts.length > 0 ? parts.join(', ') : undefined;
};

/** The human report: problems first, then what lspci -nnk, the IOMMU group listing and the VM configs would show. */
export function renderText(report: CheckReport): string {
  const lines: string[] = [`vfio-exporter check, ${report.generatedAt}`, ''];
  if (report.verdict) {
    const word = { fits: 'FITS', warn: 'STARTS, WITH A WARNING', refuse: 'REFUSE', unknown: 'CANNOT JUDGE' }[report.verdict.verdict];
    lines.push(`VM ${report.verdict.vmid}: ${word}`, ...report.verdict.reason.split('\n').map((line) => `  ${line}`), '');
  }
  lines.push(report.problems.length === 0 ? 'No problems found.' : `Problems (${report.problems.length}):`);
  for (const problem of report.problems) {
    lines.push(`  ${problem.severity.toUpperCase().padEnd(8)} ${problem.alert}`, `           ${problem.summary}`, `           fix: ${problem.fix}`, `           see: ${problem.runbook}`);
  }
  if (report.memory) {
    const memory = report.memory;
    lines.push(
      '',
      'Host memory:',
      `  total ${gib(memory.totalBytes)}, available ${gib(memory.availableBytes)}, free ${gib(memory.freeBytes)}, swap ${gib(memory.swapFreeBytes)} free of ${gib(memory.swapTotalBytes)}`,
      memory.zfsArc
        ? `  ZFS ARC ${gib(memory.zfsArc.sizeBytes)} (min ${gib(memory.zfsArc.minBytes)}, max ${gib(memory.zfsArc.maxBytes)}), reclaimable ${gib(memory.reclaimableArcBytes)}`
        : '  no ZFS ARC',
      `  hugepages ${describeHugepagePools(memory.hugepagePools)}`,
      `  headroom ${gib(memory.headroomBytes)}${memory.trend ? `, ${describeTrend(memory.trend)}` : ''}`,
    );
  }
  lines.push('', `VMs (${report.vms.length}):`);
  for (const vm of report.vms) {
    const state = [vm.running === null ? 'state unknown' : vm.running ? 'running' : 'stopped', vm.startOnBoot ? 'onboot' : '', vm.template ? 'template' : ''].filter(Boolean).join(', ');
    lines.push(`  ${vm.vmid} ${vm.name} [${vm.source}] ${state}: ${vmMemory(vm)}`);
    if (vm.devices.length > 0) lines.push(`      passthrough: ${vm.devices.join(', ')}`);
  }
  lines.push('', `PCI devices (${report.devices.length}):`);
  for (const device of report.devices) {
    const name = [device.vendorName, device.deviceName].filter(Boolean).join(' ') || 'Device';
    // lspci leaves out a zero revision.
    const revision = device.revision === '0x00' ? '' : ` (rev ${device.revision.slice(2)})`;
    lines.push(`  ${shortAddress(device.address)} ${device.className || 'Class'} [${device.classId.slice(2, 6)}]: ${name} [${device.ids}]${revision}`);
    const details = [`driver: ${device.driver}`];
    if (device.driverOverride) details.push(`driver_override: ${device.driverOverride}`);
    if (device.iommuGroup !== null) details.push(`IOMMU group ${device.iommuGroup}`);
    if (device.assignedTo.length > 0) details.push(`assigned to VM ${device.assignedTo.join(', ')}`);
    lines.push(`\t${details.join(', ')}`);
    const health = deviceHealth(device);
    if (health) lines.push(`\t${health}`);
  }
  lines.push('', report.groups.length === 0 ? 'IOMMU groups: none (IOMMU off)' : `IOMMU groups (${report.groups.length}):`);
  for (const group of report.groups) {
    const verdict = group.viable === null ? ' (viability unknown)' : group.viable ? '' : ' (not viable)';
    lines.push(`  group ${group.id}${verdict}: ${group.members.map((member) => `${shortAddress(member.address)} ${member.driver}`).join(', ')}`);
  }
  if (report.disks.length > 0) lines.push('', 'Disks behind storage controllers (as lsblk would show them):');
  for (const controller of report.disks) {
    const assigned = controller.assignedTo.length > 0 ? `, assigned to VM ${controller.assignedTo.join(', ')}` : '';
    if (controller.blockDevices.length === 0) {
      lines.push(`  ${shortAddress(controller.address)} on ${controller.driver}${assigned}: no block devices on the host`);
      continue;
    }
    lines.push(`  ${shortAddress(controller.address)} on ${controller.driver}${assigned}:`);
    for (const device of controller.blockDevices) {
      // As lsblk: a partition indented under its disk, with the disk's model and serial said once.
      const what = device.type === 'partition' ? [`  ${device.name}`, gib(device.sizeBytes), device.fsType] : [device.name, gib(device.sizeBytes), device.model, device.serial, device.fsType];
      lines.push(`      ${what.filter(Boolean).join(' ')}: ${describeBlockUse(device)}`);
    }
  }
  if (report.oomKills.length > 0) lines.push('', 'OOM kills the kernel log still holds (last per VM):');
  for (const kill of report.oomKills)
    lines.push(`  ${kill.time ?? 'time unknown'} VM ${kill.vmid}${kill.name ? ` (${kill.name})` : ''}: ${kill.comm} pid ${kill.pid}, ${kill.constraint || 'no constraint'}, rss ${gib(kill.rssBytes)}`);
  const failed = report.collectors.filter((collector) => !collector.success);
  if (failed.length > 0) lines.push('', `Collectors that failed: ${failed.map((collector) => collector.name).join(', ')}`);
  return lines.join('\n') + '\n';
}
