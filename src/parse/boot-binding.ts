/**
 * Pure parsers for what decides which driver claims a PCI device at boot: the kernel's modules.alias, the
 * kernel command line, modprobe.d configuration and initramfs-tools' module list.
 */

/** Module names are the same with `-` or `_` (kmod's modname_normalize): `vfio-pci` is `vfio_pci`. */
export const normaliseModule = (name: string): string => name.replace(/-/g, '_');

export interface ModuleAlias {
  pattern: RegExp;
  module: string;
}

/**
 * An fnmatch(3) pattern (no flags) as a regular expression: `*`, `?`, bracket expressions with `!` or `^`
 * negation; everything else literal. libkmod matches a device's modalias against modules.alias this way
 * (libkmod/libkmod-index.c, index_searchwild → fnmatch).
 */
export function fnmatchPattern(glob: string): RegExp {
  let source = '';
  for (let index = 0; index < glob.length; index++) {
    const char = glob[index]!;
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else if (char === '[') {
      const end = glob.indexOf(']', index + 2);
      if (end === -1) {
        source += '\\[';
        continue;
      }
      let body = glob.slice(index + 1, end);
      const negated = body.startsWith('!') || body.startsWith('^');
      if (negated) body = body.slice(1);
      source += `[${negated ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      index = end;
    } else source += char.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

/** The `alias pci:… <module>` lines of modules.alias (depmod's output); other buses are left out. */
export function parsePciAliases(text: string): ModuleAlias[] {
  const aliases: ModuleAlias[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('alias pci:')) continue;
    const [, pattern, module] = line.trim().split(/\s+/);
    if (pattern === undefined || module === undefined) continue;
    aliases.push({ pattern: fnmatchPattern(pattern), module: normaliseModule(module) });
  }
  return aliases;
}

/** Modules whose aliases match a modalias, in modules.alias order, each once: lspci -k's "Kernel modules". */
export function modulesForModalias(aliases: readonly ModuleAlias[], modalias: string): string[] {
  const modules: string[] = [];
  for (const { pattern, module } of aliases) if (!modules.includes(module) && pattern.test(modalias)) modules.push(module);
  return modules;
}

/** One `vfio-pci ids=` entry: `vendor:device[:subvendor[:subdevice[:class[:class_mask]]]]`, hex, absent fields match any. */
export interface VfioPciId {
  text: string;
  vendor: number;
  device: number;
  subvendor: number | undefined;
  subdevice: number | undefined;
  classId: number;
  classMask: number;
}

/**
 * The `ids` parameter of vfio-pci, comma-separated (drivers/vfio/pci/vfio_pci.c, vfio_pci_fill_ids: sscanf
 * "%x:%x:%x:%x:%x:%x" with PCI_ANY_ID for missing ids, class and mask 0). An entry that does not parse is
 * skipped, as the kernel skips it with a warning.
 */
export function parseVfioPciIds(value: string): VfioPciId[] {
  const ids: VfioPciId[] = [];
  for (const text of value.split(',')) {
    const fields = text.trim().split(':');
    if (fields.length < 2 || fields.length > 6 || !fields.every((field) => /^(0x)?[0-9a-fA-F]{1,8}$/.test(field))) continue;
    const [vendor, device, subvendor, subdevice, classId, classMask] = fields.map((field) => parseInt(field, 16));
    ids.push({ text: text.trim(), vendor: vendor!, device: device!, subvendor, subdevice, classId: classId ?? 0, classMask: classMask ?? 0 });
  }
  return ids;
}

const anyId = 0xffffffff;

/** Whether a vfio-pci id covers a device, as pci_match_one_device compares a pci_device_id. */
export function vfioIdMatches(id: VfioPciId, device: PciIds): boolean {
  const field = (want: number | undefined, have: number): boolean => want === undefined || want === anyId || want === have;
  return (
    field(id.vendor, device.vendor) &&
    field(id.device, device.device) &&
    field(id.subvendor, device.subvendor) &&
    field(id.subdevice, device.subdevice) &&
    ((id.classId ^ device.classId) & id.classMask) === 0
  );
}

/** `vfio-pci.ids=` (also `vfio_pci.ids=`) on the kernel command line; the last one wins, as for any module parameter. */
export function cmdlineVfioIds(cmdline: string): string | undefined {
  let ids: string | undefined;
  for (const word of cmdline.trim().split(/\s+/)) {
    const match = /^vfio[-_]pci\.ids=(.*)$/.exec(word);
    if (match) ids = match[1]!.replace(/^"|"$/g, '');
  }
  return ids;
}

export interface ModprobeDirective {
  file: string;
  line: number;
  text: string;
}

export interface ModprobeConfig {
  /** `options vfio-pci ids=…`, with where each came from. */
  vfioIds: (ModprobeDirective & { ids: string })[];
  /** `softdep <module> pre: … vfio-pci …`: modules that load only after vfio-pci. */
  softdepAfterVfio: Map<string, ModprobeDirective>;
  /** `blacklist <module>`: modules no alias loads. */
  blacklisted: Map<string, ModprobeDirective>;
}

export const emptyModprobeConfig = (): ModprobeConfig => ({ vfioIds: [], softdepAfterVfio: new Map(), blacklisted: new Map() });

/**
 * Adds one modprobe.d file to `config` (man modprobe.d; kmod's libkmod-config.c, kmod_config_parse): `#`
 * comments, a trailing `\` joins the next line, words separated by blanks.
 */
export function addModprobeFile(config: ModprobeConfig, file: string, text: string): void {
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    let line = lines[index]!;
    while (line.endsWith('\\') && index + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++index]!;
    const words = line.trim().split(/\s+/);
    if (words[0] === undefined || words[0] === '' || words[0].startsWith('#')) continue;
    const directive = { file, line: lineNumber, text: line.trim() };
    const [command, module] = words;
    if (module === undefined) continue;
    const name = normaliseModule(module);
    if (command === 'options' && name === 'vfio_pci') {
      for (const option of words.slice(2)) {
        const ids = /^ids=(.*)$/.exec(option)?.[1];
        if (ids !== undefined) config.vfioIds.push({ ...directive, ids: ids.replace(/^"|"$/g, '') });
      }
    } else if (command === 'softdep') {
      const pre: string[] = [];
      let section: string | undefined;
      for (const word of words.slice(2)) {
        if (word === 'pre:' || word === 'post:') section = word;
        else if (section === 'pre:') pre.push(normaliseModule(word));
      }
      if (pre.includes('vfio_pci')) config.softdepAfterVfio.set(name, directive);
    } else if (command === 'blacklist') config.blacklisted.set(name, directive);
  }
}

/** Module names listed in initramfs-tools' `/etc/initramfs-tools/modules` (one per line, arguments after it, `#` comments). */
export function parseInitramfsModules(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((word) => word !== '' && !word.startsWith('#'))
    .map(normaliseModule);
}

export interface PciIds {
  vendor: number;
  device: number;
  subvendor: number;
  subdevice: number;
  classId: number;
}

/** The ids in a PCI device's modalias, `pci:v00008086d0000A352sv000015D9sd00001B0Ebc01sc06i01` (drivers/pci/pci-sysfs.c, modalias_show). */
export function parseModalias(text: string): PciIds {
  const match = /^pci:v([0-9A-F]{8})d([0-9A-F]{8})sv([0-9A-F]{8})sd([0-9A-F]{8})bc([0-9A-F]{2})sc([0-9A-F]{2})i([0-9A-F]{2})$/.exec(text.trim());
  if (!match) throw new Error(`modalias: not a PCI modalias: ${JSON.stringify(text.trim().slice(0, 80))}`);
  const [vendor, device, subvendor, subdevice, base, sub, prog] = match.slice(1).map((hex) => parseInt(hex, 16)) as [number, number, number, number, number, number, number];
  return { vendor, device, subvendor, subdevice, classId: (base << 16) | (sub << 8) | prog };
}
