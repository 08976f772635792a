import { lstat } from 'node:fs/promises';
import { isMissing, listDir } from './fs.js';
import { rootPath, type HostPaths } from './paths.js';

/**
 * libvirt's QEMU driver files under --path.rootfs: defined domains in `/etc/libvirt/qemu/<name>.xml`,
 * autostart links in `/etc/libvirt/qemu/autostart/<name>.xml`, running domains' status XML and pid in
 * `/run/libvirt/qemu/<name>.{xml,pid}`.
 */

const xmlNames = async (dir: string): Promise<string[]> =>
  (await listDir(dir)).filter((file) => file.endsWith('.xml')).map((file) => file.slice(0, -'.xml'.length));

export const listDefinedDomains = (paths: HostPaths): Promise<string[]> => xmlNames(rootPath(paths, 'etc/libvirt/qemu'));
export const listRunningDomains = (paths: HostPaths): Promise<string[]> => xmlNames(rootPath(paths, 'run/libvirt/qemu'));

export const definedDomainFile = (paths: HostPaths, name: string): string => rootPath(paths, 'etc/libvirt/qemu', `${name}.xml`);
export const runningDomainFile = (paths: HostPaths, name: string): string => rootPath(paths, 'run/libvirt/qemu', `${name}.xml`);
export const libvirtPidFile = (paths: HostPaths, name: string): string => rootPath(paths, 'run/libvirt/qemu', `${name}.pid`);

/** The autostart link exists (its target need not: libvirt only checks the link). */
export async function isAutostart(paths: HostPaths, name: string): Promise<boolean> {
  try {
    await lstat(rootPath(paths, 'etc/libvirt/qemu/autostart', `${name}.xml`));
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}
