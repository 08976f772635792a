/** Parser for the pci.ids database (https://pci-ids.ucw.cz/, Debian package `pci.ids`). */

interface DeviceEntry {
  name: string;
  subsystems: Map<string, string>;
}

interface VendorEntry {
  name: string;
  devices: Map<string, DeviceEntry>;
}

interface SubclassEntry {
  name: string;
  progIfs: Map<string, string>;
}

interface ClassEntry {
  name: string;
  subclasses: Map<string, SubclassEntry>;
}

export interface PciIds {
  vendors: Map<string, VendorEntry>;
  classes: Map<string, ClassEntry>;
}

export interface PciNames {
  vendorName: string;
  deviceName: string;
  className: string;
}

export const emptyPciIds = (): PciIds => ({ vendors: new Map(), classes: new Map() });

const vendorLine = /^([0-9a-f]{4})\s+(.+)$/;
const deviceLine = /^\t([0-9a-f]{4})\s+(.+)$/;
const subsystemLine = /^\t\t([0-9a-f]{4}) ([0-9a-f]{4})\s+(.+)$/;
const classLine = /^C ([0-9a-f]{2})\s+(.+)$/;
const subclassLine = /^\t([0-9a-f]{2})\s+(.+)$/;
const progIfLine = /^\t\t([0-9a-f]{2})\s+(.+)$/;

/** Parses the whole file; lines it does not understand (other sections, comments) are skipped. */
export function parsePciIds(text: string): PciIds {
  const ids = emptyPciIds();
  let vendor: VendorEntry | undefined;
  let device: DeviceEntry | undefined;
  let klass: ClassEntry | undefined;
  let subclass: SubclassEntry | undefined;
  // After the class section starts, other top-level sections (e.g. `# List of known device classes`) are not vendors.
  let section: 'vendors' | 'classes' | 'other' = 'vendors';
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    let match: RegExpExecArray | null;
    if ((match = classLine.exec(line))) {
      section = 'classes';
      klass = { name: match[2]!.trim(), subclasses: new Map() };
      ids.classes.set(match[1]!, klass);
      subclass = undefined;
    } else if (!line.startsWith('\t')) {
      const vendorMatch = vendorLine.exec(line);
      if (section !== 'classes' && vendorMatch) {
        section = 'vendors';
        vendor = { name: vendorMatch[2]!.trim(), devices: new Map() };
        ids.vendors.set(vendorMatch[1]!, vendor);
      } else {
        section = 'other';
        vendor = undefined;
        klass = undefined;
      }
      device = undefined;
    } else if (section === 'vendors' && vendor) {
      if ((match = subsystemLine.exec(line))) device?.subsystems.set(`${match[1]} ${match[2]}`, match[3]!.trim());
      else if ((match = deviceLine.exec(line))) {
        device = { name: match[2]!.trim(), subsystems: new Map() };
        vendor.devices.set(match[1]!, device);
      }
    } else if (section === 'classes' && klass) {
      if ((match = progIfLine.exec(line))) subclass?.progIfs.set(match[1]!, match[2]!.trim());
      else if ((match = subclassLine.exec(line))) {
        subclass = { name: match[2]!.trim(), progIfs: new Map() };
        klass.subclasses.set(match[1]!, subclass);
      }
    }
  }
  return ids;
}

const bare = (id: string): string => id.replace(/^0x/, '').toLowerCase();

/**
 * Names as lspci prints them: vendor, device, and the most specific of subclass/class
 * (`SATA controller` for 0x010601, like `lspci -nn`). Unknown ids give empty names.
 */
export function lookupPciNames(ids: PciIds, vendorId: string, deviceId: string, classId: string): PciNames {
  const vendor = ids.vendors.get(bare(vendorId));
  const classHex = bare(classId).padStart(6, '0');
  const klass = ids.classes.get(classHex.slice(0, 2));
  const subclass = klass?.subclasses.get(classHex.slice(2, 4));
  return {
    vendorName: vendor?.name ?? '',
    deviceName: vendor?.devices.get(bare(deviceId))?.name ?? '',
    className: subclass?.name ?? klass?.name ?? '',
  };
}
