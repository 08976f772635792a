import path from 'node:path';
import { isPciAddress } from '../parse/sysfs.js';
import { parseAerCounters, parseResetMethods, parseUnsigned, type AerCounters } from '../parse/pci-health.js';
import { isMissing, type FileTree } from './fs.js';
import type { PciDeviceInstance } from './pci-bus.js';

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

/** What the kernel fixes for a device instance bound to a driver; read once per instance (PciDeviceInstance). */
interface FixedHealth {
  parent: string | undefined;
  physfn: string | undefined;
  /** A driver may lower TotalVFs when it binds (pci_sriov_set_totalvfs): fixed per instance, which a rebind renews. */
  totalVfs: number | undefined;
}

const fixedByInstance = new WeakMap<PciDeviceInstance, FixedHealth>();

const linkBasename = async (tree: FileTree, link: string): Promise<string | undefined> => {
  try {
    return path.basename(await tree.readLink(link));
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
};

async function readFixedHealth(tree: FileTree, { dir, attributes }: PciDeviceInstance): Promise<FixedHealth> {
  // The directory's parent is the upstream bridge's, or the root bus (`pci0000:00`).
  const parent = path.basename(path.dirname(dir));
  const optionalNumber = async (name: string): Promise<number | undefined> => (attributes.has(name) ? parseUnsigned(await tree.read(`${dir}/${name}`), name) : undefined);
  return {
    parent: isPciAddress(parent) ? parent : undefined,
    physfn: attributes.has('physfn') ? await linkBasename(tree, `${dir}/physfn`) : undefined,
    totalVfs: await optionalNumber('sriov_totalvfs'),
  };
}

/** A physical function's VFs as last read in full, for the sriov_numvfs they were read at. */
const virtfnsByInstance = new WeakMap<PciDeviceInstance, { numVfs: number; virtfns: PciHealthRead['virtfns'] }>();

/**
 * The `virtfnN` links, which come and go with sriov_numvfs after the directory was listed. Each VF's routing
 * id follows from the PF's First VF Offset and VF Stride, which depend only on NumVFs (drivers/pci/iov.c,
 * pci_iov_virtfn_bus/devfn and compute_max_vf_buses): for an unchanged count the links read as before.
 */
async function readVirtfns(tree: FileTree, instance: PciDeviceInstance, numVfs: number): Promise<PciHealthRead['virtfns']> {
  const known = virtfnsByInstance.get(instance);
  if (known?.numVfs === numVfs) return known.virtfns;
  const virtfns: PciHealthRead['virtfns'] = [];
  for (let index = 0; index < numVfs; index++) {
    const address = await linkBasename(tree, `${instance.dir}/virtfn${index}`);
    if (address !== undefined) virtfns.push({ index, address });
  }
  // Links still being made (VFs enabled mid-read) are read again next time.
  if (virtfns.length === numVfs) virtfnsByInstance.set(instance, { numVfs, virtfns });
  return virtfns;
}

/**
 * Reads one device's reset methods, AER counters and SR-IOV links: only the attributes the device has
 * (a missing attribute costs an exception per read). `hasResetMethod` says whether the kernel has the
 * attribute at all (undefined: not known).
 */
export async function readPciHealth(tree: FileTree, instance: PciDeviceInstance, hasResetMethod: boolean | undefined): Promise<PciHealthRead> {
  const { dir, attributes } = instance;
  const read = async <T>(name: string, parse: (text: string, name: string) => T): Promise<T | undefined> =>
    attributes.has(name) ? parse(await tree.read(`${dir}/${name}`), name) : undefined;
  let fixed = fixedByInstance.get(instance);
  if (fixed === undefined) {
    fixed = await readFixedHealth(tree, instance);
    fixedByInstance.set(instance, fixed);
  }
  const resetText = await read('reset_method', (text) => text);
  const resetMethods = resetText !== undefined ? parseResetMethods(resetText) : hasResetMethod ? [] : undefined;
  const aer: PciHealthRead['aer'] = {};
  const aerRootPort: PciHealthRead['aerRootPort'] = {};
  for (const severity of aerSeverities) {
    const counters = await read(`aer_dev_${severity}`, parseAerCounters);
    if (counters) aer[severity] = counters;
    const received = await read(rootPortFiles[severity], parseUnsigned);
    if (received !== undefined) aerRootPort[severity] = received;
  }
  const { totalVfs } = fixed;
  const numVfs = totalVfs === undefined ? undefined : await read('sriov_numvfs', parseUnsigned);
  return {
    parent: fixed.parent,
    resetMethods,
    aer,
    aerRootPort,
    sriov: totalVfs === undefined ? undefined : { totalVfs, numVfs: numVfs ?? 0 },
    physfn: fixed.physfn,
    virtfns: await readVirtfns(tree, instance, numVfs ?? 0),
  };
}
