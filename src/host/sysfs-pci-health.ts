import path from 'node:path';
import { isPciAddress } from '../parse/sysfs.js';
import { parseAerCounters, parseResetMethods, parseUnsigned, type AerCounters } from '../parse/pci-health.js';
import { isMissing, readOptionalFile, type FileTree } from './fs.js';

export const aerSeverities = ['correctable', 'nonfatal', 'fatal'] as const;
export type AerSeverity = (typeof aerSeverities)[number];

const rootPortFiles: Record<AerSeverity, string> = {
  correctable: 'aer_rootport_total_err_cor',
  nonfatal: 'aer_rootport_total_err_nonfatal',
  fatal: 'aer_rootport_total_err_fatal',
};

export interface PciHealthRead {
  /** The bridge the device sits behind, undefined on a root bus. */
  parent: string | undefined;
  /** undefined: unknown (a kernel older than 5.15, or one whose release could not be read). */
  resetMethods: string[] | undefined;
  /** Per severity; empty for devices without the AER capability (or AER off). */
  aer: Partial<Record<AerSeverity, AerCounters>>;
  /** Root ports and event collectors: error messages received from below, their own included. */
  aerRootPort: Partial<Record<AerSeverity, number>>;
  sriov: { totalVfs: number; numVfs: number } | undefined;
  /** A virtual function's physical function. */
  physfn: string | undefined;
  /** A physical function's enabled virtual functions (`virtfnN` links). */
  virtfns: { index: number; address: string }[];
}

const optional = async <T>(tree: FileTree, file: string, parse: (text: string) => T): Promise<T | undefined> => {
  const text = await readOptionalFile(tree, file);
  return text === undefined ? undefined : parse(text);
};

/** A sysfs link's target, or undefined when the link does not exist. */
async function optionalLink(tree: FileTree, link: string): Promise<string | undefined> {
  try {
    return await tree.readLink(link);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Basename of the directory a sysfs link points into: the upstream bridge of a bus entry. */
async function parentOf(tree: FileTree, busEntry: string): Promise<string | undefined> {
  const target = await optionalLink(tree, busEntry);
  const parent = target === undefined ? undefined : path.basename(path.dirname(target));
  return parent !== undefined && isPciAddress(parent) ? parent : undefined;
}

const linkBasename = async (tree: FileTree, link: string): Promise<string | undefined> => {
  const target = await optionalLink(tree, link);
  return target === undefined ? undefined : path.basename(target);
};

/**
 * Reads one device's reset methods, AER counters and SR-IOV links. `busEntry` is
 * `/sys/bus/pci/devices/<address>`; `hasResetMethod` says whether the kernel has the attribute at all
 * (undefined: not known).
 */
export async function readPciHealth(tree: FileTree, busEntry: string, hasResetMethod: boolean | undefined): Promise<PciHealthRead> {
  const file = (name: string): string => `${busEntry}/${name}`;
  const resetText = await readOptionalFile(tree, file('reset_method'));
  const resetMethods = resetText !== undefined ? parseResetMethods(resetText) : hasResetMethod ? [] : undefined;
  const aer: PciHealthRead['aer'] = {};
  const aerRootPort: PciHealthRead['aerRootPort'] = {};
  for (const severity of aerSeverities) {
    const counters = await optional(tree, file(`aer_dev_${severity}`), (text) => parseAerCounters(text, `aer_dev_${severity}`));
    if (counters) aer[severity] = counters;
    const received = await optional(tree, file(rootPortFiles[severity]), (text) => parseUnsigned(text, rootPortFiles[severity]));
    if (received !== undefined) aerRootPort[severity] = received;
  }
  const totalVfs = await optional(tree, file('sriov_totalvfs'), (text) => parseUnsigned(text, 'sriov_totalvfs'));
  const numVfs = totalVfs === undefined ? undefined : await optional(tree, file('sriov_numvfs'), (text) => parseUnsigned(text, 'sriov_numvfs'));
  const virtfns: PciHealthRead['virtfns'] = [];
  for (let index = 0; index < (numVfs ?? 0); index++) {
    const address = await linkBasename(tree, file(`virtfn${index}`));
    if (address !== undefined) virtfns.push({ index, address });
  }
  return {
    parent: await parentOf(tree, busEntry),
    resetMethods,
    aer,
    aerRootPort,
    sriov: totalVfs === undefined ? undefined : { totalVfs, numVfs: numVfs ?? 0 },
    physfn: await linkBasename(tree, file('physfn')),
    virtfns,
  };
}
