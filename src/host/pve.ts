import { readlink } from 'node:fs/promises';
import path from 'node:path';
import { maxConfigFileBytes } from './config-file.js';
import { errorCode, isMissing, listDir, readOptionalText } from './fs.js';
import { rootPath, type HostPaths } from './paths.js';

/**
 * Proxmox VE files under --path.rootfs. `/etc/pve/qemu-server` links to this node's
 * `/etc/pve/nodes/<node>/qemu-server`, so listing it yields only this node's VMs; other cluster
 * nodes' configs live beside it under their own `nodes/<name>/`. Runtime files are in
 * `/var/run/qemu-server` (`/var/run` is `/run`).
 */

export const pveConfigFile = (paths: HostPaths, vmid: string): string => rootPath(paths, 'etc/pve/qemu-server', `${vmid}.conf`);
export const pvePidFile = (paths: HostPaths, vmid: string): string => rootPath(paths, 'run/qemu-server', `${vmid}.pid`);
export const pveQmpSocket = (paths: HostPaths, vmid: string): string => rootPath(paths, 'run/qemu-server', `${vmid}.qmp`);

/** VM ids with a config on this node, numerically sorted. */
export async function listPveVmids(paths: HostPaths): Promise<string[]> {
  return (await listDir(rootPath(paths, 'etc/pve/qemu-server')))
    .map((file) => /^(\d+)\.conf$/.exec(file)?.[1])
    .filter((vmid) => vmid !== undefined)
    .sort((a, b) => Number(a) - Number(b));
}

/** This node's name: `/etc/pve/local` → `nodes/<node>`, else the `qemu-server` link, else /etc/hostname. */
export async function pveNodeName(paths: HostPaths): Promise<string | undefined> {
  for (const [link, depth] of [['etc/pve/local', 0], ['etc/pve/qemu-server', 1]] as const) {
    try {
      const target = (await readlink(rootPath(paths, link))).replace(/\/+$/, '');
      const parts = target.split('/');
      const node = parts[parts.length - 1 - depth];
      if (node) return node;
    } catch (error) {
      // EINVAL: a plain directory, not a link (a standalone node without pmxcfs' links).
      if (!isMissing(error) && errorCode(error) !== 'EINVAL') throw error;
    }
  }
  return (await readOptionalText(rootPath(paths, 'etc/hostname')))?.trim().split('.')[0] || undefined;
}

export const readPciMappingText = (paths: HostPaths): Promise<string | undefined> =>
  readOptionalText(rootPath(paths, 'etc/pve/mapping/pci.cfg'), maxConfigFileBytes);

/** Every `run/qemu-server/<vmid>.pid`: vmid → file. */
export async function listPvePidFiles(paths: HostPaths): Promise<Map<string, string>> {
  const dir = rootPath(paths, 'run/qemu-server');
  const files = new Map<string, string>();
  for (const file of await listDir(dir)) {
    const vmid = /^(\d+)\.pid$/.exec(file)?.[1];
    if (vmid !== undefined) files.set(vmid, path.join(dir, file));
  }
  return files;
}
