import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { errorMessage, fileTree, isMissing, type FileTree } from '../host/fs.js';
import { readPciBus, type PciDeviceRead } from '../host/pci-bus.js';
import type { Logger } from '../log.js';
import type { CollectContext } from './types.js';

/** Devices read between two turns of the event loop, as the bus itself is read. */
const devicesPerTurn = 256;

/**
 * Reads more of every device of the sample's PCI bus read through `read(tree, device)`, with sysfs's file tree
 * (synchronous on a real sysfs, the thread pool elsewhere; undefined: nothing to report for that device), in the
 * device's real directory (`device.instance.dir`). A device removed meanwhile is skipped; any other failure is an
 * error for that device alone.
 */
export async function readEachPciDevice<T>(
  context: CollectContext,
  collector: string,
  log: Logger,
  read: (tree: FileTree, device: PciDeviceRead) => Promise<T | undefined>,
): Promise<{ values: T[]; errors: string[] }> {
  const [bus, tree] = await Promise.all([readPciBus(context.paths, context), fileTree(context.paths.sysfs)]);
  const values: T[] = [];
  const errors: string[] = [];
  for (const [position, device] of bus.devices.entries()) {
    if (position > 0 && position % devicesPerTurn === 0) await yieldToEventLoop();
    try {
      const value = await read(tree, device);
      if (value !== undefined) values.push(value);
    } catch (error) {
      if (isMissing(error)) log.debug('PCI device vanished during sample', { collector, device: device.address });
      else errors.push(`${device.address}: ${errorMessage(error)}`);
    }
  }
  return { values, errors };
}
