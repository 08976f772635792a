/**
 * Secret stripping for support bundles: text in, text out, with the number of values replaced.
 *
 * An allow-list, not a list of secret names: a bundle keeps the values the collectors read (and a few
 * that only describe the machine), and every other value is replaced by `<redacted>`. Names and
 * structure stay (option names, config keys, XML elements and attribute names), so the bundle still
 * shows what is configured, and the exporter run on it gives the same `vfio_*` series as on the host.
 * A secret in a place nobody thought of (a password after a space in `-append`, credentials in a URL, a
 * ceph `key=` inside `file=rbd:…`, a systemd credential in `-smbios type=11`, a libvirt `<cookie>` or
 * `<description>`) is gone because its value was never on the list.
 */

export const redacted = '<redacted>';

export interface Redacted {
  text: string;
  count: number;
}

/** Counts the values replaced while one file is cleaned. */
class Redaction {
  count = 0;

  /** `placeholder`: what stands for the value; in XML text and attributes, `<redacted>` escaped. */
  constructor(private readonly placeholder = redacted) {}

  hide(): string {
    this.count++;
    return this.placeholder;
  }

  /** Keeps the whitespace around a text (XML indentation), hides the rest. */
  hideText(text: string): string {
    return /\S/.test(text) ? text.replace(/\S(?:[\s\S]*\S)?/, () => this.hide()) : text;
  }
}

interface OptionRule {
  /** QemuOpts key of a first value given without `key=` (`-device vfio-pci,...` is `driver=vfio-pci`). */
  implied?: string;
  /** Keys whose values are kept; 'all': the whole value. */
  keep: 'all' | ReadonlySet<string>;
}

/**
 * QEMU options whose values a bundle keeps (src/parse/qemu-cmdline.ts reads -id, -name, -m, -pidfile and
 * -device; memory backends, -smp, -cpu, -machine and -numa describe the VM's memory and CPUs). Values of
 * every other option are replaced. Implied keys are QEMU's `implied_opt_name` of each option list
 * (`-name` guest, `-device` driver, `-object` qom-type), as src/parse/qemu-cmdline.ts reads them.
 */
const qemuOptionRules: Record<string, OptionRule> = {
  id: { keep: 'all' },
  m: { keep: 'all' },
  pidfile: { keep: 'all' },
  smp: { keep: 'all' },
  cpu: { keep: 'all' },
  machine: { keep: 'all' },
  numa: { keep: 'all' },
  name: { implied: 'guest', keep: new Set(['guest', 'debug-threads', 'process']) },
  device: {
    implied: 'driver',
    keep: new Set(['driver', 'id', 'bus', 'addr', 'multifunction', 'host', 'sysfsdev', 'x-vga', 'rombar', 'deflate-on-oom', 'free-page-reporting']),
  },
  object: { implied: 'qom-type', keep: new Set(['qom-type', 'id', 'size', 'share', 'prealloc', 'host-nodes', 'policy', 'merge', 'dump', 'hugetlb', 'hugetlbsize']) },
};

/** QemuOpts parts: split at single commas (`,,` is a literal comma and stays inside its part, escaped). */
function splitQemuOpts(value: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let index = 0; index < value.length; index++) {
    if (value[index] === ',' && value[index + 1] === ',') {
      current += ',,';
      index++;
    } else if (value[index] === ',') {
      parts.push(current);
      current = '';
    } else current += value[index];
  }
  parts.push(current);
  return parts;
}

const isPrimitive = (value: unknown): value is string | number | boolean => ['string', 'number', 'boolean'].includes(typeof value);

/** QEMU's JSON option form (`-device {"driver":"vfio-pci",...}`, `-blockdev {...}`): kept keys of the top level keep primitive values. */
function redactJsonOptions(value: string, rule: OptionRule | undefined, redaction: Redaction): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return redaction.hide();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return redaction.hide();
  const cleaned = Object.fromEntries(
    Object.entries(parsed).map(([key, item]) => [key, rule?.keep !== 'all' && !(rule?.keep.has(key) && isPrimitive(item)) ? redaction.hide() : item]),
  );
  return JSON.stringify(cleaned);
}

