import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Random } from './random.js';

/**
 * Proxmox VMs of the synthetic host: configs as qemu-server writes them, and for running VMs the
 * process (/proc/<pid>/{cmdline,status,cgroup,comm}), pid file and cgroup a real one would leave.
 */

export interface VmPlan {
  vmid: number;
  name: string;
  memoryMiB: number;
  /** `balloon:` as written; undefined when the line is absent. */
  balloonMiB: number | undefined;
  onBoot: boolean;
  cores: number;
  /** Full addresses of passed-through VFs, `hostpci0`… in order. */
  vfs: string[];
  /** Index into `vfs` of a VF named through `mapping=` instead of its address. */
  mappedVf: number | undefined;
  pid: number | undefined;
}

export const nodeName = 'pve-bench';
const otherNodeName = 'pve-bench-2';
const memoryChoicesMiB = [2048, 4096, 8192, 8192, 16384, 16384, 32768];
const roles = ['web', 'db', 'cache', 'ci', 'build', 'dpdk', 'router', 'k8s', 'mail', 'vpn'];

const full = (short: string): string => `0000:${short}`;
const macOf = (vmid: number, nic: number): string =>
  `BC:24:11:${((vmid >> 8) & 0xff).toString(16).padStart(2, '0')}:${(vmid & 0xff).toString(16).padStart(2, '0')}:${nic.toString(16).padStart(2, '0')}`.toUpperCase();
const uuidOf = (vmid: number, salt: number): string => {
  const hex = (vmid * 2654435761 + salt * 40503).toString(16).padStart(12, '0').slice(-12);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(1, 4)}-a${hex.slice(4, 7)}-${hex}`;
};

/** Half the VMs run; most carry 1–4 VFs, each VF owned by one VM. */
export function planVms(count: number, vfPool: readonly string[], random: Random): VmPlan[] {
  const free = [...vfPool];
  const plans: VmPlan[] = [];
  for (let index = 0; index < count; index++) {
    const vmid = 100 + index;
    const vfs: string[] = [];
    if (index % 5 !== 4) for (let n = random.int(1, 4); n > 0 && free.length > 0; n--) vfs.push(full(free.splice(random.int(0, free.length - 1), 1)[0]!));
    const memoryMiB = random.pick(memoryChoicesMiB);
    plans.push({
      vmid,
      name: `${roles[index % roles.length]}-${String(vmid).padStart(4, '0')}`,
      memoryMiB,
      // Passthrough VMs are told to disable the balloon; some do not (the seed's mistake).
      balloonMiB: vfs.length > 0 ? (index % 7 === 0 ? memoryMiB / 2 : 0) : index % 3 === 0 ? undefined : memoryMiB / 4,
      onBoot: index % 4 !== 3,
      cores: random.pick([2, 4, 8, 16]),
      vfs,
      mappedVf: vfs.length > 0 && index % 25 === 0 ? 0 : undefined,
      pid: index % 2 === 0 ? 4000 + index * 37 : undefined,
    });
  }
  return plans;
}

const mappingName = (vm: VmPlan): string => `vf-${vm.vmid}`;

function configLines(vm: VmPlan, memoryMiB: number): string[] {
  const lines: Record<string, string> = {
    agent: '1',
    boot: 'order=scsi0;net0',
    cores: String(vm.cores),
    cpu: 'host',
    machine: 'q35',
    memory: String(memoryMiB),
    meta: `creation-qemu=8.1.5,ctime=${1_700_000_000 + vm.vmid * 3600}`,
    name: vm.name,
    net0: `virtio=${macOf(vm.vmid, 0)},bridge=vmbr0,firewall=1`,
    numa: '1',
    onboot: vm.onBoot ? '1' : '0',
    ostype: 'l26',
    scsi0: `local-zfs:vm-${vm.vmid}-disk-0,discard=on,iothread=1,size=64G`,
    scsihw: 'virtio-scsi-single',
    smbios1: `uuid=${uuidOf(vm.vmid, 1)}`,
    sockets: '1',
    vmgenid: uuidOf(vm.vmid, 2),
  };
  if (vm.balloonMiB !== undefined) lines.balloon = String(vm.balloonMiB);
  vm.vfs.forEach((address, slot) => {
    lines[`hostpci${slot}`] = slot === vm.mappedVf ? `mapping=${mappingName(vm)},pcie=1` : `${address},pcie=1`;
  });
  return Object.keys(lines)
    .sort()
    .map((key) => `${key}: ${lines[key]}`);
}

/** A qemu-server config: description, current config, and for some VMs a snapshot section and pending changes. */
export function pveConfig(vm: VmPlan): string {
  const parts = [`#${vm.name} (${vm.vfs.length} VF)`, ...configLines(vm, vm.memoryMiB)];
  if (vm.vmid % 10 === 0) {
    parts.splice(1, 0, 'parent: pre-upgrade');
    parts.push('', '[pre-upgrade]', ...configLines(vm, vm.memoryMiB / 2), `snaptime: ${1_710_000_000 + vm.vmid}`, 'vmstate: 0');
  }
  if (vm.vmid % 30 === 0) parts.push('', '[PENDING]', `memory: ${vm.memoryMiB * 2}`);
  return parts.join('\n') + '\n';
}

