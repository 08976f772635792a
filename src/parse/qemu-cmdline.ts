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
  /**
   * Guest RAM at start in bytes: `-m` (its `size`, the base memory) plus the `-device pc-dimm` modules
   * plugged on the command line, as QMP `query-memory-size-summary` adds base and plugged memory.
   * Undefined when `-m` is absent or unreadable, or a module's backend size is unknown.
   */
  memoryBytes: number | undefined;
  pidfile: string | undefined;
  /** Full addresses of `-device vfio-pci,host=...` (or a PCI `sysfsdev=`), in command-line order. */
  vfioHosts: string[];
  /**
   * Mediated devices, `-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/<uuid>` (QEMU hw/vfio/pci.c names the
   * device after the path's last part): a vGPU slice of a parent PCI device, not a PCI address itself.
   */
  mdevs: { uuid: string; sysfsdev: string }[];
  /** A `virtio-balloon-*` device is present. */
  balloonDevice: boolean;
}

const MiB = 1024 * 1024;

/** The vmid a Proxmox-style pid file (`/var/run/qemu-server/<vmid>.pid`) gives a QEMU, even one started without `-id`. */
const proxmoxPidFileVmid = (pidfile: string | undefined): string | undefined =>
  pidfile === undefined ? undefined : /^\/(?:var\/)?run\/qemu-server\/(\d+)\.pid$/.exec(pidfile)?.[1];

/** The Proxmox vmid of a QEMU: `-id`, else its pid file's name. One identity for every collector. */
export const cmdlineVmid = ({ id, pidfile }: Pick<QemuCommandLine, 'id' | 'pidfile'>): string | undefined => id ?? proxmoxPidFileVmid(pidfile);

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

/** `-object` as QemuOpts (`memory-backend-ram,id=m0,size=1G`) or JSON (`{"qom-type":...}`): its id and size in bytes. */
function memoryBackend(value: string): { id: string; sizeBytes: number | undefined } | undefined {
  const object = value.startsWith('{') ? parseDevice(value) : parseQemuOpts(value, 'qom-type');
  const id = object.get('id');
  if (!object.get('qom-type')?.startsWith('memory-backend-') || id === undefined) return undefined;
  const size = object.get('size');
  try {
    return { id, sizeBytes: size === undefined ? undefined : parseQemuSize(size, 'b') };
  } catch {
    return { id, sizeBytes: undefined };
  }
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
    mdevs: [],
    balloonDevice: false,
  };
  let baseBytes: number | undefined;
  const backends = new Map<string, number | undefined>();
  const dimmBackends: string[] = [];
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
        baseBytes = size === undefined ? undefined : parseQemuSize(size, 'm');
      } catch {
        baseBytes = undefined;
      }
    } else if (option === 'object') {
      const backend = memoryBackend(value);
      if (backend) backends.set(backend.id, backend.sizeBytes);
    } else if (option === 'device') {
      const device = parseDevice(value);
      const driver = device.get('driver') ?? '';
      if (driver.startsWith('vfio-pci')) addVfioDevice(result, device);
      if (driver.startsWith('virtio-balloon')) result.balloonDevice = true;
      const memdev = device.get('memdev');
      if (driver === 'pc-dimm' && memdev !== undefined) dimmBackends.push(memdev);
    } else continue;
    index++;
  }
  const dimmSizes = dimmBackends.map((id) => backends.get(id));
  result.memoryBytes =
    baseBytes === undefined || dimmSizes.some((size) => size === undefined) ? undefined : dimmSizes.reduce<number>((sum, size) => sum + size!, baseBytes);
  return result;
}

/** `host=` is a PCI address; `sysfsdev=` is a PCI device's or a mediated device's sysfs directory. */
function addVfioDevice(result: QemuCommandLine, device: Map<string, string>): void {
  const host = device.get('host');
  const sysfsdev = device.get('sysfsdev');
  if (host) result.vfioHosts.push(fullPciAddress(host));
  else if (sysfsdev !== undefined) {
    // `/sys/bus/mdev/devices/<uuid>` or its target under the parent, `/sys/devices/.../0000:00:02.0/<uuid>`.
    const last = sysfsdev.replace(/\/+$/, '').split('/').pop() ?? '';
    if (uuidPattern.test(last)) result.mdevs.push({ uuid: last.toLowerCase(), sysfsdev });
    else if (/^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(last)) result.vfioHosts.push(fullPciAddress(last));
  }
}
