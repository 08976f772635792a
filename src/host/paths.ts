import path from 'node:path';

/** Roots under which every host file is read, from the `--path.*` flags. */
export interface HostPaths {
  sysfs: string;
  procfs: string;
  rootfs: string;
  kmsg: string;
  /** Explicit pci.ids file, or undefined to search the usual places under rootfs. */
  pciIds: string | undefined;
}

export const defaultHostPaths: HostPaths = {
  sysfs: '/sys',
  procfs: '/proc',
  rootfs: '/',
  kmsg: '/dev/kmsg',
  pciIds: undefined,
};

/** Where distributions install pci.ids (Debian `pci.ids`, Fedora/Arch `hwdata`). */
export const pciIdsCandidates = ['usr/share/misc/pci.ids', 'usr/share/hwdata/pci.ids'];

export const sysPath = (paths: HostPaths, ...parts: string[]): string => path.join(paths.sysfs, ...parts);
export const procPath = (paths: HostPaths, ...parts: string[]): string => path.join(paths.procfs, ...parts);
export const rootPath = (paths: HostPaths, ...parts: string[]): string => path.join(paths.rootfs, ...parts);