/** The command line Proxmox's qemu-server builds (PVE::QemuServer::config_to_command), NUL-separated as in /proc. */
export function kvmCmdline(vm: VmPlan): string {
  const run = '/var/run/qemu-server';
  const args = [
    '/usr/bin/kvm', '-id', String(vm.vmid), '-name', `${vm.name},debug-threads=on`, '-no-shutdown',
    '-chardev', `socket,id=qmp,path=${run}/${vm.vmid}.qmp,server=on,wait=off`, '-mon', 'chardev=qmp,mode=control',
    '-chardev', 'socket,id=qmp-event,path=/var/run/qmeventd.sock,reconnect=5', '-mon', 'chardev=qmp-event,mode=control',
    '-pidfile', `${run}/${vm.vmid}.pid`, '-daemonize', '-smbios', `type=1,uuid=${uuidOf(vm.vmid, 1)}`,
    '-smp', `${vm.cores},sockets=1,cores=${vm.cores},maxcpus=${vm.cores}`, '-nodefaults',
    '-boot', 'menu=on,strict=on,reboot-timeout=1000,splash=/usr/share/qemu-server/bootsplash.jpg',
    '-vnc', `unix:${run}/${vm.vmid}.vnc,password=on`, '-cpu', 'host,+kvm_pv_eoi,+kvm_pv_unhalt',
    '-m', String(vm.memoryMiB), '-object', 'iothread,id=iothread-virtioscsi0',
    '-readconfig', '/usr/share/qemu-server/pve-q35-4.0.cfg', '-device', `vmgenid,guid=${uuidOf(vm.vmid, 2)}`,
    '-device', 'usb-tablet,id=tablet,bus=ehci.0,port=1',
  ];
  vm.vfs.forEach((address, slot) => args.push('-device', `vfio-pci,host=${address},id=hostpci${slot},bus=ich9-pcie-port-${slot + 1},addr=0x0`));
  args.push('-device', 'VGA,id=vga,bus=pcie.0,addr=0x1');
  if (vm.balloonMiB !== 0) args.push('-device', 'virtio-balloon-pci,id=balloon0,bus=pci.0,addr=0x3,free-page-reporting=on');
  args.push(
    '-device', 'virtio-scsi-pci,id=virtioscsi0,bus=pci.3,addr=0x1,iothread=iothread-virtioscsi0',
    '-drive', `file=/dev/zvol/rpool/data/vm-${vm.vmid}-disk-0,if=none,id=drive-scsi0,discard=on,format=raw,cache=none,aio=io_uring,detect-zeroes=unmap`,
    '-device', 'scsi-hd,bus=virtioscsi0.0,channel=0,scsi-id=0,lun=0,drive=drive-scsi0,id=scsi0,rotation_rate=1,bootindex=100',
    '-netdev', `type=tap,id=net0,ifname=tap${vm.vmid}i0,script=/var/lib/qemu-server/pve-bridge,downscript=/var/lib/qemu-server/pve-bridgedown,vhost=on`,
    '-device', `virtio-net-pci,mac=${macOf(vm.vmid, 0)},netdev=net0,bus=pci.0,addr=0x12,id=net0,rx_queue_size=1024,tx_queue_size=256`,
    '-machine', 'type=q35+pve0',
  );
  return args.join('\0') + '\0';
}

