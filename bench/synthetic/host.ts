import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeModaliases, writePciHealth, writeSysfs } from '../../test/fixtures/build-hosts.js';
import { fixturesDir, hostDir, hostTreeFlags } from '../../test/helpers/fixtures.js';
import { bindVirtualFunctions, pciHealthOf, sriovLayout } from './devices.js';
import { writeKernelLog, type KernelLogSummary } from './kernel-log.js';
import { seededRandom } from './random.js';
import { hostProcesses, kvmProcess, planVms, vmMemoryKiB, writeProcess, writePveConfigs, type VmPlan } from './vms.js';

export interface SyntheticScale {
  physicalFunctions: number;
  vfsPerPf: number;
  vms: number;
  /** Configs of another cluster node's VMs beside this node's: not this host's, must not be counted. */
  otherNodeVms: number;
  /** Processes other than QEMU: kernel threads and daemons. */
  otherProcesses: number;
  kmsgBytes: number;
  oomEvents: number;
}

/** 4,096 SR-IOV functions (16 PFs × 255 VFs), 300 VMs, a 50 MB kernel log with 1,000 OOM kills. */
export const fullScale: SyntheticScale = {
  physicalFunctions: 16,
  vfsPerPf: 255,
  vms: 300,
  otherNodeVms: 40,
  otherProcesses: 600,
  kmsgBytes: 50 * 1024 * 1024,
  oomEvents: 1000,
};

export interface QmpEndpoint {
  socket: string;
  /** `query-balloon` answer; undefined: the VM has no balloon device (QMP answers DeviceNotActive). */
  balloonActualBytes: number | undefined;
  /** `query-memory-size-summary` base memory: the VM's `-m`. */
  memoryBytes: number;
}

export interface SyntheticHost {
  root: string;
  /** The `--path.*` flags that point the exporter at this host. */
  flags: string[];
  vms: VmPlan[];
  /** QMP sockets of the running VMs; something must serve them (see qmp-servers.ts). */
  qmp: QmpEndpoint[];
  /** Full address of a VF no VM has: the one a benchmark may rebind. */
  spareVf: string;
  summary: {
    pciDevices: number;
    virtualFunctions: number;
    vfioBound: number;
    iommuGroups: number;
    vms: number;
    runningVms: number;
    passthroughVms: number;
    kmsg: KernelLogSummary;
  };
}

const mib = 1024 * 1024;
/** The fixture file is small; the full list is what a real host parses. */
const pciIdsFile = (): string => (existsSync('/usr/share/misc/pci.ids') ? '/usr/share/misc/pci.ids' : path.join(fixturesDir, 'pci.ids'));

/** Likewise the system's modules.alias (a few thousand PCI aliases) when a kernel's modules are installed, else the seed host's. */
function modulesAlias(): { release: string; file: string } {
  const installed = existsSync('/lib/modules') ? readdirSync('/lib/modules').sort().find((release) => existsSync(`/lib/modules/${release}/modules.alias`)) : undefined;
  if (installed !== undefined) return { release: installed, file: `/lib/modules/${installed}/modules.alias` };
  const release = '6.5.13-1-pve';
  return { release, file: path.join(hostDir('suprox'), 'root/lib/modules', release, 'modules.alias') };
}