/** One option value: kept whole, kept key by key, or (an option not on the list) keys only. */
function redactQemuValue(value: string, rule: OptionRule | undefined, redaction: Redaction): string {
  if (rule?.keep === 'all' || value === '') return value;
  const keep = rule?.keep;
  if (value.trimStart().startsWith('{')) return redactJsonOptions(value, rule, redaction);
  // Not QemuOpts (a kernel command line, a path with spaces): nothing in it can be told apart.
  if (/\s/.test(value)) return redaction.hide();
  return splitQemuOpts(value)
    .map((part, index) => {
      const equals = part.indexOf('=');
      const key = equals === -1 ? (index === 0 ? rule?.implied : part) : part.slice(0, equals);
      if (key === undefined || !/^[\w.-]+$/.test(key)) return redaction.hide();
      const kept = keep?.has(key) === true;
      if (equals === -1) return kept ? part : redaction.hide();
      return kept ? part : `${key}=${redaction.hide()}`;
    })
    .join(',');
}

const qemuOptionName = /^--?([A-Za-z][\w.-]*)$/;

/** `/proc/<pid>/cmdline`: NUL-separated arguments. The program and option names stay; values as `qemuOptionRules` says. */
export function redactCmdline(cmdline: string): Redacted {
  const redaction = new Redaction();
  let option: string | undefined;
  const text = cmdline
    .split('\0')
    .map((argument, index) => {
      if (index === 0) return argument;
      const name = qemuOptionName.exec(argument)?.[1];
      if (name !== undefined) {
        option = name;
        return argument;
      }
      const rule = option === undefined ? undefined : qemuOptionRules[option];
      option = undefined;
      return redactQemuValue(argument, rule, redaction);
    })
    .join('\0');
  return { text, count: redaction.count };
}

/**
 * Proxmox VM config keys whose values a bundle keeps: those src/parse/pve-config.ts reads (`delete` is
 * read in `[PENDING]`) and a few describing CPU, firmware and machine. Property strings of hostpciN are
 * kept whole (host ids or a mapping, pcie, x-vga, rombar). Every other value (disks, networks, `args:`,
 * `smbios1`, cloud-init, `description`) is replaced; `#` lines are the VM's free-text notes.
 */
const keptPveKeys = new RegExp(
  '^(' +
    ['name', 'memory', 'balloon', 'onboot', 'hugepages', 'keephugepages', 'hostpci\\d+', 'delete', 'cores', 'sockets', 'vcpus', 'numa', 'numa\\d+', 'cpu', 'cpulimit', 'cpuunits', 'affinity',
      'machine', 'bios', 'ostype', 'boot', 'scsihw', 'vga', 'agent', 'kvm', 'acpi', 'tablet', 'localtime', 'template', 'lock', 'parent', 'snaptime', 'shares'].join('|') +
    ')$',
);

/** A Proxmox VM config (`/etc/pve/qemu-server/<vmid>.conf`, every section). */
export function redactPveConfig(config: string): Redacted {
  const redaction = new Redaction();
  const text = config
    .split('\n')
    .map((line) => {
      if (/^\s*$/.test(line) || /^\[[^\]]*\]\s*$/.test(line)) return line;
      if (line.startsWith('#')) return `#${redaction.hide()}`;
      // PVE::QemuServer::parse_vm_config: `key: value`; a leading byte-order mark is left for the parser to judge.
      const match = /^(\uFEFF?[a-z][\w-]*)(\s*:\s*)(.*)$/i.exec(line);
      if (!match) return redaction.hide();
      const [, key, separator, value] = match as unknown as [string, string, string, string];
      return keptPveKeys.test(key.replace(/^\uFEFF/, '')) || value === '' ? line : `${key}${separator}${redaction.hide()}`;
    })
    .join('\n');
  return { text, count: redaction.count };
}

/** Keys of a `map` line in /etc/pve/mapping/pci.cfg that the collectors read or that name the device. */
const keptMapKeys = new Set(['node', 'path', 'id', 'iommugroup', 'subsystem-id']);