/** Memory a running VM holds: VFIO pins all guest RAM (VmPin), others touch part of it. */
export function vmMemoryKiB(vm: VmPlan): { rss: number; pinned: number } {
  const guest = vm.memoryMiB * 1024;
  const overhead = 180 * 1024 + vm.vmid * 13;
  if (vm.vfs.length > 0) return { rss: guest + overhead, pinned: guest };
  return { rss: Math.round(guest * (0.3 + (vm.vmid % 7) / 10)) + overhead, pinned: 0 };
}

/** /proc/<pid>/status of a process (kernel 6.8, as Proxmox 8 runs). Kernel threads have no Vm* lines. */
export function procStatus(pid: number, comm: string, memory: { rss: number; pinned: number } | undefined, threads: number): string {
  const lines = [
    `Name:\t${comm}`, 'Umask:\t0022', 'State:\tS (sleeping)', `Tgid:\t${pid}`, 'Ngid:\t0', `Pid:\t${pid}`, `PPid:\t${memory ? 1 : 2}`, 'TracerPid:\t0',
    'Uid:\t0\t0\t0\t0', 'Gid:\t0\t0\t0\t0', 'FDSize:\t256', 'Groups:\t ', `NStgid:\t${pid}`, `NSpid:\t${pid}`, `NSpgid:\t${pid}`, `NSsid:\t${pid}`,
    `Kthread:\t${memory ? 0 : 1}`,
  ];
  if (memory) {
    const kB = (value: number): string => `${String(value).padStart(8)} kB`;
    lines.push(
      `VmPeak:\t${kB(memory.rss * 2)}`, `VmSize:\t${kB(memory.rss * 2 - 1024)}`, `VmLck:\t${kB(0)}`, `VmPin:\t${kB(memory.pinned)}`,
      `VmHWM:\t${kB(memory.rss + 2048)}`, `VmRSS:\t${kB(memory.rss)}`, `RssAnon:\t${kB(memory.rss - 30_000)}`, `RssFile:\t${kB(29_000)}`,
      `RssShmem:\t${kB(1000)}`, `VmData:\t${kB(memory.rss + 500_000)}`, `VmStk:\t${kB(132)}`, `VmExe:\t${kB(6_832)}`,
      `VmLib:\t${kB(48_112)}`, `VmPTE:\t${kB(Math.ceil(memory.rss / 500))}`, `VmSwap:\t${kB(0)}`, `HugetlbPages:\t${kB(0)}`,
    );
  }
  lines.push(
    'CoreDumping:\t0', 'THP_enabled:\t1', 'untag_mask:\t0xffffffffffffffff', `Threads:\t${threads}`, 'SigQ:\t0/8254659',
    'SigPnd:\t0000000000000000', 'ShdPnd:\t0000000000000000', 'SigBlk:\t0000000010002240', 'SigIgn:\t0000000000001000',
    'SigCgt:\t0000000100004243', 'CapInh:\t0000000000000000', 'CapPrm:\t000001ffffffffff', 'CapEff:\t000001ffffffffff',
    'CapBnd:\t000001ffffffffff', 'CapAmb:\t0000000000000000', 'NoNewPrivs:\t0', 'Seccomp:\t0', 'Seccomp_filters:\t0',
    'Speculation_Store_Bypass:\tthread vulnerable', 'SpeculationIndirectBranch:\tconditional enabled',
    'Cpus_allowed:\tffffffff,ffffffff', 'Cpus_allowed_list:\t0-63', 'Mems_allowed:\t00000000,00000003', 'Mems_allowed_list:\t0-1',
    `voluntary_ctxt_switches:\t${pid * 31}`, `nonvoluntary_ctxt_switches:\t${pid % 977}`,
  );
  return lines.join('\n') + '\n';
}

export interface ProcessFiles {
  pid: number;
  comm: string;
  cmdline: string;
  status: string;
  cgroup: string;
}

