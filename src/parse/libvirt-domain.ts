import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { HugepageGuestNode } from './hugepages.js';

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
  /** `<os><type arch>`; undefined when the XML names none (libvirt then takes the host's). */
  arch: string | undefined;
  /** A balloon device QEMU gets: a `<memballoon>` other than `model='none'`, or the one libvirt adds for this arch. */
  balloonEnabled: boolean;
  /**
   * `<memoryBacking><hugepages>`: `default` (the host's default size) or the distinct `<page size>`s in bytes,
   * largest first. Undefined without hugepages, and when every page is the 4 KiB base page (ordinary memory).
   */
  hugepages: 'default' | number[] | undefined;
  /** Guest RAM per guest NUMA node (`<cpu><numa><cell>`, one node without cells) on hugepages, with its page size. */
  hugepageNodes: HugepageGuestNode[] | undefined;
  /**
   * Host PCI devices QEMU gets, full addresses, in XML order: `<hostdev mode='subsystem' type='pci'>` (not those with
   * a guest `<address type='unassigned'/>`), `<interface type='hostdev'>`, and any interface whose live `<actual
   * type='hostdev'>` names a VF from a hostdev network pool.
   */
  hostdevs: string[];
}

export interface LibvirtStatus {
  /** `<domstatus pid='...'>`. */
  pid: number | undefined;
  domain: LibvirtDomain;
}

type XmlNode = Record<string, unknown>;

const repeated = new Set(['hostdev', 'interface', 'page', 'cell']);
const parserOptions = { ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, parseAttributeValue: false } as const;
const parser = new XMLParser({ ...parserOptions, isArray: (tagName) => repeated.has(tagName) });
/** The same document with its element order kept, to number hostdevs and interfaces as they appear. */
const orderedParser = new XMLParser({ ...parserOptions, preserveOrder: true });

/**
 * Architectures whose guests libvirt gives a virtio balloon when `<memballoon>` is absent
 * (src/qemu/qemu_domain.c `qemuDomainDefAddDefaultDevices`, `addDefaultMemballoon`); x86 only outside
 * the `isapc` and `microvm` machines. ARM, RISC-V, LoongArch, 32-bit SPARC and the rest get none.
 */
const defaultBalloonArches = new Set(['i686', 'x86_64', 'ppc64', 'ppc64le', 'alpha', 'ppc', 'ppcemb', 'sh4', 'sh4eb', 's390', 's390x', 'sparc64', 'mips', 'mipsel', 'mips64', 'mips64el']);
/** The base page: a `<page>` of this size is ordinary memory, not a hugepage (x86-64 hosts). */
const basePageBytes = 4096;

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

/** Whether libvirt hands QEMU a balloon: an explicit `<memballoon>` decides, else the arch and machine (see `defaultBalloonArches`). */
function hasBalloon(balloon: XmlNode | undefined, arch: string | undefined, machine: string | undefined): boolean {
  if (balloon !== undefined) return attribute(balloon, 'model') !== 'none';
  // No arch in the XML: libvirt takes the host's, and this exporter runs on x86-64 hosts.
  if (arch === undefined) return true;
  if ((arch === 'x86_64' || arch === 'i686') && (machine === 'isapc' || machine === 'microvm')) return false;
  return defaultBalloonArches.has(arch);
}

/**
 * Hugepage sizes backing guest RAM (src/conf/domain_conf.c `virDomainHugepagesParseXML`; a `<page>` may name
 * `nodeset` NUMA nodes, so sizes can differ per node). Pages of the base size are ordinary memory.
 */
function hugepageSizes(hugepagesNode: XmlNode | undefined): LibvirtDomain['hugepages'] {
  if (hugepagesNode === undefined) return undefined;
  const pages = asNodes(hugepagesNode['page']);
  if (pages.length === 0) return 'default';
  const sizes = pages.map((page) => {
    const size = attribute(page, 'size');
    if (size === undefined) throw new Error('<page> has no size');
    return libvirtBytes(size, attribute(page, 'unit'));
  });
  const huge = [...new Set(sizes.filter((size) => size !== basePageBytes))].sort((a, b) => b - a);
  return huge.length === 0 ? undefined : huge;
}

/** libvirt's nodeset syntax (virBitmapParse): `0-2,5,^1`. */
function parseNodeset(value: string): Set<number> {
  const nodes = new Set<number>();
  for (const part of value.split(',').map((item) => item.trim())) {
    const match = /^(\^)?(\d+)(?:-(\d+))?$/.exec(part);
    if (!match) throw new Error(`bad nodeset ${JSON.stringify(value)}`);
    for (let node = Number(match[2]); node <= Number(match[3] ?? match[2]); node++) {
      if (match[1]) nodes.delete(node);
      else nodes.add(node);
    }
  }
  return nodes;
}

/**
 * The page size of each guest NUMA node, as src/qemu/qemu_command.c `qemuBuildMemoryBackendProps` picks it: the
 * `<page>` whose nodeset holds the node, else the `<page>` without nodeset, else none (ordinary memory); no
 * `<page>` at all is the host's default size. Nodes on the base page are ordinary memory and left out.
 */
