/** Pure parsers for the PCI attributes that say whether a device survives a VM's life: reset, AER, SR-IOV. */
import { kernelAtLeast } from './kernel-release.js';

/**
 * `reset_method`: the methods the kernel will try, in order, separated by spaces (`flr bus`); empty once
 * a user wrote an empty string to disable them all (drivers/pci/pci.c, reset_method_show/_store).
 */
export function parseResetMethods(text: string): string[] {
  const methods = text.trim().split(/\s+/).filter(Boolean);
  for (const method of methods) if (!/^[a-z_]+$/.test(method)) throw new Error(`reset_method: not a method name: ${JSON.stringify(method.slice(0, 40))}`);
  return methods;
}

/**
 * Whether the kernel has `reset_method` (5.15+), from a release string such as `6.8.12-4-pve`. On such
 * a kernel the attribute is hidden on a device with no reset method at all (pci_dev_reset_method_attr_is_visible
 * → pci_reset_supported), so its absence means "none"; on an older or unknown kernel it means "unknown".
 */
export const kernelHasResetMethod = (release: string): boolean | undefined => kernelAtLeast(release, 5, 15);

export interface AerCounters {
  /** Per error kind, in the kernel's order: `RxErr`, `BadTLP`… or `dev_cor_errs_bit[N]` for a bit without a name. */
  errors: { error: string; count: number }[];
  /** The `TOTAL_ERR_*` line: error messages (ERR_COR, ERR_NONFATAL, ERR_FATAL) the device sent. */
  messages: number;
}

const counterPattern = /^\d+$/;

const parseCount = (value: string, what: string): number => {
  if (!counterPattern.test(value)) throw new Error(`${what}: not a counter: ${JSON.stringify(value.slice(0, 40))}`);
  return Number(value);
};

/**
 * `aer_dev_correctable`, `aer_dev_nonfatal`, `aer_dev_fatal`: one `<name> <count>` line per error bit with a
 * name (every one, zero or not), `<array>_bit[N] <count>` for a nameless bit that counted something, then
 * `TOTAL_ERR_COR|NONFATAL|FATAL <count>` (drivers/pci/pcie/aer.c, aer_stats_dev_attr).
 */
export function parseAerCounters(text: string, file: string): AerCounters {
  const errors: AerCounters['errors'] = [];
  let messages: number | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    if (fields.length !== 2 || fields[0] === '') throw new Error(`${file}: not a "<error> <count>" line: ${JSON.stringify(line.slice(0, 80))}`);
    const [name, value] = fields as [string, string];
    const count = parseCount(value, `${file} ${name}`);
    if (name.startsWith('TOTAL_')) messages = count;
    else errors.push({ error: name, count });
  }
  if (messages === undefined) throw new Error(`${file}: no TOTAL_ line`);
  return { errors, messages };
}

/** A sysfs attribute holding one unsigned number (`sriov_totalvfs`, `aer_rootport_total_err_cor`). */
export const parseUnsigned = (text: string, attribute: string): number => parseCount(text.trim(), attribute);
