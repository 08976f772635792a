import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Adds a Proxmox VM to a writable fixture host copy: its config on the local node, and with `pid` a
 * live-looking kvm process (`proc/<pid>/{comm,cmdline,status,cgroup}`) and its pid file.
 */
export function addProxmoxVm(hostRoot: string, vmid: string, config: string, pid?: number): void {
  const configDir = path.join(hostRoot, 'root/etc/pve/qemu-server');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(path.join(configDir, `${vmid}.conf`), config);
  if (pid === undefined) return;
  const run = path.join(hostRoot, 'root/run/qemu-server');
  mkdirSync(run, { recursive: true });
  writeFileSync(path.join(run, `${vmid}.pid`), `${pid}\n`);
  const proc = path.join(hostRoot, 'proc', String(pid));
  mkdirSync(proc, { recursive: true });
  writeFileSync(path.join(proc, 'comm'), 'kvm\n');
  const argv = ['/usr/bin/kvm', '-id', vmid, '-name', `vm${vmid},debug-threads=on`, '-pidfile', `/var/run/qemu-server/${vmid}.pid`, '-daemonize', '-m', '1024', '-device', 'virtio-balloon-pci,id=balloon0,bus=pci.0,addr=0x3'];
  writeFileSync(path.join(proc, 'cmdline'), argv.join('\0') + '\0');
  writeFileSync(path.join(proc, 'status'), `Name:\tkvm\nState:\tS (sleeping)\nPid:\t${pid}\nVmLck:\t       0 kB\nVmPin:\t       0 kB\nVmRSS:\t  524288 kB\n`);
  writeFileSync(path.join(proc, 'cgroup'), `0::/qemu.slice/${vmid}.scope\n`);
}

/**
 * A fresh rootfs laid out as a Proxmox node `probe` lays it out, holding one VM's config; `run` is
 * `run/qemu-server`, where its pid file and QMP socket go. The caller removes `root`.
 */
export function proxmoxRootfs(vmid: string, config: string): { root: string; run: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'vfio-pve-'));
  const configDir = path.join(root, 'etc/pve/nodes/probe/qemu-server');
  mkdirSync(configDir, { recursive: true });
  symlinkSync('nodes/probe/qemu-server', path.join(root, 'etc/pve/qemu-server'));
  symlinkSync('nodes/probe', path.join(root, 'etc/pve/local'));
  writeFileSync(path.join(configDir, `${vmid}.conf`), config);
  const run = path.join(root, 'run/qemu-server');
  mkdirSync(run, { recursive: true });
  return { root, run };
}

export const qmpSocketPath = (hostRoot: string, vmid: string): string => path.join(hostRoot, 'root/run/qemu-server', `${vmid}.qmp`);
