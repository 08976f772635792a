import { expect } from 'vitest';
import { seriesLines } from './fixtures.js';

interface LspciDevice {
  address: string;
  className: string;
  classId: string;
  vendorDevice: string;
  vendorId: string;
  deviceId: string;
  revision: string;
  driver: string;
  /** "Kernel modules:": the modules whose aliases match the device's modalias. */
  modules: string[];
}

/** `lspci -Dnnk`: one header line per device, then tab-indented details. */
function parseLspci(text: string): LspciDevice[] {
  const devices: LspciDevice[] = [];
  for (const line of text.split('\n')) {
    const header = /^(\S+) (.*) \[([0-9a-f]{4})\]: (.*) \[([0-9a-f]{4}):([0-9a-f]{4})\](?: \(rev ([0-9a-f]{2})\))?/.exec(line);
    if (header) {
      devices.push({
        address: header[1]!,
        className: header[2]!,
        classId: header[3]!,
        vendorDevice: header[4]!,
        vendorId: header[5]!,
        deviceId: header[6]!,
        revision: header[7] ?? '00',
        driver: 'none',
        modules: [],
      });
      continue;
    }
    const driver = /^\tKernel driver in use: (\S+)/.exec(line);
    if (driver && devices.length > 0) devices[devices.length - 1]!.driver = driver[1]!;
    const modules = /^\tKernel modules: (.+)$/.exec(line);
    if (modules && devices.length > 0) devices[devices.length - 1]!.modules = modules[1]!.split(', ');
  }
  return devices;
}

export const label = (line: string, name: string): string => new RegExp(`[{,]${name}="([^"]*)"`).exec(line)?.[1] ?? '';

/** Every device of `lspci -Dnnk` is in the exporter's metrics with the same ids, revision, class, names and driver, and no other. */
export function expectDevicesAsLspciShows(metrics: string, lspciText: string): void {
  const lspci = parseLspci(lspciText);
  expect(lspci.length).toBeGreaterThan(0);
  const info = new Map(seriesLines(metrics, 'vfio_pci_device_info').map((line) => [label(line, 'pci_address'), line]));
  const drivers = new Map(seriesLines(metrics, 'vfio_pci_device_driver_info').map((line) => [label(line, 'pci_address'), label(line, 'driver')]));
  expect([...info.keys()].sort()).toEqual(lspci.map((device) => device.address).sort());
  for (const device of lspci) {
    const line = info.get(device.address)!;
    expect({ address: device.address, vendor: label(line, 'vendor_id'), device: label(line, 'device_id'), revision: label(line, 'revision'), classPrefix: label(line, 'class_id').slice(0, 6), className: label(line, 'class_name'), driver: drivers.get(device.address) }).toEqual({
      address: device.address,
      vendor: `0x${device.vendorId}`,
      device: `0x${device.deviceId}`,
      revision: `0x${device.revision}`,
      classPrefix: `0x${device.classId}`,
      className: device.className,
      driver: device.driver,
    });
    // lspci prints "<vendor> <device>" from the same pci.ids when it knows the device.
    if (label(line, 'device_name')) expect(device.vendorDevice).toBe(`${label(line, 'vendor_name')} ${label(line, 'device_name')}`);
  }
}

/** The exporter's boot modules of every device are lspci -k's "Kernel modules" (libkmod's lookup of the modalias). */
export function expectBootModulesAsLspciShows(metrics: string, lspciText: string): void {
  const lspci = parseLspci(lspciText);
  expect(lspci.some((device) => device.modules.length > 0), 'lspci names no kernel modules').toBe(true);
  const exported = seriesLines(metrics, 'vfio_pci_device_boot_module_info').map((line) => `${label(line, 'pci_address')} ${label(line, 'module')}`);
  expect(exported.sort()).toEqual(lspci.flatMap((device) => device.modules.map((module) => `${device.address} ${module}`)).sort());
}
