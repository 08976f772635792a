import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderHtml } from '../src/check/html.js';
import { buildReport } from '../src/check/report.js';
import { renderText } from '../src/check/text.js';
import { fixtureFlags, sampledApp } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';

const GiB = 1024 ** 3;

async function reportOn(flags: string[], vmid?: string) {
  const { sample } = await sampledApp([...flags, '--no-collector.host']);
  return buildReport(sample.snapshot, { reserveBytes: GiB, vmid });
}

const diskAlerts = ['VfioPassthroughDiskHeldByHost', 'VfioPassthroughControllerDisksOnHost'];

describe('check: disks behind a passed-through controller', () => {
  it('refuses VM 101 while the host uses the disks behind its SATA controller, naming each holder and the commands that release it', async () => {
    const report = await reportOn(fixtureFlags('suprox-trouble'), '101');
    const held = report.problems.filter((problem) => diskAlerts.includes(problem.alert));
    expect(held.map((problem) => [problem.alert, problem.severity, problem.vmid, problem.blocksStart])).toEqual([['VfioPassthroughDiskHeldByHost', 'critical', '101', true]]);
    expect(held[0]!.summary).toContain('sda1 (md md127), sdb1 (mount /mnt/backup), sdb2 (swap /dev/sdb2), sdc (lvm backup-vmstore)');
    expect(held[0]!.fix).toContain('mdadm --stop /dev/md127; umount /mnt/backup; swapoff /dev/sdb2; vgchange -an backup');
    expect(held[0]!.fix).toContain('options vfio-pci ids=8086:a352');
    expect(held[0]!.fix).toContain('softdep ahci pre: vfio-pci');
    expect(report.verdict).toMatchObject({ exitCode: 1, verdict: 'refuse' });
    expect(report.verdict!.reason).toContain('has disks the host uses');
    const text = renderText(report);
    expect(text).toContain('  00:17.0 on ahci, assigned to VM 101:\n      sda 3726.0 GiB WDC WD40EFRX-68N WD-WCC7K4KL1234: in use (its partitions)\n        sda1 3726.0 GiB linux_raid_member: in use: md md127\n');
  });

  it('warns, without refusing the start, when the host only sees the disks (suprox-noiommu)', async () => {
    const report = await reportOn(fixtureFlags('suprox-noiommu'));
    const disks = report.problems.filter((problem) => diskAlerts.includes(problem.alert));
    expect(disks.map((problem) => [problem.alert, problem.severity, problem.vmid, problem.blocksStart])).toEqual([['VfioPassthroughControllerDisksOnHost', 'warning', '101', false]]);
    expect(disks[0]!.summary).toContain('the host sees its disks (sda WDC WD40EFRX-68N, sdb WDC WD40EFRX-68N, sdc Samsung SSD 860), though nothing uses them now');
  });

  it('says plainly that a controller on vfio-pci has no block devices on the host (the seed host)', async () => {
    const report = await reportOn(fixtureFlags('suprox'));
    expect(report.problems.filter((problem) => diskAlerts.includes(problem.alert))).toEqual([]);
    expect(report.disks.find((controller) => controller.address === '0000:00:17.0')).toEqual({
      address: '0000:00:17.0',
      driver: 'vfio-pci',
      vfioBound: true,
      assignedTo: ['101'],
      blockDevices: [],
    });
    expect(renderText(report)).toContain('  00:17.0 on vfio-pci, assigned to VM 101: no block devices on the host\n');
    expect(renderHtml(report, '/metrics')).toContain('<td class="addr">0000:00:17.0</td><td>vfio-pci</td><td>101</td><td>no block devices on the host</td>');
  });

  it('names the volume group of an LVM holder whose names carry hyphens (doubled in the dm name)', async () => {
    const { root, flags } = copyHost('suprox-trouble');
    writeFileSync(path.join(root, 'sys/devices/virtual/block/dm-0/dm/name'), 'nas--backup-vm--store\n');
    const report = await reportOn(flags);
    const held = report.problems.find((problem) => problem.alert === 'VfioPassthroughDiskHeldByHost')!;
    expect(held.summary).toContain('sdc (lvm nas--backup-vm--store)');
    expect(held.fix).toContain('vgchange -an nas-backup');
  });
});
