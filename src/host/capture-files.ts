import { lstat, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { hugepageDirSizeBytes } from '../parse/hugepages.js';
import { parseProcCgroup, vmScopePath } from '../parse/proc-cgroup.js';
import { initramfsModulesFile, modprobeDirs } from './boot-binding.js';
import { errorMessage, isMissing, listDir, readOptionalText } from './fs.js';
import { procPath, rootPath, sysPath, type HostPaths } from './paths.js';

/** How a file's text must be cleaned before it leaves the host (see src/capture/redact.ts). */
export type SecretFormat = 'cmdline' | 'pve-config' | 'pve-mapping' | 'libvirt-xml';

/** One item of a support bundle; `path` is inside the bundle (`sys/…`, `proc/…`, `root/…`). */
export type CaptureEntry =
  | { kind: 'file'; path: string; content: string; secrets?: SecretFormat }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'dir'; path: string };

export interface GatheredFiles {
  entries: CaptureEntry[];
  /** Files that exist but could not be read (permissions, a device gone mid-read). */
  problems: string[];
}

/** The PCI device attributes the collectors read (src/host/sysfs-pci.ts, sysfs-pci-health.ts, the boot_binding collector). */
const pciAttributes = [
  'vendor', 'device', 'subsystem_vendor', 'subsystem_device', 'class', 'revision', 'numa_node', 'driver_override', 'modalias', 'reset_method',
  'aer_dev_correctable', 'aer_dev_nonfatal', 'aer_dev_fatal', 'aer_rootport_total_err_cor', 'aer_rootport_total_err_nonfatal', 'aer_rootport_total_err_fatal',
  'sriov_totalvfs', 'sriov_numvfs',
];
const pciLinks = ['driver', 'iommu_group'];

const procFiles = ['meminfo', 'vmstat', 'stat', 'uptime', 'cmdline', 'sys/kernel/osrelease', 'pressure/memory', 'spl/kstat/zfs/arcstats', '1/mountinfo', 'swaps'];

/** What the disks collector reads of a block device (src/host/block-devices.ts), and of the disk's `device`. */
const blockAttributes = ['dev', 'size', 'partition', 'dm/name', 'dm/uuid'];
const blockDeviceAttributes = ['model', 'serial'];
const processFiles = ['cmdline', 'status', 'cgroup', 'comm'];

const cgroupV2MemoryFiles = ['memory.current', 'memory.max', 'memory.high', 'memory.peak', 'memory.events', 'memory.swap.current', 'memory.swap.max', 'memory.stat'];
const cgroupV1MemoryFiles = ['memory.usage_in_bytes', 'memory.limit_in_bytes', 'memory.max_usage_in_bytes', 'memory.failcnt', 'memory.memsw.usage_in_bytes', 'memory.oom_control', 'memory.stat'];

/** QEMU as Proxmox (`kvm`), Debian (`qemu-system-x86_64`, comm truncated to 15 characters) and RHEL (`qemu-kvm`) name it. */
const qemuProgram = /^(kvm|qemu-kvm|qemu-system-[\w-]+)$/;

/**
 * sysfs paths (relative to its root) of the memory files the collectors read for a process: those of
 * its own cgroup and of the VM scope enclosing it (libvirt's emulator sits below its scope), for the v1
 * memory controller and for v2, mounted at /sys/fs/cgroup or, on hybrid hosts, /sys/fs/cgroup/unified.
 */
export function cgroupMemoryFiles(cgroupText: string): string[] {
  const { unified, memoryV1 } = parseProcCgroup(cgroupText);
  const withScope = (cgroupPath: string | undefined): string[] => {
    if (cgroupPath === undefined) return [];
    const scope = vmScopePath(cgroupPath);
    return scope === undefined || scope === cgroupPath ? [cgroupPath] : [cgroupPath, scope];
  };
  return [
    ...withScope(unified).flatMap((cgroupPath) =>
      ['fs/cgroup', 'fs/cgroup/unified'].flatMap((mount) => cgroupV2MemoryFiles.map((file) => path.join(mount, cgroupPath, file))),
    ),
    ...withScope(memoryV1).flatMap((cgroupPath) => cgroupV1MemoryFiles.map((file) => path.join('fs/cgroup/memory', cgroupPath, file))),
  ];
}

