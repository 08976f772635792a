import { rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryLogger, sampledApp, scrapeWithLog, seriesLines, sysDevice } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';

describe('pci and iommu collectors on bad input', () => {
  it('a missing sysfs root: pci, pci_health, boot_binding, iommu and disks report failure with one line each, the exporter keeps serving', async () => {
    const { flags } = copyHost('suprox');
    const { text, errors } = await scrapeWithLog([...flags, '--path.sysfs=/nonexistent/sys']);
    expect(text).toContain('vfio_collector_success{collector="pci"} 0');
    expect(text).toContain('vfio_collector_success{collector="iommu"} 0');
    expect(text).toContain('vfio_collector_success{collector="disks"} 0');
    expect(text).toContain('vfio_collector_success{collector="pci_health"} 0');
    expect(text).toContain('vfio_collector_success{collector="boot_binding"} 0');
    expect(seriesLines(text, 'vfio_pci_device_info')).toEqual([]);
    // A wrong path must not read as "IOMMU disabled".
    expect(seriesLines(text, 'vfio_iommu_enabled')).toEqual([]);
    expect(text).toContain('vfio_exporter_build_info');
    expect(errors).toHaveLength(5);
    expect(errors.join('\n')).toContain('/nonexistent/sys/bus/pci/devices');
    expect(errors.filter((line) => line.includes('"collector":"disks"'))).toHaveLength(1);
  });

  it('an unreadable sysfs device directory: pci reports failure, the other devices and iommu are still there', async () => {
    const { root, flags } = copyHost('suprox');
    const target = path.join(root, 'sys/devices/pci0000:00/0000:00:1f.4');
    // Root reads through permissions, so make the attribute a directory: it is refused as not a regular file.
    rmSync(path.join(target, 'vendor'));
    symlinkSync('.', path.join(target, 'vendor'));
    const { text, errors } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_collector_success{collector="pci"} 0');
    expect(text).toContain('vfio_collector_success{collector="iommu"} 1');
    expect(seriesLines(text, 'vfio_pci_device_info')).toHaveLength(26);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/0000:00:1f\.4: .*vendor: not a regular file/);
  });

  it('a garbage class file: that device is skipped with one log line, pci and iommu report failure', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(sysDevice(root, '0000:00:14.0'), 'class'), 'garbage\n');
    const { text, errors } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_collector_success{collector="pci"} 0');
    expect(text).not.toContain('pci_address="0000:00:14.0"');
    expect(text).toContain('vfio_pci_device_driver_info{pci_address="0000:00:17.0",driver="vfio-pci"} 1');
    expect(errors.filter((line) => line.includes('"collector":"pci"'))).toEqual([
      expect.stringContaining('0000:00:14.0: class: not a hex value: \\"garbage\\"'),
    ]);
    // The iommu collector reads the same class file to tell bridges from endpoints.
    expect(text).toContain('vfio_collector_success{collector="iommu"} 0');
    expect(text).toContain('vfio_iommu_group_devices{iommu_group="7"} 1');
  });

  it('a dangling driver link still names the driver the kernel bound', async () => {
    const { root, flags } = copyHost('suprox');
    rmSync(path.join(root, 'sys/bus/pci/drivers/nvme'), { recursive: true });
    const { text, errors } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_pci_device_driver_info{pci_address="0000:07:00.0",driver="nvme"} 1');
    expect(errors).toEqual([]);
  });

  it('a device that disappears mid-sample is skipped without failing the collector', async () => {
    const { root, flags } = copyHost('suprox');
    // The bus listing still names it, but its directory is gone: what a hot-unplug during a sample looks like.
    rmSync(path.join(root, 'sys/devices/pci0000:00/0000:00:1c.1/0000:03:00.0'), { recursive: true });
    const { text, errors } = await scrapeWithLog(flags);
    expect(text).not.toContain('pci_address="0000:03:00.0"');
    expect(seriesLines(text, 'vfio_pci_device_info')).toHaveLength(26);
    expect(text).toContain('vfio_collector_success{collector="pci"} 1');
    expect(text).toContain('vfio_collector_success{collector="iommu"} 1');
    expect(errors).toEqual([]);
  });

  it('an iommu group member that vanished is skipped, the rest of the groups stay', async () => {
    const { root, flags } = copyHost('suprox');
    symlinkSync('../../../../devices/pci0000:00/0000:00:1f.7', path.join(root, 'sys/kernel/iommu_groups/14/devices/0000:00:1f.7'));
    const { text, errors } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_iommu_group_devices{iommu_group="14"} 3');
    expect(seriesLines(text, 'vfio_iommu_group_devices')).toHaveLength(19);
    expect(text).toContain('vfio_collector_success{collector="iommu"} 1');
    expect(errors).toEqual([]);
  });

  it('symlink loops in place of driver and iommu_group links: the device fails, no name is made up from the link', async () => {
    const { root, flags } = copyHost('suprox');
    const dir = path.join(root, 'sys/devices/pci0000:00/0000:00:17.0');
    for (const link of ['driver', 'iommu_group']) {
      unlinkSync(path.join(dir, link));
      symlinkSync(link, path.join(dir, link));
    }
    const { text, errors } = await scrapeWithLog(flags);
    expect(text).not.toContain('driver="driver"');
    expect(text).not.toContain('iommu_group="iommu_group"');
    expect(text).toContain('vfio_collector_success{collector="pci"} 0');
    expect(text).toContain('vfio_collector_success{collector="iommu"} 0');
    expect(text).not.toMatch(/^vfio_pci_device_\w+\{pci_address="0000:00:17\.0"/m);
    expect(errors.join('\n')).toMatch(/0000:00:17\.0: .*iommu_group: link to \\"iommu_group\\" does not name an entry of iommu_groups/);
  });

  it('a member whose class cannot be read leaves its group\'s viability unknown, never viable', async () => {
    const { root, flags } = copyHost('suprox');
    // Group 14: 00:1f.0 (no driver), 00:1f.4 (i801_smbus), 00:1f.5 (intel-spi): not viable.
    for (const address of ['0000:00:1f.4', '0000:00:1f.5']) writeFileSync(path.join(sysDevice(root, address), 'class'), 'garbage\n');
    const { text } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_collector_success{collector="iommu"} 0');
    expect(text).toContain('vfio_iommu_group_devices{iommu_group="14"} 3');
    expect(seriesLines(text, 'vfio_iommu_group_viable').filter((line) => line.includes('"14"'))).toEqual([]);
    // The other groups keep their verdicts.
    expect(text).toContain('vfio_iommu_group_viable{iommu_group="7"} 1');
    expect(text).toContain('vfio_iommu_group_viable{iommu_group="1"} 0');
  });

  it('a member whose class cannot be read but whose driver is vfio-pci does not make its group unknown', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(sysDevice(root, '0000:00:17.0'), 'class'), 'garbage\n');
    const { text } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_iommu_group_devices{iommu_group="7"} 1');
    expect(text).toContain('vfio_iommu_group_viable{iommu_group="7"} 1');
  });

  it('a member whose group link cannot be read is found in the group\'s device list, and the group is unknown', async () => {
    const { root, flags } = copyHost('suprox');
    // Group 3 holds 00:12.0 alone, on intel_pch_thermal: not viable.
    const dir = path.join(root, 'sys/devices/pci0000:00/0000:00:12.0');
    unlinkSync(path.join(dir, 'iommu_group'));
    symlinkSync('iommu_group', path.join(dir, 'iommu_group'));
    writeFileSync(path.join(dir, 'class'), 'garbage\n');
    const { text } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_iommu_group_devices{iommu_group="3"} 1');
    expect(seriesLines(text, 'vfio_iommu_group_viable').filter((line) => line.includes('"3"'))).toEqual([]);
  });

  it('a sysfs error that persists is logged when it starts and when it clears, not every sample', async () => {
    const { root, flags } = copyHost('suprox');
    const classFile = path.join(sysDevice(root, '0000:00:14.0'), 'class');
    writeFileSync(classFile, 'garbage\n');
    const { log, lines } = memoryLogger();
    const { sampler } = await sampledApp(flags, log);
    await sampler.sample();
    await sampler.sample();
    const problems = (level: string): string[] => lines.filter((line) => line.startsWith(level) && line.includes('0000:00:14.0'));
    // One line each for pci and iommu, which both read the class.
    expect(problems('error')).toHaveLength(2);
    writeFileSync(classFile, '0x0c0330\n');
    await sampler.sample();
    await sampler.sample();
    expect(problems('error')).toHaveLength(2);
    expect(problems('info').sort()).toEqual([
      expect.stringMatching(/^info collector problem cleared .*"collector":"iommu"/),
      expect.stringMatching(/^info collector problem cleared .*"collector":"pci"/),
    ]);
  });
});