function writeProcfs(procRoot: string, totalKiB: number, committedKiB: number, oomKills: number, uptimeSeconds: number): void {
  mkdirSync(path.join(procRoot, 'pressure'), { recursive: true });
  const availableKiB = totalKiB - committedKiB - 64 * 1024 * 1024;
  const meminfo: [string, number][] = [
    ['MemTotal', totalKiB], ['MemFree', Math.round(availableKiB * 0.6)], ['MemAvailable', availableKiB], ['Buffers', 912_344],
    ['Cached', 18_563_128], ['SwapCached', 0], ['Active', committedKiB], ['Inactive', 24_620_400], ['Unevictable', 52_872], ['Mlocked', 52_872],
    ['SwapTotal', 0], ['SwapFree', 0], ['Dirty', 1_232], ['Writeback', 0], ['AnonPages', committedKiB], ['Mapped', 1_481_436],
    ['Shmem', 164_516], ['Slab', 41_012_820], ['SReclaimable', 1_356_744], ['SUnreclaim', 39_656_076], ['KernelStack', 91_088],
    ['PageTables', 3_043_412], ['CommitLimit', Math.round(totalKiB / 2)], ['Committed_AS', committedKiB + 8_000_000],
    ['VmallocTotal', 34_359_738_367], ['VmallocUsed', 1_436_932], ['AnonHugePages', Math.round(committedKiB * 0.8)],
    ['HugePages_Total', 0], ['HugePages_Free', 0], ['HugePages_Rsvd', 0], ['HugePages_Surp', 0], ['Hugepagesize', 2048], ['Hugetlb', 0],
  ];
  writeFileSync(
    path.join(procRoot, 'meminfo'),
    meminfo.map(([key, value]) => `${`${key}:`.padEnd(16)}${String(value).padStart(10)}${key.startsWith('HugePages_') ? '' : ' kB'}`).join('\n') + '\n',
  );
  const vmstat: [string, number][] = [
    ['nr_free_pages', Math.round(availableKiB / 4)], ['nr_inactive_anon', 6_161_161], ['nr_active_anon', Math.round(committedKiB / 4)],
    ['pgpgin', 912_345_678], ['pgpgout', 1_234_567_890], ['pswpin', 0], ['pswpout', 0], ['pgfault', 98_765_432_101], ['pgmajfault', 1_234_567],
    ['pgsteal_kswapd', 45_678_901], ['compact_stall', 4_321], ['oom_kill', oomKills], ['thp_fault_alloc', 12_345_678],
  ];
  writeFileSync(path.join(procRoot, 'vmstat'), vmstat.map(([key, value]) => `${key} ${value}`).join('\n') + '\n');
  const cpus = Array.from({ length: 64 }, (_, cpu) => `cpu${cpu} ${1_234_567 + cpu} 123 456_789 98_765_432 12_345 0 6_789 0 0 0`.replace(/_/g, ''));
  const bootTime = Math.floor(Date.now() / 1000 - uptimeSeconds);
  writeFileSync(
    path.join(procRoot, 'stat'),
    ['cpu  79012345 7872 29234567 6320987654 790123 0 434567 0 0 0', ...cpus, 'intr 98765432101 0 9 0 0 0', 'ctxt 987654321098',
      `btime ${bootTime}`, 'processes 12345678', 'procs_running 3', 'procs_blocked 0', 'softirq 12345678901 0 1234 5678'].join('\n') + '\n',
  );
  writeFileSync(path.join(procRoot, 'uptime'), `${uptimeSeconds.toFixed(2)} ${(uptimeSeconds * 60).toFixed(2)}\n`);
  writeFileSync(path.join(procRoot, 'pressure/memory'), `some avg10=0.12 avg60=0.31 avg300=0.20 total=${oomKills * 3_141_592}\nfull avg10=0.05 avg60=0.11 avg300=0.08 total=${oomKills * 1_414_213}\n`);
  mkdirSync(path.join(procRoot, 'spl/kstat/zfs'), { recursive: true });
  copyFileSync(path.join(hostDir('suprox'), 'proc/spl/kstat/zfs/arcstats'), path.join(procRoot, 'spl/kstat/zfs/arcstats'));
  // The host's mount table and swap areas, which the disks collector reads.
  mkdirSync(path.join(procRoot, '1'), { recursive: true });
  copyFileSync(path.join(hostDir('suprox'), 'proc/1/mountinfo'), path.join(procRoot, '1/mountinfo'));
  copyFileSync(path.join(hostDir('suprox'), 'proc/swaps'), path.join(procRoot, 'swaps'));
}