/** Reads, under the `--path.*` roots, every host file the collectors read. Missing files are skipped. */
export async function gatherHostFiles(paths: HostPaths): Promise<GatheredFiles> {
  const entries: CaptureEntry[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  const add = (entry: CaptureEntry): void => {
    if (seen.has(entry.path)) return;
    seen.add(entry.path);
    entries.push(entry);
  };
  const attempt = async <T>(what: string, read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (error) {
      if (!isMissing(error)) problems.push(`${what}: ${errorMessage(error)}`);
      return undefined;
    }
  };
  // A bundle holds only what lies under its roots once every link is resolved: a link out of a tree
  // (planted, or a bind mount's) is skipped and said, whatever the file.
  const roots: Record<string, string> = { sys: paths.sysfs, proc: paths.procfs, root: paths.rootfs };
  const realRoots = new Map<string, Promise<string>>();
  const realRoot = (bundlePath: string): Promise<string> => {
    const top = bundlePath.split('/', 1)[0]!;
    let real = realRoots.get(top);
    if (!real) {
      real = realpath(roots[top]!).catch(() => path.resolve(roots[top]!));
      realRoots.set(top, real);
    }
    return real;
  };
  /** Whether `resolved` (a path with links followed) lies under the root of `bundlePath`, itself or as the root really is; says so when not. */
  const insideRoot = async (bundlePath: string, file: string, resolved: string): Promise<boolean> => {
    const root = roots[bundlePath.split('/', 1)[0]!]!;
    const under = (dir: string): boolean => {
      const relative = path.relative(dir, resolved);
      return !relative.startsWith('..') && !path.isAbsolute(relative);
    };
    if (under(path.resolve(root)) || under(await realRoot(bundlePath))) return true;
    problems.push(`${file}: resolves to ${resolved}, outside ${root}; not captured`);
    return false;
  };
  const copyFile = async (bundlePath: string, file: string, secrets?: SecretFormat): Promise<string | undefined> => {
    const resolved = await attempt(file, () => realpath(file));
    if (resolved === undefined || !(await insideRoot(bundlePath, file, resolved))) return undefined;
    const content = await attempt(file, () => readOptionalText(file));
    if (content !== undefined) add({ kind: 'file', path: bundlePath, content, ...(secrets ? { secrets } : {}) });
    return content;
  };
  const copyLink = async (bundlePath: string, link: string): Promise<string | undefined> => {
    const target = await attempt(link, () => readlink(link));
    if (target === undefined) return undefined;
    // An absolute target means the same path under the root, as a chroot reads it (libvirt's autostart
    // links name /etc/libvirt/qemu/<domain>.xml); a dangling link is judged by where it points.
    const root = roots[bundlePath.split('/', 1)[0]!]!;
    const pointsAt = path.isAbsolute(target) ? path.join(root, target) : path.resolve(path.dirname(link), target);
    const resolved = await realpath(pointsAt).catch(() => pointsAt);
    if (!(await insideRoot(bundlePath, link, resolved))) return undefined;
    add({ kind: 'symlink', path: bundlePath, target });
    return target;
  };
  /** Files and links in one directory whose names match; symlinks stay links. */
  const copyMatching = async (bundleDir: string, dir: string, pattern: RegExp, secrets?: SecretFormat): Promise<void> => {
    for (const name of (await attempt(dir, () => listDir(dir))) ?? []) {
      if (!pattern.test(name)) continue;
      const file = path.join(dir, name);
      const stat = await attempt(file, () => lstat(file));
      if (stat?.isSymbolicLink()) await copyLink(path.join(bundleDir, name), file);
      else if (stat?.isFile()) await copyFile(path.join(bundleDir, name), file, secrets);
    }
  };
  /** A path that is a directory on some hosts and a symlink on others (`/etc/pve/qemu-server`). */
  const copyDirOrLink = async (bundleDir: string, dir: string, pattern: RegExp, secrets?: SecretFormat): Promise<void> => {
    const stat = await attempt(dir, () => lstat(dir));
    if (stat?.isSymbolicLink()) await copyLink(bundleDir, dir);
    else if (stat?.isDirectory()) await copyMatching(bundleDir, dir, pattern, secrets);
  };
  /** A sysfs link target as a path relative to the sysfs root, or undefined when it points outside. */
  const insideSysfs = (linkDir: string, target: string): string | undefined => {
    const relative = path.relative(paths.sysfs, path.resolve(linkDir, target));
    return relative.startsWith('..') || path.isAbsolute(relative) ? undefined : relative;
  };

  // sysfs: PCI devices (the bus links, each device's attributes and its driver / iommu_group links), IOMMU groups.
  const devicesDir = sysPath(paths, 'bus/pci/devices');
  add({ kind: 'dir', path: 'sys/bus/pci/devices' });
  for (const address of (await attempt(devicesDir, () => listDir(devicesDir))) ?? []) {
    const entry = path.join(devicesDir, address);
    const stat = await attempt(entry, () => lstat(entry));
    let deviceDir: string | undefined = path.join('bus/pci/devices', address);
    if (stat?.isSymbolicLink()) {
      const target = await copyLink(path.join('sys/bus/pci/devices', address), entry);
      deviceDir = target === undefined ? undefined : insideSysfs(devicesDir, target);
    }
    if (deviceDir === undefined) continue;
    for (const attribute of pciAttributes) await copyFile(path.join('sys', deviceDir, attribute), sysPath(paths, deviceDir, attribute));
    for (const link of pciLinks) {
      const target = await copyLink(path.join('sys', deviceDir, link), sysPath(paths, deviceDir, link));
      const targetDir = target === undefined ? undefined : insideSysfs(sysPath(paths, deviceDir), target);
      if (targetDir !== undefined) add({ kind: 'dir', path: path.join('sys', targetDir) });
    }
    await copyMatching(path.join('sys', deviceDir), sysPath(paths, deviceDir), /^(physfn|virtfn\d+)$/);
  }
  const groupsDir = sysPath(paths, 'kernel/iommu_groups');
  // The directory exists, empty, when the IOMMU is off: keep it, the iommu collector tells the two cases apart.
  if (await attempt(groupsDir, () => lstat(groupsDir))) add({ kind: 'dir', path: 'sys/kernel/iommu_groups' });
  for (const group of (await attempt(groupsDir, () => listDir(groupsDir))) ?? []) {
    add({ kind: 'dir', path: path.join('sys/kernel/iommu_groups', group, 'devices') });
    await copyMatching(path.join('sys/kernel/iommu_groups', group, 'devices'), path.join(groupsDir, group, 'devices'), /./);
  }
  await copyFile('sys/module/vfio_pci/parameters/ids', sysPath(paths, 'module/vfio_pci/parameters/ids'));

  // sysfs: hugepage pools of every size, globally and per NUMA node.
  const poolFiles = /^(nr|free|resv|surplus)_hugepages$/;
  const copyPools = async (hugepagesDir: string): Promise<void> => {
    for (const size of (await attempt(sysPath(paths, hugepagesDir), () => listDir(sysPath(paths, hugepagesDir)))) ?? [])
      if (hugepageDirSizeBytes(size) !== undefined) await copyMatching(path.join('sys', hugepagesDir, size), sysPath(paths, hugepagesDir, size), poolFiles);
  };
  await copyPools('kernel/mm/hugepages');
  for (const node of (await attempt(sysPath(paths, 'devices/system/node'), () => listDir(sysPath(paths, 'devices/system/node')))) ?? [])
    if (/^node\d+$/.test(node)) await copyPools(path.join('devices/system/node', node, 'hugepages'));

  // sysfs: block devices, each with its holders, its disk's model and serial, and udev's record of it.
  const blockDir = sysPath(paths, 'class/block');
  if (await attempt(blockDir, () => lstat(blockDir))) add({ kind: 'dir', path: 'sys/class/block' });
  for (const name of (await attempt(blockDir, () => listDir(blockDir))) ?? []) {
    const target = await copyLink(path.join('sys/class/block', name), path.join(blockDir, name));
    const deviceDir = target === undefined ? undefined : insideSysfs(blockDir, target);
    if (deviceDir === undefined) continue;
    add({ kind: 'dir', path: path.join('sys', deviceDir) });
    for (const attribute of blockAttributes) await copyFile(path.join('sys', deviceDir, attribute), sysPath(paths, deviceDir, attribute));
    await copyMatching(path.join('sys', deviceDir, 'holders'), sysPath(paths, deviceDir, 'holders'), /./);
    const parent = await copyLink(path.join('sys', deviceDir, 'device'), sysPath(paths, deviceDir, 'device'));
    const parentDir = parent === undefined ? undefined : insideSysfs(sysPath(paths, deviceDir), parent);
    if (parentDir !== undefined) for (const attribute of blockDeviceAttributes) await copyFile(path.join('sys', parentDir, attribute), sysPath(paths, parentDir, attribute));
    const dev = entries.find((entry) => entry.path === path.join('sys', deviceDir, 'dev'));
    if (dev?.kind === 'file') await copyFile(path.join('root/run/udev/data', `b${dev.content.trim()}`), rootPath(paths, 'run/udev/data', `b${dev.content.trim()}`));
  }
  // Multipath NVMe: a subsystem's namespaces reach their PCI devices through the subsystem's controller links.
  const subsystemsDir = sysPath(paths, 'class/nvme-subsystem');
  for (const subsystem of (await attempt(subsystemsDir, () => listDir(subsystemsDir))) ?? []) {
    const target = await copyLink(path.join('sys/class/nvme-subsystem', subsystem), path.join(subsystemsDir, subsystem));
    const subsystemDir = target === undefined ? undefined : insideSysfs(subsystemsDir, target);
    if (subsystemDir === undefined) continue;
    for (const controller of (await attempt(sysPath(paths, subsystemDir), () => listDir(sysPath(paths, subsystemDir)))) ?? []) {
      if (!/^nvme\d+$/.test(controller)) continue;
      const controllerTarget = await copyLink(path.join('sys', subsystemDir, controller), sysPath(paths, subsystemDir, controller));
      const controllerDir = controllerTarget === undefined ? undefined : insideSysfs(sysPath(paths, subsystemDir), controllerTarget);
      if (controllerDir !== undefined) add({ kind: 'dir', path: path.join('sys', controllerDir) });
    }
  }

  // procfs: host memory and counters.
  for (const file of procFiles) await copyFile(path.join('proc', file), procPath(paths, file));
  // Imported ZFS pools, each a kstat directory with a `state` file.
  for (const pool of (await attempt(procPath(paths, 'spl/kstat/zfs'), () => listDir(procPath(paths, 'spl/kstat/zfs')))) ?? []) {
    await copyFile(path.join('proc/spl/kstat/zfs', pool, 'state'), procPath(paths, 'spl/kstat/zfs', pool, 'state'));
  }

  // root: VM configs and runtime state.
  const pve = (...parts: string[]) => rootPath(paths, 'etc/pve', ...parts);
  await copyDirOrLink('root/etc/pve/qemu-server', pve('qemu-server'), /\.conf$/, 'pve-config');
  if ((await attempt(pve('local'), () => lstat(pve('local'))))?.isSymbolicLink()) await copyLink('root/etc/pve/local', pve('local'));
  for (const node of (await attempt(pve('nodes'), () => listDir(pve('nodes')))) ?? []) {
    await copyMatching(path.join('root/etc/pve/nodes', node, 'qemu-server'), pve('nodes', node, 'qemu-server'), /\.conf$/, 'pve-config');
  }
  await copyMatching('root/etc/pve/mapping', pve('mapping'), /\.cfg$/, 'pve-mapping');
  await copyMatching('root/etc/libvirt/qemu', rootPath(paths, 'etc/libvirt/qemu'), /\.xml$/, 'libvirt-xml');
  await copyMatching('root/etc/libvirt/qemu/autostart', rootPath(paths, 'etc/libvirt/qemu/autostart'), /\.xml$/, 'libvirt-xml');
  await copyMatching('root/run/qemu-server', rootPath(paths, 'run/qemu-server'), /\.pid$/);
  await copyMatching('root/run/libvirt/qemu', rootPath(paths, 'run/libvirt/qemu'), /\.xml$/, 'libvirt-xml');
  await copyMatching('root/run/libvirt/qemu', rootPath(paths, 'run/libvirt/qemu'), /\.pid$/);
  for (const dir of modprobeDirs) await copyMatching(path.join('root', dir), rootPath(paths, dir), /\.conf$/);
  await copyFile(path.join('root', initramfsModulesFile), rootPath(paths, initramfsModulesFile));
  const release = entries.find((entry) => entry.path === 'proc/sys/kernel/osrelease');
  if (release?.kind === 'file') {
    const aliases = path.join('lib/modules', release.content.trim(), 'modules.alias');
    await copyFile(path.join('root', aliases), rootPath(paths, aliases));
  }
  // The Proxmox node's name when /etc/pve has no links (a standalone node).
  await copyFile('root/etc/hostname', rootPath(paths, 'etc/hostname'));

  // QEMU processes: those named in pid files, and any other process running a QEMU binary.
  const pidFileEntries = entries.filter((entry) => entry.kind === 'file' && entry.path.endsWith('.pid'));
  const vmPids = new Set(pidFileEntries.map((entry) => (entry.kind === 'file' ? entry.content.trim() : '')));
  for (const pid of ((await attempt(paths.procfs, () => listDir(paths.procfs))) ?? []).filter((name) => /^\d+$/.test(name))) {
    const [comm, cmdline] = await Promise.all([readOptionalText(procPath(paths, pid, 'comm')), readOptionalText(procPath(paths, pid, 'cmdline'))]).catch(() => []);
    // Kernel threads (`kvm-pit/…`) have an empty command line.
    if (!comm || !cmdline) continue;
    const program = path.basename(cmdline.split('\0')[0] ?? '');
    if (!vmPids.has(pid) && !qemuProgram.test(comm.trim()) && !qemuProgram.test(program)) continue;
    for (const file of processFiles) await copyFile(path.join('proc', pid, file), procPath(paths, pid, file), file === 'cmdline' ? 'cmdline' : undefined);
    const cgroup = await readOptionalText(procPath(paths, pid, 'cgroup')).catch(() => undefined);
    for (const file of cgroupMemoryFiles(cgroup ?? '')) await copyFile(path.join('sys', file), sysPath(paths, file));
  }
  return { entries, problems };
}