function hugepageNodes(hugepagesNode: XmlNode | undefined, cpu: XmlNode | undefined, memoryBytes: number | undefined): LibvirtDomain['hugepageNodes'] {
  if (hugepagesNode === undefined) return undefined;
  const cells = asNodes(asNode(cpu?.['numa'])?.['cell']).map((cell, index) => {
    const memory = attribute(cell, 'memory');
    if (memory === undefined) throw new Error('<cell> has no memory');
    return { id: Number(attribute(cell, 'id') ?? index), memoryBytes: libvirtBytes(memory, attribute(cell, 'unit')) };
  });
  const guestNodes = cells.length > 0 ? cells : memoryBytes === undefined ? [] : [{ id: 0, memoryBytes }];
  const pages = asNodes(hugepagesNode['page']).map((page) => {
    const nodeset = attribute(page, 'nodeset');
    return { bytes: libvirtBytes(attribute(page, 'size') ?? '', attribute(page, 'unit')), nodes: nodeset === undefined ? undefined : parseNodeset(nodeset) };
  });
  const nodes = guestNodes.flatMap(({ id, memoryBytes: bytes }): HugepageGuestNode[] => {
    if (pages.length === 0) return [{ memoryBytes: bytes, page: 'default' }];
    const page = pages.find((each) => each.nodes?.has(id)) ?? pages.find((each) => each.nodes === undefined);
    return page === undefined || page.bytes === basePageBytes ? [] : [{ memoryBytes: bytes, page: page.bytes }];
  });
  return nodes.length === 0 ? undefined : nodes;
}

/**
 * A `<hostdev>` QEMU gets: a PCI subsystem device not parked with `<address type='unassigned'/>`, which libvirt
 * never exposes to QEMU (src/qemu/qemu_command.c `qemuBuildHostdevCommandLine`, qemu_hotplug.c likewise).
 */
const assignedPciHostdev = (hostdev: XmlNode): boolean =>
  attribute(hostdev, 'mode') === 'subsystem' &&
  attribute(hostdev, 'type') === 'pci' &&
  attribute(asNode(hostdev['address']), 'type') !== 'unassigned';

/**
 * The host PCI address behind an interface: `type='hostdev'` names it in `<source>`; a `type='network'` interface
 * on a hostdev pool gets its VF at start, which the status XML records as `<actual type='hostdev'><source>`
 * (domain_conf.c `virDomainActualNetDefFormat`). Undefined for every other interface.
 */
function interfaceHostAddress(iface: XmlNode): string | undefined {
  const actual = asNode(iface['actual']);
  const hostdev = attribute(iface, 'type') === 'hostdev' ? iface : attribute(actual, 'type') === 'hostdev' ? actual : undefined;
  return hostdev === undefined ? undefined : pciAddress(asNode(asNode(hostdev['source'])?.['address']));
}

function readDomain(domain: XmlNode, deviceOrder: string[]): LibvirtDomain {
  const name = text(domain['name']);
  if (!name) throw new Error('domain has no <name>');
  const memoryBytes = sizeElement(domain['memory']);
  const devices = asNode(domain['devices']) ?? {};
  const osType = asNode(asNode(domain['os'])?.['type']);
  const arch = attribute(osType, 'arch');
  const queues: Record<string, (string | undefined)[]> = {
    hostdev: asNodes(devices['hostdev']).map((hostdev) => (assignedPciHostdev(hostdev) ? pciAddress(asNode(asNode(hostdev['source'])?.['address'])) : undefined)),
    interface: asNodes(devices['interface']).map(interfaceHostAddress),
  };
  const hostdevs = deviceOrder.map((tag) => queues[tag]?.shift()).filter((address) => address !== undefined);
  return {
    name,
    memoryBytes,
    currentMemoryBytes: sizeElement(domain['currentMemory']) ?? memoryBytes,
    arch,
    balloonEnabled: hasBalloon(asNode(devices['memballoon']), arch, attribute(osType, 'machine')),
    hugepages: hugepageSizes(asNode(asNode(domain['memoryBacking'])?.['hugepages'])),
    hugepageNodes: hugepageNodes(asNode(asNode(domain['memoryBacking'])?.['hugepages']), asNode(domain['cpu']), memoryBytes),
    hostdevs,
  };
}

type OrderedNode = Record<string, unknown>;
const orderedChildren = (nodes: unknown, tag: string): unknown =>
  Array.isArray(nodes) ? (nodes as OrderedNode[]).find((node) => tag in node)?.[tag] : undefined;

/** Tag names of `<devices>` children in document order, from the order-keeping parse; `path` leads to `<domain>`. */
function deviceTagOrder(xml: string, path: string[]): string[] {
  let nodes: unknown = orderedParser.parse(xml);
  for (const tag of [...path, 'devices']) nodes = orderedChildren(nodes, tag);
  return Array.isArray(nodes) ? (nodes as OrderedNode[]).flatMap((node) => Object.keys(node).filter((key) => key === 'hostdev' || key === 'interface')) : [];
}

function parseXml(xml: string): XmlNode {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`invalid XML at line ${valid.err.line}: ${valid.err.msg}`);
  return parser.parse(xml) as XmlNode;
}

export function parseLibvirtDomain(xml: string): LibvirtDomain {
  const domain = asNode(parseXml(xml)['domain']);
  if (!domain) throw new Error('no <domain> element');
  return readDomain(domain, deviceTagOrder(xml, ['domain']));
}

export function parseLibvirtStatus(xml: string): LibvirtStatus {
  const status = asNode(parseXml(xml)['domstatus']);
  if (!status) throw new Error('no <domstatus> element');
  const domain = asNode(status['domain']);
  if (!domain) throw new Error('no <domain> element in <domstatus>');
  const pidText = attribute(status, 'pid');
  const pid = pidText !== undefined && /^\d+$/.test(pidText) ? Number(pidText) : undefined;
  return { pid, domain: readDomain(domain, deviceTagOrder(xml, ['domstatus', 'domain'])) };
}
