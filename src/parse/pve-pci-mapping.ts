import { parsePropertyString } from './pve-config.js';

/**
 * Cluster-wide PCI mappings, `/etc/pve/mapping/pci.cfg` (PVE::Mapping::PCI, a section config whose
 * header is the bare mapping id):
 *
 *   gpu
 *   	map id=10de:2204,iommugroup=1,node=pve1,path=0000:01:00,subsystem-id=1458:403b
 *   	map id=10de:2204,node=pve2,path=0000:0b:00
 *
 * Each `map` line is one node's device; `path` may list several ids joined by `;`.
 */

export interface PciMapEntry {
  node: string;
  /** PCI ids as written, lower-cased; an id without a function stands for the whole device. */
  paths: string[];
}

export interface ParsedPciMappings {
  mappings: Map<string, PciMapEntry[]>;
  problems: { line: number; message: string }[];
}

export function parsePciMappingConfig(text: string): ParsedPciMappings {
  const mappings = new Map<string, PciMapEntry[]>();
  const problems: ParsedPciMappings['problems'] = [];
  let entries: PciMapEntry[] | undefined;
  text.split('\n').forEach((rawLine, index) => {
    const line = rawLine.replace(/\r$/, '');
    if (/^\s*(#.*)?$/.test(line)) return;
    const header = /^(\S+)\s*$/.exec(line);
    if (header) {
      entries = [];
      mappings.set(header[1]!, entries);
      return;
    }
    const property = /^\s+(\S+)\s+(.*\S)\s*$/.exec(line);
    if (!property || entries === undefined) {
      problems.push({ line: index + 1, message: `not a section header or property: ${JSON.stringify(line.slice(0, 80))}` });
      return;
    }
    if (property[1] !== 'map') return;
    try {
      const map = parsePropertyString(property[2]!, undefined);
      const node = map.get('node');
      const path = map.get('path');
      if (node === undefined || path === undefined) throw new Error('map needs node= and path=');
      entries.push({ node, paths: path.toLowerCase().split(';') });
    } catch (error) {
      problems.push({ line: index + 1, message: error instanceof Error ? error.message : String(error) });
    }
  });
  return { mappings, problems };
}

/**
 * This node's alternatives for a mapping, in file order, each the ids of one `map` line
 * (PVE::Mapping::PCI `find_on_current_node`). Undefined when the mapping or this node's entry is missing.
 */
export function mappedPciAlternatives(mappings: ParsedPciMappings['mappings'], name: string, node: string): string[][] | undefined {
  const alternatives = mappings.get(name)?.filter((entry) => entry.node === node).map((entry) => entry.paths);
  return alternatives === undefined || alternatives.length === 0 ? undefined : alternatives;
}
