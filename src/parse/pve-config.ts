/**
 * Proxmox VE VM configs (`/etc/pve/qemu-server/<vmid>.conf`), after qemu-server's `parse_vm_config`:
 * `key: value` lines, `#` lines are the description, `[PENDING]` holds changes applied at next start,
 * `[special:...]` and `[<snapshot>]` sections follow. Only the lines before the first section are the
 * current config.
 */

export interface PveHostPci {
  /** `hostpci0`... */
  slot: string;
  /** 1-based line number in the file. */
  line: number;
  /** Host ids as written (`0000:00:17.0`, `00:17.0`, `01:00`), lower-cased; several joined by `;` in the file. */
  hostIds: string[];
  /** `mapping=<name>`: a cluster-wide mapping in `/etc/pve/mapping/pci.cfg`, resolved per node. */
  mapping: string | undefined;
}

export interface PveConfigProblem {
  /** 1-based line number in the file. */
  line: number;
  /** The key whose value was rejected; undefined when the line itself is not `key: value`. */
  key: string | undefined;
  message: string;
}

export interface PveVmConfig {
  name: string | undefined;
  /** `template: 1`: qemu-server refuses to start it (`vm_start`), except stripped of all but its disks for a backup. */
  template: boolean;
  /** Guest RAM in MiB: qemu-server's default 512 when `memory:` is absent, undefined when its value is malformed. */
  memoryMiB: number | undefined;
  /** `balloon:` in MiB as written: undefined when absent (device present, floor = memory), 0 = no balloon device. */
  balloonMiB: number | undefined;
  /** A malformed `balloon:` value: the floor is unknown. */
  balloonInvalid: boolean;
  onBoot: boolean;
  /** `hugepages:` as written: `2`, `1024` or `any`. */
  hugepages: string | undefined;
  /** `sockets:` (default 1): without `numa<N>` entries qemu-server splits memory evenly across that many guest nodes. */
  sockets: number;
  /** `memory=` of each `numa<N>:` entry, MiB: a custom guest NUMA topology. */
  numaNodeMemoryMiB: number[];
  hostPci: PveHostPci[];
}

/** `[PENDING]` memory changes: the values that apply at next start, when that section touches them. */
export interface PvePendingMemory {
  memoryMiB: number | undefined;
  balloonMiB: number | undefined;
  /** Keys in the pending `delete:` list (reverting them to their defaults at next start). */
  deleted: string[];
}

export interface ParsedPveConfig {
  current: PveVmConfig;
  /** Undefined when `[PENDING]` does not change memory or balloon. */
  pending: PvePendingMemory | undefined;
  problems: PveConfigProblem[];
}

/** qemu-server's `memory` default (PVE::QemuServer::Memory `$memory_fmt`). */
export const pveDefaultMemoryMiB = 512;
/**
 * The schema sets no maximum, so this is the largest guest x86-64 QEMU can address (52 physical address
 * bits, 4 PiB): anything above is a typo, not a VM, and must not become +Inf or a 400-digit figure.
 */
const pveMaxMemoryMiB = 2 ** 32;
const pveMaxHostPciDevices = 16;
const byteOrderMark = '\uFEFF';

const keyValuePattern = /^([a-z][a-z_-]*\d*):\s*(.+?)\s*$/;
const pendingHeader = /^\[PENDING\]\s*$/i;
const sectionHeader = /^\[[^\]]+\]\s*$/;
/** PVE::QemuServer::PCI `$PCIRE`: optional domain, bus:device, optional function. */
const hostPciIdPattern = /^(?:[0-9a-f]{4,}:)?[0-9a-f]{2}:[0-9a-f]{2}(?:\.[0-7])?$/;

/** Proxmox property strings: `k=v,k=v`, one bare value standing for the default key. */
export function parsePropertyString(value: string, defaultKey: string | undefined): Map<string, string> {
  const properties = new Map<string, string>();
  for (const part of value.split(',')) {
    if (part === '') continue;
    const equals = part.indexOf('=');
    if (equals === -1 && defaultKey === undefined) throw new Error(`${JSON.stringify(part)} is not key=value`);
    const [key, item] = equals === -1 ? [defaultKey!, part] : [part.slice(0, equals), part.slice(equals + 1)];
    if (properties.has(key)) throw new Error(`duplicate key ${JSON.stringify(key)}`);
    properties.set(key, item);
  }
  return properties;
}

/** PVE::QemuServer `check_type` integers (`^\d+$`) within the schema's minimum and the addressable maximum. */
const parseMiB = (text: string, minimum: number): number => {
  if (!/^\d+$/.test(text)) throw new Error(`not a whole number of MiB: ${JSON.stringify(text)}`);
  const value = Number(text);
  if (value < minimum) throw new Error(`${value} is below the minimum ${minimum}`);
  if (value > pveMaxMemoryMiB) throw new Error(`${text.length > 20 ? `${text.slice(0, 20)}… (${text.length} digits)` : text} MiB is more than any VM can address`);
  return value;
};

