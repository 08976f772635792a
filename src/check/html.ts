import { describeHugepagePools, describeTrend, gib } from './headroom.js';
import { describeBlockUse, type CheckReport } from './report.js';

export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
const cell = (text: string, className = ''): string => `<td${className ? ` class="${className}"` : ''}>${escapeHtml(text)}</td>`;
const bytesCell = (bytes: number | null): string => cell(bytes === null ? '–' : gib(bytes), 'num');

const style = `
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:12px;max-width:1100px;color:#1b1b1b;background:#fafafa}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f0f0f0}
td.num{text-align:right;white-space:nowrap}.addr{font-family:ui-monospace,monospace;white-space:nowrap}
.problem{border-left:6px solid;padding:8px 10px;margin:8px 0;background:#fff;overflow-wrap:anywhere}
.critical{border-color:#c62828}.warning{border-color:#ef8f00}.info{border-color:#1565c0}
.sev{font-weight:700;text-transform:uppercase;margin-right:.5em}.critical .sev{color:#c62828}.warning .sev{color:#b26a00}
.fix{font-family:ui-monospace,monospace;font-size:.9em;background:#f4f4f4;padding:4px;margin-top:4px;overflow-wrap:anywhere}
.ok{color:#2e7d32;font-weight:700}.bad{color:#c62828;font-weight:700}tr.bad td{background:#fdecea}
`;

