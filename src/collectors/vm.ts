import path from 'node:path';
import { sharedBoundedReads, type BoundedReads } from '../host/bounded-reads.js';
import { errorMessage, fileErrorMessage } from '../host/fs.js';
import { readHostHugepageSizes } from '../host/hugepages.js';
import type { HostPaths } from '../host/paths.js';
import { listPvePidFiles, pveQmpSocket } from '../host/pve.js';
import { balloonActualBytes, memorySizeSummaryBytes, qmpExchange } from '../host/qmp.js';
import { readPidFile, type QemuProcessInfo } from '../host/qemu-processes.js';
import { listPciAddresses, mdevParentAddress } from '../host/sysfs-pci.js';
import type { Logger } from '../log.js';
import { hugepageDemand, type HostHugepageSizes } from '../parse/hugepages.js';
import { cmdlineVmid } from '../parse/qemu-cmdline.js';
import { ProblemMemo, readLibvirtVms, readProxmoxVms, type ConfiguredVm } from './vm-configs.js';
import { findQemuProcesses } from './vm-processes.js';
import type { CollectorDefinition } from './types.js';
import { passthroughDeviceCount, type Vm, type VmFacts, type VmProcess, type VmQmpState } from './vm-types.js';

const byVmid = (a: Vm, b: Vm): number => {
  const [numericA, numericB] = [/^\d+$/.test(a.vmid), /^\d+$/.test(b.vmid)];
  if (numericA && numericB) return Number(a.vmid) - Number(b.vmid);
  if (numericA !== numericB) return numericA ? -1 : 1;
  return a.vmid.localeCompare(b.vmid);
};

const toVmProcess = (info: QemuProcessInfo): VmProcess => ({
  pid: info.pid,
  comm: info.comm,
  rssBytes: info.status.rssBytes,
  lockedBytes: info.status.lockedBytes === undefined || info.status.pinnedBytes === undefined ? undefined : info.status.lockedBytes + info.status.pinnedBytes,
  cgroupPath: info.cgroupPath,
  cgroupMemoryPath: info.cgroupMemoryPath,
  cgroupMemoryBytes: info.cgroupMemoryBytes,
});

/** Guards against a pid file left behind and its pid reused by another VM's QEMU. */
function processFits(vm: Pick<Vm, 'vmid' | 'name' | 'source'>, { cmdline }: QemuProcessInfo): boolean {
  if (vm.source === 'libvirt') return cmdline.name === undefined || cmdline.name === vm.name;
  return (cmdline.id === undefined || cmdline.id === vm.vmid) && (cmdline.pidfile === undefined || path.basename(cmdline.pidfile) === `${vm.vmid}.pid`);
}

/** A QEMU process no config accounts for. */
function processOnlyVm(vmid: string, info: QemuProcessInfo, mdevParents: ReadonlyMap<string, string | undefined>): Vm {
  const { cmdline } = info;
  return {
    vmid,
    name: cmdline.name ?? '',
    source: 'qemu',
    running: true,
    startOnBoot: false,
    template: false,
    memoryConfiguredBytes: cmdline.memoryBytes,
    balloonEnabled: cmdline.balloonDevice,
    balloonMinBytes: cmdline.balloonDevice ? undefined : 0,
    hugepages: undefined,
    hugepageDemand: undefined,
    pending: undefined,
    devices: cmdline.vfioHosts.map((pciAddress, index) => ({ pciAddress, slot: `vfio-pci${index}`, present: undefined })),
    mdevs: cmdline.mdevs.map(({ uuid }, index) => ({ uuid, parentPciAddress: mdevParents.get(uuid), slot: `mdev${index}` })),
    configProblems: undefined,
    configUnreadable: false,
    readErrors: info.problems,
    process: toVmProcess(info),
    qmp: undefined,
  };
}

/** One VM per vmid: a libvirt domain named like a Proxmox VM id would make its series ambiguous. */
function uniqueVmids(configured: ConfiguredVm[], errors: string[]): ConfiguredVm[] {
  const seen = new Set<string>();
  return configured.filter(({ vm }) => {
    if (seen.has(vm.vmid)) {
      errors.push(`${vm.source} VM ${JSON.stringify(vm.vmid)} has the id of a VM already reported; left out`);
      return false;
    }
    seen.add(vm.vmid);
    return true;
  });
}