/** Other processes of a Proxmox host: kernel threads (empty cmdline) and daemons, so a procfs scan has something to skip. */
export function hostProcesses(count: number): ProcessFiles[] {
  const daemons: [string, string, string][] = [
    ['systemd', '/sbin/init', '/init.scope'], ['pvedaemon', 'pvedaemon', '/system.slice/pvedaemon.service'],
    ['pveproxy worker', 'pveproxy worker', '/system.slice/pveproxy.service'], ['pvestatd', 'pvestatd', '/system.slice/pvestatd.service'],
    ['pmxcfs', '/usr/bin/pmxcfs', '/system.slice/pve-cluster.service'], ['sshd', 'sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups', '/system.slice/ssh.service'],
    ['zed', '/usr/sbin/zed -F', '/system.slice/zfs-zed.service'], ['qmeventd', '/usr/sbin/qmeventd /var/run/qmeventd.sock', '/system.slice/qmeventd.service'],
  ];
  const kernelThreads = ['kworker/0:1-events', 'ksoftirqd/3', 'migration/5', 'rcu_preempt', 'kswapd0', 'z_wr_iss', 'mlx5_health0000:10:00.0', 'ice-wq'];
  const processes: ProcessFiles[] = [];
  for (let index = 0; index < count; index++) {
    const pid = index === 0 ? 1 : 2 + index * 3;
    if (index > 0 && index % 3 !== 0) {
      const comm = kernelThreads[index % kernelThreads.length]!.slice(0, 15);
      processes.push({ pid, comm, cmdline: '', status: procStatus(pid, comm, undefined, 1), cgroup: '0::/\n' });
      continue;
    }
    const [comm, command, unit] = daemons[index === 0 ? 0 : (index / 3) % daemons.length]!;
    processes.push({
      pid,
      comm: comm.slice(0, 15),
      cmdline: command.replace(/ /g, '\0') + '\0',
      status: procStatus(pid, comm.slice(0, 15), { rss: 20_000 + index * 17, pinned: 0 }, 1 + (index % 5)),
      cgroup: `0::${unit}\n`,
    });
  }
  return processes;
}

export const kvmProcess = (vm: VmPlan & { pid: number }): ProcessFiles => ({
  pid: vm.pid,
  comm: 'kvm',
  cmdline: kvmCmdline(vm),
  status: procStatus(vm.pid, 'kvm', vmMemoryKiB(vm), vm.cores + 4),
  cgroup: `0::/qemu.slice/${vm.vmid}.scope\n`,
});

export function writeProcess(procRoot: string, files: ProcessFiles): void {
  const dir = path.join(procRoot, String(files.pid));
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'comm'), files.comm + '\n');
  writeFileSync(path.join(dir, 'cmdline'), files.cmdline);
  writeFileSync(path.join(dir, 'status'), files.status);
  writeFileSync(path.join(dir, 'cgroup'), files.cgroup);
}

/**
 * /etc/pve as pmxcfs shows it: configs under nodes/<node>/qemu-server, `qemu-server` and `local` links
 * to this node, another cluster node's VMs beside them, and the cluster-wide PCI mappings.
 */
export function writePveConfigs(rootfs: string, vms: readonly VmPlan[], otherNodeVms: number, pciIdOf: (address: string) => string): void {
  const pve = path.join(rootfs, 'etc/pve');
  const localDir = path.join(pve, 'nodes', nodeName, 'qemu-server');
  const otherDir = path.join(pve, 'nodes', otherNodeName, 'qemu-server');
  mkdirSync(localDir, { recursive: true });
  mkdirSync(otherDir, { recursive: true });
  mkdirSync(path.join(pve, 'mapping'), { recursive: true });
  symlinkSync(`nodes/${nodeName}/qemu-server`, path.join(pve, 'qemu-server'));
  symlinkSync(`nodes/${nodeName}`, path.join(pve, 'local'));
  writeFileSync(path.join(rootfs, 'etc/hostname'), nodeName + '\n');
  for (const vm of vms) writeFileSync(path.join(localDir, `${vm.vmid}.conf`), pveConfig(vm));
  for (let index = 0; index < otherNodeVms; index++) {
    const vmid = 100 + vms.length + index;
    writeFileSync(path.join(otherDir, `${vmid}.conf`), pveConfig({ vmid, name: `remote-${vmid}`, memoryMiB: 4096, balloonMiB: undefined, onBoot: true, cores: 2, vfs: [], mappedVf: undefined, pid: undefined }));
  }
  const mappings = vms
    .filter((vm) => vm.mappedVf !== undefined)
    .map((vm) => {
      const address = vm.vfs[vm.mappedVf!]!;
      const id = pciIdOf(address);
      return `${mappingName(vm)}\n\tmap id=${id},node=${nodeName},path=${address}\n\tmap id=${id},node=${otherNodeName},path=${address}\n`;
    });
  writeFileSync(path.join(pve, 'mapping/pci.cfg'), mappings.join('\n'));
}