/** A Proxmox cluster mapping file (`/etc/pve/mapping/pci.cfg`): mapping ids and their `map` lines stay, descriptions go. */
export function redactPveMapping(config: string): Redacted {
  const redaction = new Redaction();
  const text = config
    .split('\n')
    .map((line) => {
      if (/^\s*$/.test(line) || /^\S+\s*$/.test(line)) return line;
      if (/^\s*#/.test(line)) return `#${redaction.hide()}`;
      const property = /^(\s+)(\S+)(\s+)(.*)$/.exec(line);
      if (!property) return redaction.hide();
      const [, indent, name, space, value] = property as unknown as [string, string, string, string, string];
      if (name !== 'map') return `${indent}${name}${space}${redaction.hide()}`;
      const parts = value.split(',').map((part) => {
        const equals = part.indexOf('=');
        if (equals === -1) return redaction.hide();
        return keptMapKeys.has(part.slice(0, equals)) ? part : `${part.slice(0, equals)}=${redaction.hide()}`;
      });
      return `${indent}${name}${space}${parts.join(',')}`;
    })
    .join('\n');
  return { text, count: redaction.count };
}

/**
 * libvirt domain XML (src/parse/libvirt-domain.ts): element paths, below `<domain>` (also inside a
 * status file's `<domstatus>`), whose text is kept, and attributes kept per element path. All other
 * text, attribute values, comments and CDATA are replaced; `<qemu:arg>`, `<qemu:env>`, `<cookie>`,
 * `<oemStrings>`, `<description>`, `<title>`, `<metadata>` and graphics passwords among them.
 */
const keptXmlText = new Set(['domain/name', 'domain/uuid', 'domain/memory', 'domain/currentMemory', 'domain/maxMemory', 'domain/vcpu', 'domain/os/type']);
const pciAddressAttributes = ['domain', 'bus', 'slot', 'function', 'type', 'multifunction'];
const keptXmlAttributes: Record<string, readonly string[]> = {
  domstatus: ['state', 'reason', 'pid'],
  domain: ['type', 'id'],
  'domain/memory': ['unit'],
  'domain/currentMemory': ['unit'],
  'domain/maxMemory': ['unit', 'slots'],
  'domain/vcpu': ['placement', 'current'],
  'domain/os/type': ['arch', 'machine'],
  'domain/memoryBacking/hugepages/page': ['size', 'unit', 'nodeset'],
  'domain/devices/hostdev': ['mode', 'type', 'managed'],
  'domain/devices/hostdev/driver': ['name'],
  'domain/devices/hostdev/source/address': pciAddressAttributes,
  'domain/devices/hostdev/address': pciAddressAttributes,
  'domain/devices/hostdev/alias': ['name'],
  'domain/devices/interface': ['type', 'managed'],
  'domain/devices/interface/source/address': pciAddressAttributes,
  'domain/devices/memballoon': ['model', 'autodeflate', 'freePageReporting'],
};

const xmlToken = /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>|<!DOCTYPE(?:[^[>]|\[[\s\S]*?\])*>|<\/([\w:.-]+)\s*>|<([\w:.-]+)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|[^<]+/y;
const xmlAttribute = /(\s+)([\w:.-]+)(\s*=\s*)(["'])([\s\S]*?)\4/g;

/** A libvirt domain or status XML file. */
export function redactLibvirtXml(xml: string): Redacted {
  const redaction = new Redaction('&lt;redacted&gt;');
  const stack: string[] = [];
  /** The element path from `<domain>` (a status file's `<domstatus>` above it left out). */
  const where = (): string => (stack[0] === 'domstatus' && stack.length > 1 ? stack.slice(1) : stack).join('/');
  let text = '';
  xmlToken.lastIndex = 0;
  while (xmlToken.lastIndex < xml.length) {
    const start = xmlToken.lastIndex;
    const token = xmlToken.exec(xml);
    if (!token) {
      // Not XML from here on: the parser will not read it either.
      text += redaction.hide();
      break;
    }
    const [whole, closing, opening, attributes = '', selfClosing] = token;
    if (closing !== undefined) {
      stack.pop();
      text += whole;
    } else if (opening !== undefined) {
      stack.push(opening);
      const kept = keptXmlAttributes[where()] ?? [];
      const cleaned = attributes.replace(xmlAttribute, (attribute, space: string, name: string, equals: string, quote: string) =>
        kept.includes(name) || name === 'xmlns' || name.startsWith('xmlns:') ? attribute : `${space}${name}${equals}${quote}${redaction.hide()}${quote}`,
      );
      text += whole.replace(attributes, () => cleaned);
      if (selfClosing) stack.pop();
    } else if (whole.startsWith('<!--')) {
      redaction.hide();
      text += `<!--${redacted}-->`;
    } else if (whole.startsWith('<![CDATA[')) {
      redaction.hide();
      text += `<![CDATA[${redacted}]]>`;
    }
    else if (whole.startsWith('<!DOCTYPE')) redaction.hide();
    else if (whole.startsWith('<?')) text += whole;
    else text += keptXmlText.has(where()) ? whole : redaction.hideText(whole);
    if (xmlToken.lastIndex === start) break;
  }
  return { text, count: redaction.count };
}