/** Matches configured VMs with live QEMU processes: by pid file first, then by `-id` / `-name`; the rest are `qemu` VMs. */
async function attachProcesses(paths: HostPaths, allConfigured: ConfiguredVm[], reads: BoundedReads, hostHugepages: HostHugepageSizes | undefined): Promise<{ vms: Vm[]; errors: string[] }> {
  const errors: string[] = [];
  const configured = uniqueVmids(allConfigured, errors);
  const configuredVmids = new Set(configured.filter(({ vm }) => vm.source === 'proxmox').map(({ vm }) => vm.vmid));
  const orphanPidFiles = [...(await listPvePidFiles(paths))].filter(([vmid]) => !configuredVmids.has(vmid));
  const pidOf = new Map<string, number | undefined>();
  const pidFileErrors = new Map<string, string>();
  await Promise.all(
    [...configured.map(({ pidFile }) => pidFile), ...orphanPidFiles.map(([, file]) => file)].map(async (file) => {
      try {
        pidOf.set(file, await reads.run(file, () => readPidFile(file)));
      } catch (error) {
        pidFileErrors.set(file, fileErrorMessage(file, error));
      }
    }),
  );
  errors.push(...pidFileErrors.values());
  const pidFilePids = new Set([...pidOf.values()].filter((pid) => pid !== undefined));
  const found = await findQemuProcesses(paths, pidFilePids, reads);
  errors.push(...found.errors);
  const unclaimed = new Map(found.processes);
  const mdevUuids = [...new Set([...found.processes.values()].flatMap(({ cmdline }) => cmdline.mdevs.map(({ uuid }) => uuid)))];
  const mdevParents = new Map(await Promise.all(mdevUuids.map(async (uuid) => [uuid, await mdevParentAddress(paths, uuid)] as const)));
  const claim = (pid: number | undefined, fits: (info: QemuProcessInfo) => boolean): QemuProcessInfo | undefined => {
    const info = pid === undefined ? undefined : unclaimed.get(pid);
    if (info === undefined || !fits(info)) return undefined;
    unclaimed.delete(info.pid);
    return info;
  };

  const byPidFile = configured.map(({ vm, pidFile, statusPid, hugepageNodes }) => ({
    vm: { ...vm, hugepageDemand: hugepageNodes === undefined || hostHugepages === undefined ? undefined : hugepageDemand(hugepageNodes, hostHugepages) },
    pidFile,
    statusPid,
    info: claim(pidOf.get(pidFile) ?? statusPid, (info) => processFits(vm, info)),
  }));
  const vms: Vm[] = [];
  const taken = new Set(configured.map(({ vm }) => vm.vmid));
  for (const [vmid, file] of orphanPidFiles) {
    const info = claim(pidOf.get(file), (candidate) => processFits({ vmid, name: '', source: 'proxmox' }, candidate));
    if (info === undefined || taken.has(vmid)) continue;
    taken.add(vmid);
    vms.push(processOnlyVm(vmid, info, mdevParents));
  }
  // A process whose pid file is missing still belongs to the VM its command line names.
  for (const entry of byPidFile.filter(({ info }) => info === undefined)) {
    const { vm } = entry;
    const match = [...unclaimed.values()].find(({ cmdline }) =>
      vm.source === 'proxmox' ? cmdlineVmid(cmdline) === vm.vmid : cmdline.name === vm.name && cmdlineVmid(cmdline) === undefined,
    );
    entry.info = claim(match?.pid, () => true);
  }
  for (const { vm, pidFile, statusPid, info } of byPidFile) {
    // A live process the pid file names whose files could not be read runs this VM as far as anyone can tell.
    const pid = pidOf.get(pidFile) ?? statusPid;
    const processError = info === undefined && pid !== undefined ? found.failed.get(pid) : undefined;
    const pidFileError = pidFileErrors.get(pidFile);
    const readErrors = [...vm.readErrors, ...[pidFileError, processError].filter((error) => error !== undefined), ...(info?.problems ?? [])];
    const running = info !== undefined || processError !== undefined ? true : pidFileError === undefined ? false : undefined;
    vms.push({ ...vm, readErrors, running, process: info === undefined ? undefined : toVmProcess(info), qmp: undefined });
  }
  for (const info of unclaimed.values()) {
    let vmid = cmdlineVmid(info.cmdline) ?? info.cmdline.name ?? `pid-${info.pid}`;
    if (taken.has(vmid)) {
      errors.push(`QEMU process ${info.pid} names VM ${JSON.stringify(vmid)}, which is already reported; reported as pid-${info.pid}`);
      vmid = `pid-${info.pid}`;
    }
    taken.add(vmid);
    vms.push(processOnlyVm(vmid, info, mdevParents));
  }
  return { vms, errors };
}

