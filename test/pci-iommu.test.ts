import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { fixtureFlags, sampledApp, seriesLines } from './helpers/fixtures.js';

const scrape = async (host: string): Promise<string> => {
  const { app } = await sampledApp(fixtureFlags(host));
  const response = await request(app).get('/metrics').expect(200);
  expect(response.headers['content-type']).toMatch(/^text\/plain;.*version=0\.0\.4/);
  return response.text;
};

describe('pci and iommu collectors on the seed host (suprox)', async () => {
  const text = await scrape('suprox');

  it('reports the SATA controller as lspci -nnk shows it, bound to vfio-pci alone in group 7', () => {
    expect(text).toContain(
      'vfio_pci_device_info{pci_address="0000:00:17.0",vendor_id="0x8086",device_id="0xa352",subsystem_vendor_id="0x15d9",subsystem_device_id="0x1b0e",class_id="0x010601",revision="0x10",vendor_name="Intel Corporation",device_name="Cannon Lake PCH SATA AHCI Controller",class_name="SATA controller",iommu_group="7",numa_node="-1"} 1',
    );
    expect(text).toContain('vfio_pci_device_driver_info{pci_address="0000:00:17.0",driver="vfio-pci"} 1');
    expect(text).toContain('vfio_pci_device_vfio_bound{pci_address="0000:00:17.0"} 1');
    expect(text).toContain('vfio_pci_device_driver_override_info{pci_address="0000:00:17.0",driver_override="vfio-pci"} 1');
    expect(text).toContain('vfio_iommu_group_devices{iommu_group="7"} 1');
    expect(text).toContain('vfio_iommu_group_viable{iommu_group="7"} 1');
  });

  it('lists every device once, unbound ones with driver "none"', () => {
    expect(seriesLines(text, 'vfio_pci_device_info')).toHaveLength(27);
    expect(seriesLines(text, 'vfio_pci_device_vfio_bound').filter((line) => line.endsWith(' 1'))).toEqual([
      'vfio_pci_device_vfio_bound{pci_address="0000:00:17.0"} 1',
    ]);
    expect(text).toContain('vfio_pci_device_driver_info{pci_address="0000:00:1f.0",driver="none"} 1');
    expect(seriesLines(text, 'vfio_pci_device_driver_override_info')).toHaveLength(1);
  });

  it('has the seed groups: 1 with the root port and both I350 ports, 14 with ISA, SMBus and SPI', () => {
    expect(seriesLines(text, 'vfio_iommu_group_devices')).toHaveLength(19);
    expect(text).toContain('vfio_iommu_enabled 1');
    expect(text).toContain('vfio_iommu_group_devices{iommu_group="1"} 3');
    expect(text).toContain('vfio_iommu_group_devices{iommu_group="14"} 3');
    expect(text).toContain('vfio_iommu_group_devices{iommu_group="17"} 2');
    // Groups whose endpoints sit on host drivers are not viable for VFIO; bridge-only groups are.
    expect(text).toContain('vfio_iommu_group_viable{iommu_group="1"} 0');
    expect(text).toContain('vfio_iommu_group_viable{iommu_group="14"} 0');
    expect(text).toContain('vfio_iommu_group_viable{iommu_group="10"} 1');
  });

  it('reports both collectors successful', () => {
    expect(text).toContain('vfio_collector_success{collector="pci"} 1');
    expect(text).toContain('vfio_collector_success{collector="iommu"} 1');
    expect(text).toMatch(/^vfio_last_sample_timestamp_seconds \d+(\.\d+)?$/m);
    expect(text).toMatch(/^vfio_exporter_build_info\{version="\d+\.\d+\.\d+",revision="[^"]+",nodejs="v\d+[^"]*"\} 1$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  });
});

describe('pci and iommu collectors on hosts in trouble', () => {
  it('suprox-trouble: SATA grabbed by ahci, and an I350 port on vfio-pci beside its sibling on igb', async () => {
    const text = await scrape('suprox-trouble');
    expect(text).toContain('vfio_pci_device_driver_info{pci_address="0000:00:17.0",driver="ahci"} 1');
    expect(text).toContain('vfio_pci_device_vfio_bound{pci_address="0000:00:17.0"} 0');
    expect(seriesLines(text, 'vfio_pci_device_driver_override_info')).toEqual([]);
    expect(text).toContain('vfio_pci_device_vfio_bound{pci_address="0000:01:00.1"} 1');
    expect(text).toContain('vfio_iommu_group_viable{iommu_group="1"} 0');
    expect(text).toContain('vfio_iommu_group_viable{iommu_group="7"} 0');
  });

  it('suprox-noiommu: no groups, IOMMU disabled, devices without a group label value', async () => {
    const text = await scrape('suprox-noiommu');
    expect(text).toContain('vfio_iommu_enabled 0');
    expect(seriesLines(text, 'vfio_iommu_group_devices')).toEqual([]);
    expect(text).toMatch(/vfio_pci_device_info\{pci_address="0000:00:17.0",.*iommu_group="",numa_node="-1"\} 1/);
    expect(text).toContain('vfio_collector_success{collector="iommu"} 1');
  });
});