/** `memory: 16384` or the property form `memory: current=16384` (qemu-server 8.1+). */
export function parsePveMemory(value: string): number {
  const properties = parsePropertyString(value, 'current');
  const current = properties.get('current');
  if (current === undefined) throw new Error(`no current size in ${JSON.stringify(value)}`);
  return parseMiB(current, 16);
}

/** JSON-schema booleans as PVE::JSONSchema accepts them. */
const parsePveBoolean = (value: string): boolean => {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new Error(`not a boolean: ${JSON.stringify(value)}`);
};

export function parsePveHostPci(slot: string, value: string, line = 0): PveHostPci {
  const properties = parsePropertyString(value, 'host');
  const host = properties.get('host');
  const mapping = properties.get('mapping');
  if (host !== undefined && mapping !== undefined) throw new Error("both 'host' and 'mapping' are set");
  if (host === undefined && mapping === undefined) throw new Error("neither 'host' nor 'mapping' is set");
  const hostIds = host === undefined ? [] : host.toLowerCase().split(';');
  for (const id of hostIds) if (!hostPciIdPattern.test(id)) throw new Error(`not a PCI id: ${JSON.stringify(id)}`);
  return { slot, line, hostIds, mapping };
}

interface RawLine {
  line: number;
  key: string;
  value: string;
}

/**
 * Splits the file into the current config's and `[PENDING]`'s `key: value` lines; snapshot and special
 * sections are skipped. `rejected` collects keys whose only lines qemu-server cannot read.
 */
function splitSections(
  text: string,
  problems: PveConfigProblem[],
  rejected: Set<string>,
): { current: RawLine[]; pending: RawLine[] | undefined } {
  const current: RawLine[] = [];
  let pending: RawLine[] | undefined;
  let section: 'current' | 'pending' | 'other' = 'current';
  text.split('\n').forEach((rawLine, index) => {
    let line = rawLine.replace(/\r$/, '');
    if (index === 0 && line.startsWith(byteOrderMark)) {
      // parse_vm_config matches `^([a-z]...)` on the raw bytes: behind a BOM the first line is "unable to parse config".
      line = line.slice(byteOrderMark.length);
      const key = keyValuePattern.exec(line)?.[1];
      if (key !== undefined) rejected.add(key);
      problems.push({ line: 1, key, message: 'UTF-8 byte-order mark before the first line: qemu-server does not read that line' });
      return;
    }
    if (/^\s*$/.test(line)) return;
    if (pendingHeader.test(line)) {
      section = 'pending';
      pending ??= [];
      return;
    }
    if (sectionHeader.test(line)) {
      section = 'other';
      return;
    }
    if (section === 'other' || line.startsWith('#')) return;
    const match = keyValuePattern.exec(line);
    if (!match) {
      problems.push({ line: index + 1, key: undefined, message: `not a "key: value" line: ${JSON.stringify(line.slice(0, 80))}` });
      return;
    }
    (section === 'pending' ? pending! : current).push({ line: index + 1, key: match[1]!, value: match[2]! });
  });
  return { current, pending };
}

/**
 * The current config's values. As in parse_vm_config, a later valid line for a key replaces an earlier
 * one and a rejected line changes nothing; a repeated key is reported, since qemu-server never writes one.
 * A key whose every line was rejected is unknown, not its default.
 */
