/**
 * QEMU command lines from `/proc/<pid>/cmdline` (NUL-separated argv), as Proxmox (`/usr/bin/kvm -id 101 ...`),
 * libvirt (`-name guest=win10,debug-threads=on`, JSON `-device {...}`) or a person starts QEMU.
 */

export interface QemuCommandLine {
  executable: string;
  /** Proxmox's `-id <vmid>` (its QEMU build adds the option). */
  id: string | undefined;
  /** `-name` guest name (`-name foo,debug-threads=on` or `-name guest=foo,...`). */
  name: string | undefined;
  /** `-m` guest RAM in bytes; undefined when the option is absent or unreadable. */
  memoryBytes: number | undefined;
  pidfile: string | undefined;
  /** Full addresses of `-device vfio-pci,host=...` (or `sysfsdev=`), in command-line order. */
  vfioHosts: string[];
  /** A `virtio-balloon-*` device is present. */
  balloonDevice: boolean;
}

const MiB = 1024 * 1024;

/** Proxmox runs `/usr/bin/kvm`; distributions ship `qemu-system-<arch>` and RHEL `qemu-kvm`. */
export const isQemuExecutable = (file: string): boolean => /^(kvm|qemu-kvm|qemu-system-[^/]+)$/.test(file.split('/').pop() ?? '');

/** QEMU's own comm, truncated by the kernel to 15 characters (`qemu-system-x86`). */
export const isQemuComm = (comm: string): boolean => /^(kvm|qemu-kvm|qemu-system-.+)$/.test(comm.trim());

/** QemuOpts `a=b,c=d` with `,,` for a literal comma; a first bare value belongs to `impliedKey`. */
export function parseQemuOpts(value: string, impliedKey: string): Map<string, string> {
  const parts: string[] = [];
  let current = '';
  for (let index = 0; index < value.length; index++) {
    const char = value[index]!;
    if (char === ',' && value[index + 1] === ',') {
      current += ',';
      index++;
    } else if (char === ',') {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  const options = new Map<string, string>();
  parts.forEach((part, index) => {
    const equals = part.indexOf('=');
    if (equals === -1) options.set(index === 0 ? impliedKey : part, index === 0 ? part : 'on');
    else options.set(part.slice(0, equals), part.slice(equals + 1));
  });
  return options;
}

const sizeUnits: Record<string, number> = { b: 1, k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB };

/** QEMU sizes (`16384`, `16G`, `1.5g`, `16777216k`); a bare number is in `defaultUnit`. */
export function parseQemuSize(text: string, defaultUnit: 'b' | 'm'): number {
  const match = /^(\d+(?:\.\d+)?)([bkmgt])?$/i.exec(text.trim());
  if (!match) throw new Error(`not a size: ${JSON.stringify(text)}`);
  const unit = sizeUnits[(match[2] ?? defaultUnit).toLowerCase()]!;
  return Math.round(Number(match[1]) * unit);
}

/** `-device` as QemuOpts (`vfio-pci,host=...`) or as the JSON libvirt writes (`{"driver":"vfio-pci",...}`). */
function parseDevice(value: string): Map<string, string> {
  if (!value.startsWith('{')) return parseQemuOpts(value, 'driver');
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed !== 'object' || parsed === null) return new Map();
    return new Map(Object.entries(parsed).map(([key, item]) => [key, String(item)]));
  } catch {
    return new Map();
  }
}

const fullPciAddress = (address: string): string => {
  const lower = address.toLowerCase();
  return /^[0-9a-f]{2}:/.test(lower) ? `0000:${lower}` : lower;
};

/** Parses a NUL-separated command line. Undefined when the executable is not QEMU. */
export function parseQemuCmdline(text: string): QemuCommandLine | undefined {
  const argv = text.split('\0');
  if (argv.at(-1) === '') argv.pop();
  const executable = argv[0];
  if (executable === undefined || !isQemuExecutable(executable)) return undefined;
  const result: QemuCommandLine = {
    executable,
    id: undefined,
    name: undefined,
    memoryBytes: undefined,
    pidfile: undefined,
    vfioHosts: [],
    balloonDevice: false,
  };
  for (let index = 1; index < argv.length; index++) {
    const option = /^--?([a-z-]+)$/.exec(argv[index]!)?.[1];
    const value = argv[index + 1];
    if (option === undefined || value === undefined) continue;
    if (option === 'id') result.id = value;
    else if (option === 'name') result.name = parseQemuOpts(value, 'guest').get('guest');
    else if (option === 'pidfile') result.pidfile = value;
    else if (option === 'm') {
      const size = parseQemuOpts(value, 'size').get('size');
      try {
        result.memoryBytes = size === undefined ? undefined : parseQemuSize(size, 'm');
      } catch {
        result.memoryBytes = undefined;
      }
    } else if (option === 'device') {
      const device = parseDevice(value);
      const driver = device.get('driver') ?? '';
      const host = device.get('host') ?? device.get('sysfsdev')?.split('/').pop();
      if (driver.startsWith('vfio-pci') && host) result.vfioHosts.push(fullPciAddress(host));
      if (driver.startsWith('virtio-balloon')) result.balloonDevice = true;
    } else continue;
    index++;
  }
  return result;
}