/** QMP state of one VM from one exchange, or "busy" while its previous exchange still holds the socket. */
type QmpQuery = (vm: Vm) => Promise<VmQmpState>;

function createQmpQuery(paths: HostPaths, timeoutSeconds: number, inFlight: Map<string, Promise<void>>): QmpQuery {
  return async (vm) => {
    const socket = pveQmpSocket(paths, vm.vmid);
    const down = (error: string): VmQmpState => ({ up: false, balloonActualBytes: undefined, memoryBytes: undefined, error });
    if (inFlight.has(socket)) return down('previous QMP exchange still holds the socket');
    // query-balloon fails with DeviceNotActive on a VM configured without a balloon device; query-status still proves QMP answers.
    const command = vm.balloonEnabled ? 'query-balloon' : 'query-status';
    const exchange = qmpExchange(socket, [command, 'query-memory-size-summary'], timeoutSeconds * 1000);
    inFlight.set(socket, exchange.closed);
    void exchange.closed.finally(() => inFlight.delete(socket));
    const outcome = await exchange.outcome;
    if (!outcome.ok) return down(outcome.error);
    const [state, summary] = outcome.replies;
    if (!state?.ok) return down(state?.error ?? 'no answer');
    // QEMU before 2.11 lacks query-memory-size-summary: the memory then comes from the config.
    const memoryBytes = summary?.ok ? memorySizeSummaryBytes(summary.value) : undefined;
    if (command === 'query-status') return { up: true, balloonActualBytes: undefined, memoryBytes, error: undefined };
    const actual = balloonActualBytes(state.value);
    return actual === undefined ? down('query-balloon answer has no "actual" byte count') : { up: true, balloonActualBytes: actual, memoryBytes, error: undefined };
  };
}

/** A running VM's memory is what QEMU holds now, DIMMs plugged since start included; the config says what the next start gets. */
const withQmp = (vm: Vm, qmp: VmQmpState): Vm => ({ ...vm, qmp, memoryConfiguredBytes: qmp.memoryBytes ?? vm.memoryConfiguredBytes });

/** Logs a QMP failure when it starts or changes, not on every sample it persists. */
function logQmp(log: Logger, vm: Vm, previous: VmFacts | undefined): void {
  const error = vm.qmp?.error;
  if (error === undefined) return;
  const before = previous?.vms.find((candidate) => candidate.vmid === vm.vmid)?.qmp?.error;
  if (before === error) log.debug('QMP query failed', { collector: 'vm', vmid: vm.vmid, err: error });
  else log.warn('QMP query failed', { collector: 'vm', vmid: vm.vmid, err: error });
}

/** The PCI bus's addresses, or undefined when it cannot be listed (the pci collector reports that). */
async function presentPciAddresses(paths: HostPaths): Promise<string[] | undefined> {
  try {
    return await listPciAddresses(paths);
  } catch {
    return undefined;
  }
}

/** Marks each assigned device present or not on the bus: a VM naming a device the host lacks does not start. */
function withPresence(vm: Vm, present: ReadonlySet<string> | undefined): Vm {
  return { ...vm, devices: vm.devices.map((device) => ({ ...device, present: present?.has(device.pciAddress) })) };
}