/** The status page: the check report as one self-contained HTML page, problems first. */
export function renderHtml(report: CheckReport, telemetryPath: string): string {
  const problems =
    report.problems.length === 0
      ? '<p class="ok">No problems found.</p>'
      : report.problems
          .map(
            (problem) =>
              `<div class="problem ${problem.severity}"><span class="sev">${problem.severity}</span><strong>${escapeHtml(problem.alert)}</strong>` +
              `<div>${escapeHtml(problem.summary)}</div><div class="fix">${escapeHtml(problem.fix)}</div></div>`,
          )
          .join('\n');
  const vms = report.vms
    .map((vm) => {
      // A VM without passthrough is judged by what its balloon floor leaves the running passthrough VMs.
      const headroomBytes = vm.passthroughRisk ? vm.passthroughRisk.floorHeadroomBytes : (vm.startHeadroom?.headroomBytes ?? null);
      const risky = headroomBytes !== null && headroomBytes < 0;
      return (
        `<tr${risky ? ' class="bad"' : ''}>${cell(vm.vmid)}${cell(vm.name)}${cell(vm.template ? 'template' : vm.running === null ? 'unknown' : vm.running ? 'running' : 'stopped')}${cell(vm.startOnBoot ? 'yes' : 'no')}` +
        `${bytesCell(vm.memoryConfiguredBytes)}${cell(vm.balloonEnabled ? `on, floor ${vm.balloonMinBytes === null ? '?' : gib(vm.balloonMinBytes)}` : 'off')}` +
        `${bytesCell(vm.rssBytes)}${bytesCell(vm.lockedBytes)}${bytesCell(headroomBytes)}${cell(vm.devices.join(' '), 'addr')}</tr>`
      );
    })
    .join('\n');
  const devices = report.devices
    .map((device) => {
      const wrongDriver = device.assignedTo.length > 0 && !device.vfioBound && device.driver !== 'none';
      return (
        `<tr${wrongDriver ? ' class="bad"' : ''}>${cell(device.address, 'addr')}${cell([device.vendorName, device.deviceName].filter(Boolean).join(' ') || device.ids)}` +
        `${cell(device.className)}${cell(device.driver)}${cell(device.iommuGroup ?? '–')}${cell(device.assignedTo.join(', '))}</tr>`
      );
    })
    .join('\n');
  const groups = report.groups
    .map(
      (group) =>
        `<tr${group.viable === true ? '' : ' class="bad"'}>${cell(group.id)}${cell(group.viable === null ? 'unknown' : group.viable ? 'viable' : 'not viable')}` +
        `${cell(group.members.map((member) => `${member.address} (${member.driver})`).join(', '), 'addr')}</tr>`,
    )
    .join('\n');
  const disks = report.disks
    .flatMap((controller) => {
      const bad = controller.assignedTo.length > 0 && controller.blockDevices.length > 0;
      const head = `<tr${bad ? ' class="bad"' : ''}>${cell(controller.address, 'addr')}${cell(controller.driver)}${cell(controller.assignedTo.join(', '))}`;
      if (controller.blockDevices.length === 0) return [`${head}${cell('no block devices on the host')}${cell('')}${cell('')}</tr>`];
      return controller.blockDevices.map(
        (device) => `${head}${cell([device.name, device.model].filter(Boolean).join(' '))}${bytesCell(device.sizeBytes)}${cell(describeBlockUse(device))}</tr>`,
      );
    })
    .join('\n');
  const kills = report.oomKills
    .map((kill) => `<tr class="bad">${cell(kill.time ?? '?')}${cell(kill.vmid)}${cell(kill.name)}${cell(`${kill.comm} (${kill.pid})`)}${cell(kill.constraint)}${bytesCell(kill.rssBytes)}</tr>`)
    .join('\n');
  const memory = report.memory;
  const memoryLine = memory
    ? `Total ${gib(memory.totalBytes)} · available ${gib(memory.availableBytes)}${memory.zfsArc ? ` · ZFS ARC ${gib(memory.zfsArc.sizeBytes)} (reclaimable ${gib(memory.reclaimableArcBytes)})` : ''} · hugepages ${describeHugepagePools(memory.hugepagePools)}`
    : 'Host memory could not be read.';
  const trend = memory?.trend;
  const trendLine = memory
    ? `<p${trend?.exhaustionSeconds != null || (trend && memory.headroomBytes < 0) ? ' class="bad"' : ''}>Headroom ${gib(memory.headroomBytes)}: ${escapeHtml(trend ? describeTrend(trend) : 'its trend needs a second sample')}</p>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vfio-exporter status</title><style>${style}</style></head>
<body>
<h1>vfio-exporter</h1>
<p>Sampled ${escapeHtml(report.generatedAt)} · <a href="${escapeHtml(telemetryPath)}">Metrics</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
<h2>Problems (${report.problems.length})</h2>
${problems}
<h2>Host memory</h2>
<p>${memoryLine}</p>
${trendLine}
<h2>VMs (${report.vms.length})</h2>
<div class="scroll"><table><thead><tr><th>VM</th><th>Name</th><th>State</th><th>On boot</th><th>Memory</th><th>Balloon</th><th>RSS</th><th>Locked</th><th>Start headroom</th><th>Passthrough</th></tr></thead>
<tbody>${vms}</tbody></table></div>
<h2>OOM kills (${report.oomKills.length})</h2>
${report.oomKills.length === 0 ? '<p class="ok">No VM OOM kill in the kernel log.</p>' : `<div class="scroll"><table><thead><tr><th>Time</th><th>VM</th><th>Name</th><th>Process</th><th>Constraint</th><th>RSS at kill</th></tr></thead><tbody>${kills}</tbody></table></div>`}
<h2>PCI devices (${report.devices.length})</h2>
<div class="scroll"><table><thead><tr><th>Address</th><th>Device</th><th>Class</th><th>Driver</th><th>IOMMU group</th><th>VM</th></tr></thead>
<tbody>${devices}</tbody></table></div>
<h2>Disks behind storage controllers (${report.disks.length})</h2>
${report.disks.length === 0 ? '<p>No storage controller read.</p>' : `<div class="scroll"><table><thead><tr><th>Controller</th><th>Driver</th><th>VM</th><th>Block device</th><th>Size</th><th>Host use</th></tr></thead><tbody>${disks}</tbody></table></div>`}
<h2>IOMMU groups (${report.groups.length})</h2>
${report.groups.length === 0 ? '<p class="bad">No IOMMU groups: the IOMMU is off.</p>' : `<div class="scroll"><table><thead><tr><th>Group</th><th>State</th><th>Devices</th></tr></thead><tbody>${groups}</tbody></table></div>`}
</body></html>
`;
}
