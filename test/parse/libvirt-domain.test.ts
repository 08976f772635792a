import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { libvirtBytes, parseLibvirtDomain, parseLibvirtStatus } from '../../src/parse/libvirt-domain.js';
import { fixturesDir, hostDir } from '../helpers/fixtures.js';

const rootFile = (file: string): string => readFileSync(path.join(hostDir('libvirt-gpu'), 'root', file), 'utf8');
const GiB = 1024 ** 3;

describe('libvirt domain XML', () => {
  it('reads the GPU domain: memory, hugepages, no balloon, both GPU functions by their host (source) address', () => {
    expect(parseLibvirtDomain(rootFile('etc/libvirt/qemu/win10-gaming.xml'))).toEqual({
      name: 'win10-gaming',
      memoryBytes: 16 * GiB,
      currentMemoryBytes: 16 * GiB,
      arch: 'x86_64',
      balloonEnabled: false,
      hugepages: [GiB],
      hugepageNodes: [{ memoryBytes: 16 * GiB, page: GiB }],
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

/** The standalone domains beside the reader table, modelled on libvirt's own cases. */
const standalone = (file: string): string => readFileSync(path.join(fixturesDir, 'configs/libvirt', file), 'utf8');

describe('libvirt domain XML read as libvirt hands it to QEMU', () => {
  it('adds the default balloon only where qemuDomainDefAddDefaultDevices does', () => {
    expect(parseLibvirtDomain(standalone('arm-builder.xml')).balloonEnabled).toBe(false);
    expect(parseLibvirtDomain(standalone('loongarch-guest.xml')).balloonEnabled).toBe(false);
    expect(parseLibvirtDomain(standalone('microvm.xml')).balloonEnabled).toBe(false);
    expect(parseLibvirtDomain(standalone('s390-guest.xml')).balloonEnabled).toBe(true);
    const ppc = (arch: string): string =>
      `<domain type='kvm'><name>p</name><memory>1048576</memory><os><type arch='${arch}' machine='pseries'>hvm</type></os><devices/></domain>`;
    expect(parseLibvirtDomain(ppc('ppc64le')).balloonEnabled).toBe(true);
    expect(parseLibvirtDomain(ppc('riscv64')).balloonEnabled).toBe(false);
    // An explicit <memballoon> decides on every arch.
    expect(parseLibvirtDomain(ppc('aarch64').replace('<devices/>', "<devices><memballoon model='virtio'/></devices>")).balloonEnabled).toBe(true);
  });

  it("leaves out a hostdev parked with <address type='unassigned'/>", () => {
    expect(parseLibvirtDomain(standalone('parked-hostdev.xml')).hostdevs).toEqual(['0000:06:00.0']);
  });

  it('numbers hostdevs and hostdev interfaces in XML order, interleaved', () => {
    expect(parseLibvirtDomain(standalone('interleaved-devices.xml')).hostdevs).toEqual(['0000:03:10.1', '0000:01:00.0', '0000:03:10.3', '0000:01:00.1']);
  });

  it("takes the VF a network pool gave a running domain from <actual type='hostdev'>; the stopped domain names none", () => {
    const status = parseLibvirtStatus(standalone('sriov-pool.status.xml'));
    expect(status.pid).toBe(5120);
    expect(status.domain.hostdevs).toEqual(['0000:03:10.4']);
    expect(parseLibvirtDomain(standalone('sriov-pool.xml')).hostdevs).toEqual([]);
  });

  it('reads 4 KiB pages as ordinary memory, sizes per NUMA node, and DIMM page sizes as not backing guest RAM', () => {
    expect(parseLibvirtDomain(standalone('hugepages-4k.xml')).hugepages).toBeUndefined();
    const mixed = parseLibvirtDomain(standalone('hugepages-numa-mixed.xml'));
    expect(mixed.hugepages).toEqual([GiB, 2 * 1024 ** 2]);
    // Node 2 is on 4 KiB pages: ordinary memory, in no pool.
    expect(mixed.hugepageNodes).toEqual([
      { memoryBytes: 2 * GiB, page: GiB },
      { memoryBytes: 2 * GiB, page: 2 * 1024 ** 2 },
    ]);
    const dimm = parseLibvirtDomain(standalone('dimm-hugepages.xml'));
    expect(dimm.hugepages).toBeUndefined();
    expect(dimm.memoryBytes).toBe(10 * GiB);
  });
});
