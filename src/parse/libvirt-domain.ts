import { XMLParser, XMLValidator } from 'fast-xml-parser';

/**
 * libvirt domain XML: defined domains (`/etc/libvirt/qemu/<name>.xml`) and the status XML of running ones
 * (`/run/libvirt/qemu/<name>.xml`, `<domstatus pid='...'>` wrapping the live `<domain>`).
 * Element and unit semantics: https://libvirt.org/formatdomain.html
 */

export interface LibvirtDomain {
  name: string;
  /** `<memory>`: guest RAM at boot, bytes. */
  memoryBytes: number | undefined;
  /** `<currentMemory>`: the balloon target, bytes (equals `<memory>` when absent). */
  currentMemoryBytes: number | undefined;
  /** False when `<memballoon model='none'>`; libvirt adds a virtio balloon to QEMU guests by default. */
  balloonEnabled: boolean;
  /** `<memoryBacking><hugepages/>`: `default` (the host's default size) or the `<page size>` in bytes. */
  hugepages: 'default' | number | undefined;
  /** `<hostdev mode='subsystem' type='pci'>` and `<interface type='hostdev'>` sources, full addresses, in order. */
  hostdevs: string[];
}

export interface LibvirtStatus {
  /** `<domstatus pid='...'>`. */
  pid: number | undefined;
  domain: LibvirtDomain;
}

type XmlNode = Record<string, unknown>;

const repeated = new Set(['hostdev', 'interface', 'page']);
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (tagName) => repeated.has(tagName),
});

/** libvirt's units: `b`/`bytes`, `KB`/`MB`/`GB`/`TB` (powers of 1000), `k`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB`; default KiB. */
const unitBytes: Record<string, number> = {
  b: 1,
  bytes: 1,
  kb: 1e3,
  k: 1024,
  kib: 1024,
  mb: 1e6,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1e9,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  tb: 1e12,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

export function libvirtBytes(value: string, unit: string | undefined): number {
  const multiplier = unitBytes[(unit ?? 'KiB').toLowerCase()];
  if (multiplier === undefined) throw new Error(`unknown unit ${JSON.stringify(unit)}`);
  if (!/^\d+$/.test(value.trim())) throw new Error(`not a whole number: ${JSON.stringify(value)}`);
  return Number(value.trim()) * multiplier;
}

const asNode = (value: unknown): XmlNode | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as XmlNode) : value === '' ? {} : undefined;
const asNodes = (value: unknown): XmlNode[] => (Array.isArray(value) ? value.map(asNode).filter((node) => node !== undefined) : []);
const text = (value: unknown): string | undefined => {
  if (typeof value === 'string') return value;
  const node = asNode(value);
  const inner = node?.['#text'];
  return typeof inner === 'string' ? inner : undefined;
};
const attribute = (node: XmlNode | undefined, name: string): string | undefined => {
  const value = node?.[`@_${name}`];
  return typeof value === 'string' ? value : undefined;
};

const sizeElement = (value: unknown): number | undefined => {
  const content = text(value);
  return content === undefined ? undefined : libvirtBytes(content, attribute(asNode(value), 'unit'));
};

/** `<address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>` → `0000:01:00.0`. */
function pciAddress(address: XmlNode | undefined): string | undefined {
  if (address === undefined) return undefined;
  const field = (name: string, digits: number): string | undefined => {
    const value = attribute(address, name);
    if (value === undefined) return undefined;
    const number = Number(value);
    return Number.isInteger(number) && number >= 0 ? number.toString(16).padStart(digits, '0') : undefined;
  };
  const [domain, bus, slot, fn] = [field('domain', 4) ?? '0000', field('bus', 2), field('slot', 2), field('function', 1)];
  return bus && slot && fn ? `${domain}:${bus}:${slot}.${fn}` : undefined;
}

function readDomain(domain: XmlNode): LibvirtDomain {
  const name = text(domain['name']);
  if (!name) throw new Error('domain has no <name>');
  const memoryBytes = sizeElement(domain['memory']);
  const devices = asNode(domain['devices']) ?? {};
  const balloon = asNode(devices['memballoon']);
  const hugepagesNode = asNode(asNode(domain['memoryBacking'])?.['hugepages']);
  const page = asNodes(hugepagesNode?.['page'])[0];
  const pageSize = attribute(page, 'size');
  const hostdevs = [
    ...asNodes(devices['hostdev'])
      .filter((hostdev) => attribute(hostdev, 'mode') === 'subsystem' && attribute(hostdev, 'type') === 'pci')
      .map((hostdev) => pciAddress(asNode(asNode(hostdev['source'])?.['address']))),
    ...asNodes(devices['interface'])
      .filter((iface) => attribute(iface, 'type') === 'hostdev')
      .map((iface) => pciAddress(asNode(asNode(iface['source'])?.['address']))),
  ].filter((address) => address !== undefined);
  return {
    name,
    memoryBytes,
    currentMemoryBytes: sizeElement(domain['currentMemory']) ?? memoryBytes,
    balloonEnabled: attribute(balloon, 'model') !== 'none',
    hugepages: hugepagesNode === undefined ? undefined : pageSize === undefined ? 'default' : libvirtBytes(pageSize, attribute(page, 'unit')),
    hostdevs,
  };
}

function parseXml(xml: string): XmlNode {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`invalid XML at line ${valid.err.line}: ${valid.err.msg}`);
  return parser.parse(xml) as XmlNode;
}

export function parseLibvirtDomain(xml: string): LibvirtDomain {
  const domain = asNode(parseXml(xml)['domain']);
  if (!domain) throw new Error('no <domain> element');
  return readDomain(domain);
}

export function parseLibvirtStatus(xml: string): LibvirtStatus {
  const status = asNode(parseXml(xml)['domstatus']);
  if (!status) throw new Error('no <domstatus> element');
  const domain = asNode(status['domain']);
  if (!domain) throw new Error('no <domain> element in <domstatus>');
  const pidText = attribute(status, 'pid');
  const pid = pidText !== undefined && /^\d+$/.test(pidText) ? Number(pidText) : undefined;
  return { pid, domain: readDomain(domain) };
}
