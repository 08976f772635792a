import { describe, expect, it } from 'vitest';
import { groupViability, isPciBridgeClass, type IommuMember } from '../../src/parse/iommu.js';
import { lookupPciNames, parsePciIds } from '../../src/parse/pciids.js';
import { parseDriverOverride, parseHexAttribute, parseNumaNode } from '../../src/parse/sysfs.js';
import { parseDuration } from '../../src/parse/duration.js';

describe('sysfs attribute parsers', () => {
  it('normalises hex ids to a fixed width', () => {
    expect(parseHexAttribute('0x8086\n', 4, 'vendor')).toBe('0x8086');
    expect(parseHexAttribute('0x10601\n', 6, 'class')).toBe('0x010601');
    expect(parseHexAttribute('0xF0\n', 2, 'revision')).toBe('0xf0');
  });
  it('rejects garbage with the attribute named', () => {
    expect(() => parseHexAttribute('garbage\n', 6, 'class')).toThrow(/class: not a hex value: "garbage"/);
    expect(() => parseHexAttribute('0x1234567\n', 6, 'class')).toThrow(/wider than 6/);
  });
  it('reads driver_override "(null)" as unset', () => {
    expect(parseDriverOverride('(null)\n')).toBeUndefined();
    expect(parseDriverOverride('vfio-pci\n')).toBe('vfio-pci');
  });
  it('keeps numa_node -1 and rejects non-integers', () => {
    expect(parseNumaNode('-1\n')).toBe('-1');
    expect(() => parseNumaNode('x')).toThrow(/numa_node/);
  });
  it('parses durations', () => {
    expect(parseDuration('15s')).toBe(15);
    expect(parseDuration('500ms')).toBe(0.5);
    expect(parseDuration('1m30s')).toBe(90);
    expect(() => parseDuration('15')).toThrow(/not a duration/);
    expect(() => parseDuration('5x')).toThrow(/not a duration/);
  });
});

const sample = [
  '# comment',
  '8086  Intel Corporation',
  '\ta352  Cannon Lake PCH SATA AHCI Controller',
  '\t\t15d9 1b0e  Cannon Lake PCH SATA AHCI Controller',
  '1a03  ASPEED Technology, Inc.',
  '\t2000  ASPEED Graphics Family',
  '# List of known device classes',
  'C 01  Mass storage controller',
  '\t06  SATA controller',
  '\t\t01  AHCI 1.0',
  'C 06  Bridge',
  '\t04  PCI bridge',
  'C ff  Unassigned class',
].join('\n');

describe('pci.ids', () => {
  const ids = parsePciIds(sample);
  it('names vendor, device and subclass like lspci', () => {
    expect(lookupPciNames(ids, '0x8086', '0xa352', '0x010601')).toEqual({
      vendorName: 'Intel Corporation',
      deviceName: 'Cannon Lake PCH SATA AHCI Controller',
      className: 'SATA controller',
    });
  });
  it('falls back to the class name, and to empty names for unknown ids', () => {
    expect(lookupPciNames(ids, '0x1234', '0x5678', '0xff0000')).toEqual({ vendorName: '', deviceName: '', className: 'Unassigned class' });
  });
  it('does not take class lines for vendors', () => {
    expect(ids.vendors.has('c 0')).toBe(false);
    expect([...ids.vendors.keys()]).toEqual(['8086', '1a03']);
  });
});

describe('IOMMU group viability', () => {
  const member = (address: string, classId: string | undefined, driver: string | undefined, driverKnown = true): IommuMember => ({ address, classId, driver, driverKnown });
  it('allows vfio, vfio variants, pci-stub, unbound endpoints and bridges on any driver', () => {
    expect(
      groupViability([
        member('0000:00:01.0', '0x060400', 'pcieport'),
        member('0000:01:00.0', '0x030000', 'vfio-pci'),
        member('0000:01:00.1', '0x040300', 'pci-stub'),
        member('0000:01:00.2', '0x0c0330', undefined),
        member('0000:02:00.0', '0x020000', 'mlx5_vfio_pci'),
      ]),
    ).toEqual({ blocking: [], viable: true });
  });
  it('blocks on an endpoint bound to a host driver', () => {
    const igb = member('0000:01:00.0', '0x020000', 'igb');
    expect(groupViability([member('0000:01:00.1', '0x020000', 'vfio-pci'), igb])).toEqual({ blocking: [igb], viable: false });
  });
  it('an unreadable driver, or an unreadable class on a host driver, leaves the verdict unknown unless another member blocks', () => {
    const unknownDriver = member('0000:01:00.1', '0x020000', undefined, false);
    const unknownClass = member('0000:01:00.2', undefined, 'igb');
    expect(groupViability([member('0000:01:00.0', '0x020000', 'vfio-pci'), unknownDriver])).toEqual({ blocking: [], viable: undefined });
    expect(groupViability([unknownClass])).toEqual({ blocking: [], viable: undefined });
    expect(groupViability([member('0000:01:00.3', undefined, 'vfio-pci')])).toEqual({ blocking: [], viable: true });
    const igb = member('0000:01:00.0', '0x020000', 'igb');
    expect(groupViability([igb, unknownDriver, unknownClass])).toEqual({ blocking: [igb], viable: false });
  });
  it('recognises bridge classes', () => {
    expect(isPciBridgeClass('0x060400')).toBe(true);
    expect(isPciBridgeClass('0x060100')).toBe(false);
  });
});