/** Writes the synthetic host under `root` (sys/, proc/, root/, kmsg). Deterministic for a given scale. */
export function generateSyntheticHost(root: string, scale: SyntheticScale = fullScale): SyntheticHost {
  const random = seededRandom(0x5eed);
  const sysfs = path.join(root, 'sys');
  const procfs = path.join(root, 'proc');
  const rootfs = path.join(root, 'root');
  const kmsg = path.join(root, 'kmsg');

  const layout = sriovLayout(scale.physicalFunctions, scale.vfsPerPf);
  // The last VF stays out of every VM: the spare a benchmark may rebind.
  const vms = planVms(scale.vms, layout.virtualFunctions.slice(0, -1).map((vf) => vf.address), random);
  const assigned = new Set(vms.flatMap((vm) => vm.vfs.map((address) => address.slice(5))));
  const virtualFunctions = bindVirtualFunctions(layout, assigned);
  const devices = [...layout.platform, ...virtualFunctions];
  writeSysfs(sysfs, devices);
  writePciHealth(sysfs, devices, pciHealthOf(layout, scale.vfsPerPf));
  writeModaliases(sysfs, devices);

  const pciIds = new Map(devices.map((device) => [`0000:${device.address}`, `${device.vendor}:${device.device}`]));
  writePveConfigs(rootfs, vms, scale.otherNodeVms, (address) => pciIds.get(address)!);

  const running = vms.filter((vm): vm is VmPlan & { pid: number } => vm.pid !== undefined);
  const runDir = path.join(rootfs, 'run/qemu-server');
  mkdirSync(runDir, { recursive: true });
  for (const hostProcess of hostProcesses(scale.otherProcesses)) writeProcess(procfs, hostProcess);
  for (const vm of running) {
    writeProcess(procfs, kvmProcess(vm));
    writeFileSync(path.join(runDir, `${vm.vmid}.pid`), `${vm.pid}\n`);
    const scope = path.join(sysfs, 'fs/cgroup/qemu.slice', `${vm.vmid}.scope`);
    mkdirSync(scope, { recursive: true });
    writeFileSync(path.join(scope, 'memory.current'), `${(vmMemoryKiB(vm).rss + 20_000) * 1024}\n`);
  }
  // A VM the OOM killer took leaves its pid file behind (qemu-server removes it only on a clean stop).
  for (const vm of vms.filter((vm) => vm.pid === undefined && vm.vmid % 20 === 1)) writeFileSync(path.join(runDir, `${vm.vmid}.pid`), `${900_000 + vm.vmid}\n`);

  const committedKiB = running.reduce((sum, vm) => sum + vmMemoryKiB(vm).rss, 0);
  const totalKiB = Math.max(2 * 1024 * 1024 * 1024, Math.ceil((committedKiB * 1.3) / 1024 / 1024) * 1024 * 1024);
  const kmsgSummary = writeKernelLog(kmsg, random, {
    targetBytes: scale.kmsgBytes,
    oomEvents: scale.oomEvents,
    victims: vms.map((vm, index) => ({ vmid: vm.vmid, pid: 200_000 + index * 11, memoryMiB: vm.memoryMiB })),
    vfs: [...assigned].map((address) => `0000:${address}`),
    vmids: vms.map((vm) => vm.vmid),
  });
  writeProcfs(procfs, totalKiB, committedKiB, scale.oomEvents, kmsgSummary.lastMicros / 1e6 + 60);
  // What the boot_binding collector reads: the running kernel, its command line and its modules' aliases.
  const { release, file: aliasFile } = modulesAlias();
  mkdirSync(path.join(procfs, 'sys/kernel'), { recursive: true });
  writeFileSync(path.join(procfs, 'sys/kernel/osrelease'), `${release}\n`);
  writeFileSync(path.join(procfs, 'cmdline'), `BOOT_IMAGE=/boot/vmlinuz-${release} root=/dev/mapper/pve-root ro quiet intel_iommu=on iommu=pt\n`);
  mkdirSync(path.join(rootfs, 'lib/modules', release), { recursive: true });
  copyFileSync(aliasFile, path.join(rootfs, 'lib/modules', release, 'modules.alias'));

  return {
    root,
    flags: [...hostTreeFlags(root), `--path.pci-ids=${pciIdsFile()}`],
    vms,
    spareVf: `0000:${layout.virtualFunctions[layout.virtualFunctions.length - 1]!.address}`,
    qmp: running.map((vm) => ({
      socket: path.join(runDir, `${vm.vmid}.qmp`),
      balloonActualBytes: vm.balloonMiB === 0 ? undefined : vm.memoryMiB * mib,
      memoryBytes: vm.memoryMiB * mib,
    })),
    summary: {
      pciDevices: devices.length,
      virtualFunctions: virtualFunctions.length,
      vfioBound: virtualFunctions.filter((vf) => vf.driver === 'vfio-pci').length,
      iommuGroups: new Set(devices.map((device) => device.iommuGroup)).size,
      vms: vms.length,
      runningVms: running.length,
      passthroughVms: vms.filter((vm) => vm.vfs.length > 0).length,
      kmsg: kmsgSummary,
    },
  };
}