function readCurrent(lines: RawLine[], problems: PveConfigProblem[], rejected: Set<string>): PveVmConfig {
  const config: PveVmConfig = {
    name: undefined,
    template: false,
    memoryMiB: pveDefaultMemoryMiB,
    balloonMiB: undefined,
    balloonInvalid: false,
    onBoot: false,
    hugepages: undefined,
    sockets: 1,
    numaNodeMemoryMiB: [],
    hostPci: [],
  };
  const numaNodes = new Map<number, number>();
  const hostPci = new Map<string, PveHostPci>();
  const accepted = new Map<string, number>();
  for (const { line, key, value } of lines) {
    try {
      if (key === 'name') config.name = value;
      else if (key === 'template') config.template = parsePveBoolean(value);
      else if (key === 'memory') config.memoryMiB = parsePveMemory(value);
      else if (key === 'balloon') config.balloonMiB = parseMiB(value, 0);
      else if (key === 'onboot') config.onBoot = parsePveBoolean(value);
      else if (key === 'hugepages') {
        if (!/^(2|1024|any)$/.test(value)) throw new Error(`expected 2, 1024 or any, got ${JSON.stringify(value)}`);
        config.hugepages = value;
      } else if (key === 'sockets') {
        if (!/^[1-9]\d{0,2}$/.test(value)) throw new Error(`expected a number of sockets, got ${JSON.stringify(value)}`);
        config.sockets = Number(value);
      }
      else if (/^numa\d+$/.test(key)) {
        // PVE::QemuServer::Memory `config` dies on a custom node without memory.
        const memory = parsePropertyString(value, undefined).get('memory');
        if (memory === undefined) throw new Error('no memory=');
        numaNodes.set(Number(key.slice('numa'.length)), parseMiB(memory, 1));
      } else if (/^hostpci\d+$/.test(key)) {
        // PVE::QemuServer::PCI `$MAX_HOSTPCI_DEVICES`: the schema has hostpci0 to hostpci15 only.
        if (Number(key.slice('hostpci'.length)) >= pveMaxHostPciDevices) throw new Error(`qemu-server reads hostpci0 to hostpci${pveMaxHostPciDevices - 1} only`);
        hostPci.set(key, parsePveHostPci(key, value, line));
      }
      // Every other key (disks, nets, cpu...) is not ours to judge.
      const earlier = accepted.get(key);
      if (earlier !== undefined) problems.push({ line, key, message: `${key}: repeats line ${earlier}, which it replaces` });
      accepted.set(key, line);
      rejected.delete(key);
    } catch (error) {
      if (!accepted.has(key)) rejected.add(key);
      problems.push({ line, key, message: `${key}: ${error instanceof Error ? error.message : String(error)}` });
    }
  }
  // A rejected value is unknown, not absent: absent memory would read as the 512 MiB default.
  if (rejected.has('memory')) config.memoryMiB = undefined;
  if (rejected.has('balloon')) config.balloonInvalid = true;
  if (config.balloonMiB !== undefined && config.memoryMiB !== undefined && config.balloonMiB > config.memoryMiB) {
    // PVE::API2::Qemu refuses it ("balloon value too large"): the floor is unknown.
    config.balloonInvalid = true;
    problems.push({ line: accepted.get('balloon') ?? 0, key: 'balloon', message: `balloon: ${config.balloonMiB} MiB is more than memory (${config.memoryMiB} MiB)` });
  }
  config.numaNodeMemoryMiB = [...numaNodes].sort(([a], [b]) => a - b).map(([, mib]) => mib);
  config.hostPci = [...hostPci.values()].sort((a, b) => Number(a.slot.slice('hostpci'.length)) - Number(b.slot.slice('hostpci'.length)));
  return config;
}

function readPending(lines: RawLine[], problems: PveConfigProblem[]): PvePendingMemory | undefined {
  const pending: PvePendingMemory = { memoryMiB: undefined, balloonMiB: undefined, deleted: [] };
  let touched = false;
  for (const { line, key, value } of lines) {
    try {
      if (key === 'memory') {
        touched = true;
        pending.memoryMiB = parsePveMemory(value);
      } else if (key === 'balloon') {
        touched = true;
        pending.balloonMiB = parseMiB(value, 0);
      } else if (key === 'delete') {
        // `!key` forces the deletion; the key is what matters here.
        pending.deleted = value.split(',').map((item) => item.replace(/^!/, ''));
        if (pending.deleted.some((item) => item === 'memory' || item === 'balloon')) touched = true;
      }
    } catch (error) {
      problems.push({ line, key, message: `[PENDING] ${key}: ${error instanceof Error ? error.message : String(error)}` });
    }
  }
  return touched ? pending : undefined;
}

export function parsePveConfig(text: string): ParsedPveConfig {
  const problems: PveConfigProblem[] = [];
  const rejected = new Set<string>();
  const sections = splitSections(text, problems, rejected);
  const current = readCurrent(sections.current, problems, rejected);
  const pending = sections.pending === undefined ? undefined : readPending(sections.pending, problems);
  problems.sort((a, b) => a.line - b.line);
  return { current, pending, problems };
}

/** Memory and balloon floor that apply at next start, given the current config and `[PENDING]`. */
export function pendingMemoryAtNextStart(
  current: PveVmConfig,
  pending: PvePendingMemory,
): { memoryMiB: number | undefined; balloonMiB: number | undefined } {
  const memoryMiB = pending.deleted.includes('memory') ? pveDefaultMemoryMiB : (pending.memoryMiB ?? current.memoryMiB);
  const balloonMiB = pending.deleted.includes('balloon') ? undefined : (pending.balloonMiB ?? current.balloonMiB);
  return { memoryMiB, balloonMiB };
}

/**
 * Full addresses a `hostpci` id stands for. A full or short address with a function names one device
 * (domain `0000` when left out); one without a function (`01:00`) names every function of that device
 * present in sysfs, as PVE::SysFSTools::lspci matches it by prefix. When none is present, function 0
 * stands for the device so the assignment stays visible.
 */
export function expandHostPciId(id: string, presentAddresses: readonly string[]): string[] {
  const full = /^[0-9a-f]{2}:/.test(id) ? `0000:${id}` : id;
  if (/\.[0-7]$/.test(full)) return [full];
  const functions = presentAddresses.filter((address) => address.startsWith(`${full}.`)).sort();
  return functions.length > 0 ? functions : [`${full}.0`];
}
