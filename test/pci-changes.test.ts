import { cpSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSampler } from '../src/exporter.js';
import { silentLogger } from '../src/log.js';
import { configFor, sendUevents, seriesLines } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';

/** The collectors keep each device's identity between samples; these are the changes a later sample must still see. */
describe('pci and iommu collectors across samples', () => {
  const devicesDir = (root: string): string => path.join(root, 'sys/devices/pci0000:00');

  it('an unchanged bus gives the same facts again, and the same text; a new empty IOMMU group still shows', async () => {
    const { root, flags } = copyHost('suprox');
    const sampler = createSampler(configFor(flags), silentLogger);
    const first = await sampler.sample();
    const second = await sampler.sample();
    expect(second.snapshot.facts.pci).toBe(first.snapshot.facts.pci);
    expect(second.snapshot.facts.iommu).toBe(first.snapshot.facts.iommu);
    const withoutTimes = (text: string): string => text.replace(/^vfio_(collector_duration_seconds|last_sample_timestamp_seconds).*$/gm, '');
    expect(withoutTimes(second.text)).toBe(withoutTimes(first.text));

    mkdirSync(path.join(root, 'sys/kernel/iommu_groups/99/devices'), { recursive: true });
    const third = await sampler.sample();
    expect(third.snapshot.facts.pci).toBe(first.snapshot.facts.pci);
    expect(third.snapshot.facts.iommu).not.toBe(first.snapshot.facts.iommu);
    expect(third.text).toContain('vfio_iommu_group_devices{iommu_group="99"} 0');
    await sampler.stop();
  });

  it('a rebind and a new driver_override show in the next sample', async () => {
    const { root, flags } = copyHost('suprox');
    const sampler = createSampler(configFor(flags), silentLogger);
    const beforeSample = await sampler.sample();
    const before = beforeSample.text;
    expect(before).toContain('vfio_pci_device_driver_info{pci_address="0000:00:17.0",driver="vfio-pci"} 1');
    expect(before).toContain('vfio_iommu_group_viable{iommu_group="7"} 1');

    // What `echo 0000:00:17.0 > .../vfio-pci/unbind; echo ahci > driver_override; ... bind` leaves behind.
    const sata = path.join(devicesDir(root), '0000:00:17.0');
    rmSync(path.join(sata, 'driver'));
    mkdirSync(path.join(root, 'sys/bus/pci/drivers/ahci'), { recursive: true });
    symlinkSync('../../../bus/pci/drivers/ahci', path.join(sata, 'driver'));
    writeFileSync(path.join(sata, 'driver_override'), 'ahci\n');
    // The unbind and the bind.
    sendUevents(root, 2);

    const afterSample = await sampler.sample();
    const after = afterSample.text;
    // Only the rebound device and its group are new facts, rendered again; every other one is the same object.
    const changed = (facts: { address?: string; id?: string }[] | undefined, previous: typeof facts): string[] =>
      (facts ?? []).filter((item, index) => item !== previous?.[index]).map((item) => item.address ?? item.id ?? '');
    expect(changed(afterSample.snapshot.facts.pci?.devices, beforeSample.snapshot.facts.pci?.devices)).toEqual(['0000:00:17.0']);
    expect(changed(afterSample.snapshot.facts.iommu?.groups, beforeSample.snapshot.facts.iommu?.groups)).toEqual(['7']);
    expect(after).toContain('vfio_pci_device_driver_info{pci_address="0000:00:17.0",driver="ahci"} 1');
    expect(after).toContain('vfio_pci_device_vfio_bound{pci_address="0000:00:17.0"} 0');
    expect(after).toContain('vfio_pci_device_driver_override_info{pci_address="0000:00:17.0",driver_override="ahci"} 1');
    expect(after).toContain('vfio_iommu_group_viable{iommu_group="7"} 0');
    await sampler.stop();
  });

  it('health and boot facts stay the same objects while nothing changes; a new AER count, reset_method or modprobe.d file shows next sample', async () => {
    const { root, flags } = copyHost('suprox-fixed');
    const sampler = createSampler(configFor(flags), silentLogger);
    const first = await sampler.sample();
    const second = await sampler.sample();
    expect(second.snapshot.facts.pci_health).toBe(first.snapshot.facts.pci_health);
    expect(second.snapshot.facts.boot_binding).toBe(first.snapshot.facts.boot_binding);
    expect(first.text).toContain('vfio_pci_device_boot_vfio_reserved{pci_address="0000:00:17.0"} 1');

    const nvme = path.join(devicesDir(root), '0000:00:1d.0/0000:07:00.0');
    const aer = readFileSync(path.join(nvme, 'aer_dev_correctable'), 'utf8');
    writeFileSync(path.join(nvme, 'aer_dev_correctable'), aer.replace(/^RxErr \d+$/m, 'RxErr 5').replace(/^TOTAL_ERR_COR \d+$/m, 'TOTAL_ERR_COR 6'));
    writeFileSync(path.join(nvme, 'reset_method'), 'bus\n');
    writeFileSync(path.join(root, 'root/etc/modprobe.d/vfio.conf'), 'options vfio-pci ids=8086:a352\n');
    const third = await sampler.sample();
    expect(third.snapshot.facts.pci_health).not.toBe(first.snapshot.facts.pci_health);
    expect(third.snapshot.facts.boot_binding).not.toBe(first.snapshot.facts.boot_binding);
    expect(third.text).toContain('vfio_pci_device_aer_errors_total{pci_address="0000:07:00.0",severity="correctable",error="RxErr"} 5');
    expect(third.text).toContain('vfio_pci_device_aer_error_messages_total{pci_address="0000:07:00.0",severity="correctable"} 6');
    expect(third.text).toContain('vfio_pci_device_reset_methods{pci_address="0000:07:00.0"} 1');
    expect(third.text).not.toContain('vfio_pci_device_reset_method_info{pci_address="0000:07:00.0",reset_method="flr"}');
    expect(third.text).toContain('vfio_pci_device_boot_vfio_reserved{pci_address="0000:00:17.0"} 0');
    await sampler.stop();
  });

  it('a device removed and another added at its address is read afresh; a removed one leaves', async () => {
    const { root, flags } = copyHost('suprox');
    const sampler = createSampler(configFor(flags), silentLogger);
    const before = (await sampler.sample()).text;
    expect(before).toContain('vfio_pci_device_info{pci_address="0000:02:00.0",vendor_id="0x8086",device_id="0x1533"');

    // A different card in the slot of 02:00.0. The old directory is kept aside so the new one gets another
    // inode, as sysfs gives every new device (kernfs never reuses an inode number right away).
    const slot = path.join(devicesDir(root), '0000:00:1c.0/0000:02:00.0');
    renameSync(slot, `${slot}.old`);
    cpSync(`${slot}.old`, slot, { recursive: true, verbatimSymlinks: true });
    writeFileSync(path.join(slot, 'vendor'), '0x10de\n');
    writeFileSync(path.join(slot, 'device'), '0x2204\n');
    writeFileSync(path.join(slot, 'class'), '0x030000\n');
    // 03:00.0 unplugged.
    rmSync(path.join(root, 'sys/bus/pci/devices/0000:03:00.0'));
    // Two removals, an addition and a bind.
    sendUevents(root, 4);

    const after = (await sampler.sample()).text;
    expect(after).toContain('vfio_pci_device_info{pci_address="0000:02:00.0",vendor_id="0x10de",device_id="0x2204",subsystem_vendor_id="0x15d9",subsystem_device_id="0x1533",class_id="0x030000"');
    // A kind of device not on the host before: its names come from pci.ids, read again for it.
    expect(after).toMatch(/vfio_pci_device_info\{pci_address="0000:02:00.0",[^}]*vendor_name="NVIDIA Corporation",device_name="GA102 \[GeForce RTX 3090\]",class_name="VGA compatible controller"/);
    expect(after).not.toContain('pci_address="0000:03:00.0"');
    expect(seriesLines(after, 'vfio_pci_device_info')).toHaveLength(26);
    expect(after).toContain('vfio_iommu_group_devices{iommu_group="16"} 0');
    await sampler.stop();
  });

  it('SR-IOV functions disabled and enabled again at another count are tied to their PF as they are now', async () => {
    const { root, flags } = copyHost('pve-cluster');
    const pf = path.join(root, 'sys/bus/pci/devices/0000:04:00.0');
    const sampler = createSampler(configFor(flags), silentLogger);
    const vfs = async (): Promise<string[]> => seriesLines((await sampler.sample()).text, 'vfio_pci_device_sriov_vf_info');
    expect(await vfs()).toEqual([
      'vfio_pci_device_sriov_vf_info{pci_address="0000:04:10.0",physfn_address="0000:04:00.0",vf_index="0"} 1',
      'vfio_pci_device_sriov_vf_info{pci_address="0000:04:10.2",physfn_address="0000:04:00.0",vf_index="1"} 1',
    ]);
    // `echo 0 > sriov_numvfs; echo 1 > sriov_numvfs`: the second VF is gone, and the PF's virtfnN links with it.
    const vf = path.join(root, 'sys/devices/pci0000:00/0000:00:1b.0/0000:04:10.2');
    const away = path.join(root, 'vf-away');
    renameSync(vf, away);
    writeFileSync(path.join(pf, 'sriov_numvfs'), '1\n');
    rmSync(path.join(pf, 'virtfn1'));
    sendUevents(root, 3);
    expect(await vfs()).toEqual(['vfio_pci_device_sriov_vf_info{pci_address="0000:04:10.0",physfn_address="0000:04:00.0",vf_index="0"} 1']);
    renameSync(away, vf);
    writeFileSync(path.join(pf, 'sriov_numvfs'), '2\n');
    symlinkSync('../0000:04:10.2', path.join(pf, 'virtfn1'));
    sendUevents(root, 1);
    expect(await vfs()).toHaveLength(2);
    await sampler.stop();
  });

  it('reads every device directory and driver link again when the kernel counts a uevent, and only then', async () => {
    const { root, flags } = copyHost('suprox');
    const sampler = createSampler(configFor(flags), silentLogger);
    const driverOf = async (): Promise<string | undefined> =>
      seriesLines((await sampler.sample()).text, 'vfio_pci_device_driver_info').find((line) => line.includes('"0000:00:17.0"'));
    expect(await driverOf()).toContain('driver="vfio-pci"');
    const sata = path.join(devicesDir(root), '0000:00:17.0');
    rmSync(path.join(sata, 'driver'));
    // The kernel never moves a driver link without a uevent (a bind or unbind sends one since 4.14): until
    // the count moves, the link as last read stands.
    expect(await driverOf()).toContain('driver="vfio-pci"');
    sendUevents(root, 1);
    expect(await driverOf()).toContain('driver="none"');
    // A kernel before 4.14 binds without a uevent: every sample reads every link.
    const osrelease = path.join(root, 'proc/sys/kernel/osrelease');
    const release = readFileSync(osrelease, 'utf8');
    writeFileSync(osrelease, '4.9.0-19-amd64\n');
    symlinkSync('../../../bus/pci/drivers/vfio-pci', path.join(sata, 'driver'));
    expect(await driverOf()).toContain('driver="vfio-pci"');
    // So does a count that cannot be read, without an error of its own.
    writeFileSync(osrelease, release);
    expect(await driverOf()).toContain('driver="vfio-pci"');
    rmSync(path.join(root, 'sys/kernel/uevent_seqnum'));
    mkdirSync(path.join(root, 'sys/kernel/uevent_seqnum'));
    rmSync(path.join(sata, 'driver'));
    const sample = await sampler.sample();
    expect(seriesLines(sample.text, 'vfio_pci_device_driver_info').find((line) => line.includes('"0000:00:17.0"'))).toContain('driver="none"');
    expect(sample.snapshot.outcomes.filter((outcome) => !outcome.success)).toEqual([]);
    await sampler.stop();
  });
});
