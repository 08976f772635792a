import path from 'node:path';
import { emptyPciIds, parsePciIds, type PciIds } from '../parse/pciids.js';
import { readOptionalText } from './fs.js';
import { pciIdsCandidates, type HostPaths } from './paths.js';

/** pci.ids is ~1.4 MB. */
const pciIdsLimit = 16 * 1024 * 1024;

/**
 * Loads pci.ids: the `--path.pci-ids` file when given, else the first of the usual places under
 * rootfs and then under `/` (a container may see the host at rootfs but carry its own pci.ids).
 */
export async function loadPciIds(paths: HostPaths): Promise<{ ids: PciIds; file: string | undefined }> {
  const candidates = paths.pciIds
    ? [paths.pciIds]
    : [...new Set([paths.rootfs, '/'].flatMap((root) => pciIdsCandidates.map((file) => path.join(root, file))))];
  for (const file of candidates) {
    const text = await readOptionalText(file, pciIdsLimit);
    if (text !== undefined) return { ids: parsePciIds(text), file };
  }
  if (paths.pciIds) throw new Error(`pci.ids not found at ${paths.pciIds}`);
  return { ids: emptyPciIds(), file: undefined };
}
