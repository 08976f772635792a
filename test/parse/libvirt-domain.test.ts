import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { libvirtBytes, parseLibvirtDomain, parseLibvirtStatus } from '../../src/parse/libvirt-domain.js';
import { hostDir } from '../helpers/fixtures.js';

const rootFile = (file: string): string => readFileSync(path.join(hostDir('libvirt-gpu'), 'root', file), 'utf8');
const GiB = 1024 ** 3;

describe('libvirt domain XML', () => {
  it('reads the GPU domain: memory, hugepages, no balloon, both GPU functions by their host (source) address', () => {
    expect(parseLibvirtDomain(rootFile('etc/libvirt/qemu/win10-gaming.xml'))).toEqual({
      name: 'win10-gaming',
      memoryBytes: 16 * GiB,
      currentMemoryBytes: 16 * GiB,
      balloonEnabled: false,
      hugepages: GiB,
      // The USB hostdev and the guest-side <address> inside each hostdev are not host PCI devices.
      hostdevs: ['0000:01:00.0', '0000:01:00.1'],
    });
  });

  it('reads units other than KiB and a virtio balloon', () => {
    const domain = parseLibvirtDomain(rootFile('etc/libvirt/qemu/ubuntu-server.xml'));
    expect(domain.memoryBytes).toBe(4 * GiB);
    expect(domain.currentMemoryBytes).toBe(2 * GiB);
    expect(domain.balloonEnabled).toBe(true);
    expect(domain.hugepages).toBeUndefined();
    expect(domain.hostdevs).toEqual([]);
  });

  it("reads the status XML's pid and live domain", () => {
    const status = parseLibvirtStatus(rootFile('run/libvirt/qemu/win10-gaming.xml'));
    expect(status.pid).toBe(2841);
    expect(status.domain.hostdevs).toEqual(['0000:01:00.0', '0000:01:00.1']);
  });

  it('converts every libvirt unit', () => {
    expect(libvirtBytes('1', undefined)).toBe(1024);
    expect(libvirtBytes('1', 'bytes')).toBe(1);
    expect(libvirtBytes('2', 'MB')).toBe(2e6);
    expect(libvirtBytes('2', 'M')).toBe(2 * 1024 ** 2);
    expect(libvirtBytes('1', 'TiB')).toBe(1024 ** 4);
    expect(() => libvirtBytes('1', 'parsecs')).toThrow(/unknown unit/);
    expect(() => libvirtBytes('1.5', 'GiB')).toThrow(/whole number/);
  });

  it('reads default hugepages, an SR-IOV hostdev interface, and refuses broken XML', () => {
    const domain = parseLibvirtDomain(`<domain type='kvm'><name>vf</name><memory>1048576</memory>
      <memoryBacking><hugepages/></memoryBacking>
      <devices><interface type='hostdev' managed='yes'><source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x2'/></source></interface></devices></domain>`);
    expect(domain.hugepages).toBe('default');
    expect(domain.memoryBytes).toBe(GiB);
    expect(domain.balloonEnabled).toBe(true);
    expect(domain.hostdevs).toEqual(['0000:03:10.2']);
    expect(() => parseLibvirtDomain('<domain><name>x</name>')).toThrow(/invalid XML/);
    expect(() => parseLibvirtDomain('<network><name>default</name></network>')).toThrow(/no <domain>/);
  });
});
