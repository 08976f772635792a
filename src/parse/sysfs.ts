/** Pure parsers for single-value sysfs attribute files. */

const hexPattern = /^0x[0-9a-fA-F]+$/;

/** `0x8086\n` → `0x8086`, width-normalised to `digits` hex digits, as node_exporter's pcidevice collector prints ids. */
export function parseHexAttribute(text: string, digits: number, attribute: string): string {
  const value = text.trim();
  if (!hexPattern.test(value)) throw new Error(`${attribute}: not a hex value: ${JSON.stringify(value.slice(0, 40))}`);
  const hex = value.slice(2).toLowerCase();
  if (hex.length > digits) throw new Error(`${attribute}: ${value} is wider than ${digits} hex digits`);
  return '0x' + hex.padStart(digits, '0');
}

/** `numa_node` holds `-1` when the platform does not say. */
export function parseNumaNode(text: string): string {
  const value = text.trim();
  if (!/^-?\d+$/.test(value)) throw new Error(`numa_node: not an integer: ${JSON.stringify(value.slice(0, 40))}`);
  return value;
}

/** `driver_override` reads `(null)` when unset (drivers/pci/pci-sysfs.c). */
export function parseDriverOverride(text: string): string | undefined {
  const value = text.trim();
  return value === '' || value === '(null)' ? undefined : value;
}

/** A full PCI address `dddd:bb:dd.f`. */
export const pciAddressPattern = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

export const isPciAddress = (name: string): boolean => pciAddressPattern.test(name);
