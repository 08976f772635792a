import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { scrapeWithLog, seriesLines, sysDevice } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';

describe('pci_health collector', () => {
  it('ties each virtual function to its physical function and index, and reads the PF counts', async () => {
    const { flags } = copyHost('pve-cluster');
    const { text } = await scrapeWithLog(flags);
    expect(seriesLines(text, 'vfio_pci_device_sriov_vf_info')).toEqual([
      'vfio_pci_device_sriov_vf_info{pci_address="0000:04:10.0",physfn_address="0000:04:00.0",vf_index="0"} 1',
      'vfio_pci_device_sriov_vf_info{pci_address="0000:04:10.2",physfn_address="0000:04:00.0",vf_index="1"} 1',
    ]);
    expect(seriesLines(text, 'vfio_pci_device_sriov_numvfs')).toContain('vfio_pci_device_sriov_numvfs{pci_address="0000:04:00.0"} 2');
    expect(seriesLines(text, 'vfio_pci_device_parent_info')).toContain('vfio_pci_device_parent_info{pci_address="0000:04:10.0",parent_address="0000:00:1b.0"} 1');
    // Devices on the root bus have no parent bridge.
    expect(text).not.toContain('vfio_pci_device_parent_info{pci_address="0000:00:17.0"');
  });

  it('reads a hidden reset_method as none on 5.15+, as unknown before, and an emptied one as none', async () => {
    const { root, flags } = copyHost('libvirt-gpu');
    writeFileSync(path.join(sysDevice(root, '0000:00:17.0'), 'reset_method'), '');
    let { text } = await scrapeWithLog(flags);
    expect(seriesLines(text, 'vfio_pci_device_reset_methods').filter((line) => /0000:0(1:00\.[01]|0:17\.0)/.test(line))).toEqual([
      'vfio_pci_device_reset_methods{pci_address="0000:00:17.0"} 0',
      'vfio_pci_device_reset_methods{pci_address="0000:01:00.0"} 1',
      'vfio_pci_device_reset_methods{pci_address="0000:01:00.1"} 0',
    ]);
    writeFileSync(path.join(root, 'proc/sys/kernel/osrelease'), '5.10.0-28-amd64\n');
    ({ text } = await scrapeWithLog(flags));
    // The attribute that exists still counts; a missing one is unknown on a kernel that has no such attribute.
    expect(text).toContain('vfio_pci_device_reset_methods{pci_address="0000:01:00.0"} 1');
    expect(text).not.toContain('vfio_pci_device_reset_methods{pci_address="0000:01:00.1"}');
    rmSync(path.join(root, 'proc/sys/kernel/osrelease'));
    ({ text } = await scrapeWithLog(flags));
    expect(text).not.toContain('vfio_pci_device_reset_methods{pci_address="0000:01:00.1"}');
  });

  it('a garbled AER file loses that device alone, with one error', async () => {
    const { root, flags } = copyHost('pve-cluster');
    writeFileSync(path.join(sysDevice(root, '0000:01:00.1'), 'aer_dev_nonfatal'), 'CmpltTO one\nTOTAL_ERR_NONFATAL 1\n');
    const { text, errors } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_collector_success{collector="pci_health"} 0');
    expect(text).toContain('vfio_collector_success{collector="pci"} 1');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/0000:01:00\.1: aer_dev_nonfatal CmpltTO: not a counter/);
    expect(text).not.toContain('vfio_pci_device_reset_methods{pci_address="0000:01:00.1"}');
    expect(text).toContain('vfio_pci_device_aer_error_messages_total{pci_address="0000:01:00.0",severity="nonfatal"} 0');
  });

  it('reports what the kernel counts, by kind', async () => {
    const { flags } = copyHost('pve-cluster');
    const { text } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_pci_device_aer_errors_total{pci_address="0000:01:00.1",severity="nonfatal",error="CmpltTO"} 1');
    expect(text).toContain('vfio_pci_device_aer_error_messages_total{pci_address="0000:01:00.1",severity="nonfatal"} 1');
    expect(text).toContain('vfio_pci_device_aer_rootport_error_messages_total{pci_address="0000:00:01.0",severity="nonfatal"} 1');
    // The integrated SATA controller has no AER capability: no series, rather than zeros.
    expect(text).not.toContain('vfio_pci_device_aer_error_messages_total{pci_address="0000:00:17.0"');
  });
});

describe('on this machine, against its own sysfs', () => {
  const devices = '/sys/bus/pci/devices';
  const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();

  it('gives every device the reset methods, AER and SR-IOV files the kernel shows', async () => {
    const { text } = await scrapeWithLog(['--no-collector.host', '--no-collector.vm', '--no-collector.oom']);
    expect(text).toContain('vfio_collector_success{collector="pci_health"} 1');
    const addresses = readdirSync(devices).sort();
    expect(addresses.length).toBeGreaterThan(0);
    for (const address of addresses) {
      const file = path.join(devices, address, 'reset_method');
      const methods = existsSync(file) ? readFileSync(file, 'utf8').split(/\s+/).filter(Boolean) : /^(5\.(1[5-9]|[2-9]\d)|[6-9]\.)/.test(release) ? [] : undefined;
      const line = seriesLines(text, 'vfio_pci_device_reset_methods').find((each) => each.includes(`"${address}"`));
      expect(line, address).toBe(methods === undefined ? undefined : `vfio_pci_device_reset_methods{pci_address="${address}"} ${methods.length}`);
      expect(text.includes(`vfio_pci_device_aer_error_messages_total{pci_address="${address}"`), address).toBe(existsSync(path.join(devices, address, 'aer_dev_fatal')));
      expect(text.includes(`vfio_pci_device_sriov_totalvfs{pci_address="${address}"}`), address).toBe(existsSync(path.join(devices, address, 'sriov_totalvfs')));
    }
  });
});