export const vmCollector: CollectorDefinition<'vm'> = {
  name: 'vm',
  description: 'VMs from Proxmox configs, libvirt domains and live QEMU processes: memory, balloon, passthrough devices, QMP',
  defaultEnabled: true,
  create(settings, log) {
    const memo = new ProblemMemo();
    const inFlight = new Map<string, Promise<void>>();
    return {
      async collect({ paths, previous }) {
        const reads = sharedBoundedReads(paths, settings.vmReadTimeoutSeconds);
        const hugepageErrors: string[] = [];
        const presentAddresses = await presentPciAddresses(paths);
        // Without the bus, short hostpci ids expand to function 0 alone.
        const [proxmox, libvirt] = await Promise.all([readProxmoxVms(paths, presentAddresses ?? [], log, memo, reads), readLibvirtVms(paths, reads)]);
        // Unknown pools leave every VM's pool unknown, not the VMs.
        const hostHugepages = await readHostHugepageSizes(paths).catch((error: unknown) => {
          hugepageErrors.push(`hugepage sizes: ${errorMessage(error)}`);
          return undefined;
        });
        const attached = await attachProcesses(paths, [...proxmox.vms, ...libvirt.vms], reads, hostHugepages);
        const query = createQmpQuery(paths, settings.qmpTimeoutSeconds, inFlight);
        // Every VM is asked at once: a sample takes one QMP deadline at most, however many VMs hang.
        const vms = await Promise.all(
          attached.vms.map(async (vm) => (vm.source === 'proxmox' && vm.running === true ? withQmp(vm, await query(vm)) : vm)),
        );
        const present = presentAddresses && new Set(presentAddresses);
        for (const vm of vms) logQmp(log, vm, previous?.facts.vm);
        return { facts: { vms: vms.map((vm) => withPresence(vm, present)).sort(byVmid), proxmoxNode: proxmox.node }, errors: [...proxmox.errors, ...libvirt.errors, ...attached.errors, ...hugepageErrors] };
      },
    };
  },
  render({ vms, proxmoxNode }, sink) {
    const bool = (value: boolean): number => (value ? 1 : 0);
    // An unreadable config says nothing about boot, devices or balloon: no 0 that would read as a fact.
    const fromConfig = <T>(vm: Vm, value: T): T | undefined => (vm.configUnreadable ? undefined : value);
    /** One family at a time, so families appear in this order whichever VM comes first. */
    const perVm = (name: string, help: string, value: (vm: Vm) => number | undefined): void => {
      const gauge = sink.gauge(name, help, ['vmid']);
      for (const vm of vms) {
        const sample = value(vm);
        if (sample !== undefined) gauge({ vmid: vm.vmid }, sample);
      }
    };
    const info = sink.gauge('vfio_vm_info', 'VM known from a config or a running QEMU process; value is always 1.', ['vmid', 'name', 'source', 'id', 'node']);
    // `id` and `node` as prometheus-pve-exporter labels its guests (`qemu/<vmid>`, the node name), so queries can join on them.
    for (const vm of vms) {
      const proxmox = vm.source === 'proxmox';
      info({ vmid: vm.vmid, name: vm.name, source: vm.source, id: proxmox ? `qemu/${vm.vmid}` : '', node: proxmox ? (proxmoxNode ?? '') : '' }, 1);
    }
    perVm('vfio_vm_running', '1 when a live QEMU process runs the VM.', (vm) => (vm.running === undefined ? undefined : bool(vm.running)));
    perVm('vfio_vm_template', '1 when the VM is a Proxmox template, which never starts as configured.', (vm) => fromConfig(vm, bool(vm.template)));
    perVm('vfio_vm_start_on_boot', '1 when the VM starts with the host (Proxmox onboot, libvirt autostart).', (vm) => fromConfig(vm, bool(vm.startOnBoot)));
    perVm('vfio_vm_passthrough_devices', 'Host PCI and mediated devices assigned to the VM.', (vm) => fromConfig(vm, passthroughDeviceCount(vm)));
    const device = sink.gauge('vfio_vm_pci_device_info', 'Host PCI device assigned to the VM; value is always 1.', ['vmid', 'pci_address', 'slot']);
    for (const vm of vms) for (const { pciAddress, slot } of vm.devices) device({ vmid: vm.vmid, pci_address: pciAddress, slot }, 1);
    const mdev = sink.gauge(
      'vfio_vm_mdev_device_info',
      'Mediated device (vGPU slice) assigned to the VM; parent_pci_address is empty when sysfs does not show its parent; value is always 1.',
      ['vmid', 'mdev_uuid', 'parent_pci_address', 'slot'],
    );
    for (const vm of vms) for (const { uuid, parentPciAddress, slot } of vm.mdevs) mdev({ vmid: vm.vmid, mdev_uuid: uuid, parent_pci_address: parentPciAddress ?? '', slot }, 1);
    const present = sink.gauge('vfio_vm_pci_device_present', "1 when the host's PCI bus lists the device assigned to the VM; 0: the VM cannot start with it.", ['vmid', 'pci_address', 'slot']);
    for (const vm of vms)
      for (const { pciAddress, slot, present: listed } of vm.devices) if (listed !== undefined) present({ vmid: vm.vmid, pci_address: pciAddress, slot }, bool(listed));
    perVm('vfio_vm_memory_configured_bytes', 'Configured guest RAM.', (vm) => vm.memoryConfiguredBytes);
    perVm('vfio_vm_memory_balloon_min_bytes', 'Balloon floor the guest may be shrunk to; 0 when ballooning is off.', (vm) => vm.balloonMinBytes);
    perVm('vfio_vm_balloon_enabled', '1 when the VM has a balloon device.', (vm) => fromConfig(vm, bool(vm.balloonEnabled)));
    perVm('vfio_vm_memory_balloon_actual_bytes', 'Guest RAM after ballooning, from QMP query-balloon.', (vm) => vm.qmp?.balloonActualBytes);
    perVm('vfio_vm_memory_rss_bytes', 'Resident memory of the QEMU process (VmRSS).', (vm) => vm.process?.rssBytes);
    perVm('vfio_vm_memory_locked_bytes', 'Locked and pinned memory of the QEMU process (VmLck + VmPin); VFIO-pinned guest RAM lands here.', (vm) => vm.process?.lockedBytes);
    perVm('vfio_vm_memory_cgroup_bytes', "Memory charged to the VM's cgroup scope (memory.current, v1 memory.usage_in_bytes).", (vm) => vm.process?.cgroupMemoryBytes);
    perVm('vfio_vm_qmp_up', '1 when the last QMP query to the running VM answered in time.', (vm) => (vm.qmp === undefined ? undefined : bool(vm.qmp.up)));
    const hugepages = sink.gauge('vfio_vm_hugepages_info', 'Guest RAM comes from the hugepage pool of this size (2M, 1G, any, default); value is always 1.', ['vmid', 'size']);
    for (const vm of vms) if (vm.hugepages !== undefined) hugepages({ vmid: vm.vmid, size: vm.hugepages }, 1);
    const demand = sink.gauge(
      'vfio_vm_hugepages_bytes',
      'Guest RAM the VM takes at its next start from the hugepage pool of this size (any and default resolved as qemu-server and libvirt do); size joins vfio_host_hugepage_pool_pages.',
      ['vmid', 'size'],
    );
    for (const vm of vms) for (const { size, bytes } of vm.hugepageDemand ?? []) demand({ vmid: vm.vmid, size }, bytes);
    perVm('vfio_vm_pending_memory_configured_bytes', 'Guest RAM that applies at next start (Proxmox [PENDING]).', (vm) => vm.pending?.memoryConfiguredBytes);
    perVm('vfio_vm_pending_memory_balloon_min_bytes', 'Balloon floor that applies at next start (Proxmox [PENDING]); 0 when ballooning will be off.', (vm) => vm.pending?.balloonMinBytes);
    perVm('vfio_vm_scrape_error', "1 when some of the VM's files (config, pid file, /proc/<pid>) could not be read or understood in the last sample, or gave no answer in time.", (vm) => bool(vm.readErrors.length > 0));
    perVm('vfio_vm_config_parse_errors', "Problems with the VM's config in the last sample: lines not understood, unresolved PCI mappings, 1 when unreadable.", (vm) => vm.configProblems);
  },
};
