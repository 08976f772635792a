import type { BoundedReads } from '../host/bounded-reads.js';
import { errorMessage, fileErrorMessage, maxTextFileBytes } from '../host/fs.js';
import {
  definedDomainFile,
  isAutostart,
  libvirtPidFile,
  listDefinedDomains,
  listRunningDomains,
  runningDomainFile,
} from '../host/libvirt.js';
import { readConfigText } from '../host/config-file.js';
import { listPveVmids, pveConfigFile, pveNodeName, pvePidFile, readPciMappingText } from '../host/pve.js';
import type { HostPaths } from '../host/paths.js';
import type { Logger } from '../log.js';
import { hugepageSizeLabel, type GuestPageSize, type HugepageGuestNode } from '../parse/hugepages.js';
import type { LibvirtDomain } from '../parse/libvirt-domain.js';
import { expandHostPciId, parsePveConfig, pendingMemoryAtNextStart, type PveVmConfig } from '../parse/pve-config.js';
import { mappedPciAlternatives, parsePciMappingConfig, type ParsedPciMappings } from '../parse/pve-pci-mapping.js';
import type { Vm, VmPassthroughDevice } from './vm-types.js';

/** A VM as its config describes it, before processes and QMP are looked at. */
export interface ConfiguredVm {
  vm: Omit<Vm, 'running' | 'process' | 'qmp' | 'hugepageDemand'>;
  /** Pid file whose process, when it is a live QEMU for this VM, means the VM runs. */
  pidFile: string;
  /** libvirt's `<domstatus pid>`, used when the pid file is missing. */
  statusPid: number | undefined;
  /** Guest NUMA nodes on hugepages, to resolve against the host's pools. */
  hugepageNodes: HugepageGuestNode[] | undefined;
}

export interface ConfigRead {
  vms: ConfiguredVm[];
  errors: string[];
}

const MiB = 1024 * 1024;

const proxmoxHugepages: Record<string, string> = { '2': '2M', '1024': '1G', any: 'any' };
const proxmoxPageSize: Record<string, GuestPageSize> = { '2': 2 * MiB, '1024': 1024 * MiB, any: 'any' };

/** Hugepage sizes as the `size` label shows them: `2M`, `1G`, `default`, `<n>K` for other sizes; `1G+2M` when NUMA nodes differ. */
const hugepageLabel = (sizes: 'default' | number[]): string => (sizes === 'default' ? sizes : sizes.map(hugepageSizeLabel).join('+'));

/**
 * Guest NUMA nodes as qemu-server sizes them for hugepages (PVE::QemuServer::Memory `hugepages_topology`): the
 * `numa<N>` entries, or the memory split evenly across `sockets` nodes. The next start's memory counts.
 */
function proxmoxHugepageNodes(config: PveVmConfig, memoryMiB: number | undefined): HugepageGuestNode[] | undefined {
  const page = config.hugepages === undefined ? undefined : proxmoxPageSize[config.hugepages];
  if (page === undefined || memoryMiB === undefined) return undefined;
  const nodesMiB = config.numaNodeMemoryMiB.length > 0 ? config.numaNodeMemoryMiB : Array.from({ length: config.sockets }, () => memoryMiB / config.sockets);
  return nodesMiB.map((mib) => ({ memoryBytes: mib * MiB, page }));
}

/** Remembers which problems were logged per file, so an unchanged bad config warns once, not every sample. */
export class ProblemMemo {
  private readonly logged = new Map<string, string>();

  warnOnce(log: Logger, file: string, problems: readonly ConfigProblem[]): void {
    const signature = problems.map((problem) => `${problem.line}:${problem.message}`).join('\n');
    if (this.logged.get(file) === signature) return;
    this.logged.set(file, signature);
    for (const problem of problems) log.warn('VM config problem; line ignored', { collector: 'vm', file, line: problem.line, err: problem.message });
  }
}

interface ConfigProblem {
  line: number;
  message: string;
}

const emptyVm = (vmid: string, source: Vm['source']): ConfiguredVm['vm'] => ({
  vmid,
  name: '',
  source,
  startOnBoot: false,
  template: false,
  memoryConfiguredBytes: undefined,
  balloonEnabled: false,
  balloonMinBytes: undefined,
  hugepages: undefined,
  pending: undefined,
  devices: [],
  mdevs: [],
  configProblems: 1,
  configUnreadable: true,
  readErrors: [],
});

/**
 * The host devices each hostpci slot gets, chosen as PVE::QemuServer::PCI `choose_hostpci_devices` does at
 * start: slots in order, a mapping's first alternative (`map` line for this node) none of whose functions an
 * earlier slot of this VM took. Which free device another VM's reservation leaves is known only at start.
 */
function proxmoxDevices(config: PveVmConfig, context: ProxmoxContext, problems: ConfigProblem[]): VmPassthroughDevice[] {
  const devices: VmPassthroughDevice[] = [];
  const used = new Set<string>();
  const expand = (ids: string[]): string[] => ids.flatMap((id) => expandHostPciId(id, context.presentAddresses));
  for (const { slot, line, hostIds, mapping } of config.hostPci) {
    let addresses = expand(hostIds);
    if (mapping !== undefined) {
      const alternatives = context.node === undefined ? undefined : mappedPciAlternatives(context.mappings, mapping, context.node);
      if (alternatives === undefined) {
        problems.push({ line, message: `${slot}: PCI mapping '${mapping}' has no device for node '${context.node ?? '?'}'` });
        continue;
      }
      const candidates = alternatives.map(expand);
      const free = candidates.length === 1 ? candidates[0] : candidates.find((candidate) => candidate.every((address) => !used.has(address)));
      if (free === undefined) {
        problems.push({ line, message: `${slot}: every device of PCI mapping '${mapping}' is taken by an earlier slot` });
        continue;
      }
      addresses = free;
    }
    const twice = addresses.find((address) => used.has(address));
    // qemu-server dies "device ... assigned more than once": the VM does not start.
    if (twice !== undefined) problems.push({ line, message: `${slot}: ${twice} is assigned more than once` });
    for (const pciAddress of addresses.filter((address) => !used.has(address))) {
      used.add(pciAddress);
      devices.push({ pciAddress, slot, present: undefined });
    }
  }
  return devices;
}

const mibToBytes = (mib: number | undefined): number | undefined => (mib === undefined ? undefined : mib * MiB);

/** Absent `balloon:` keeps the balloon device with its floor at `memory`; `balloon: 0` removes the device. */
const balloonFloorBytes = (balloonMiB: number | undefined, memoryMiB: number | undefined): number | undefined =>
  balloonMiB === 0 ? 0 : mibToBytes(balloonMiB ?? memoryMiB);

export interface ProxmoxVmRead {
  vm: ConfiguredVm['vm'];
  hugepageNodes: HugepageGuestNode[] | undefined;
  problems: ConfigProblem[];
}

/** One Proxmox config as the collector reports it: parsed, PCI mappings resolved for this node. */
export function proxmoxVm(vmid: string, text: string, context: ProxmoxContext): ProxmoxVmRead {
  const { current, pending, problems } = parsePveConfig(text);
  const mappingProblems: ConfigProblem[] = [];
  const next = pending === undefined ? undefined : pendingMemoryAtNextStart(current, pending);
  return {
    vm: {
      vmid,
      name: current.name ?? '',
      source: 'proxmox',
      startOnBoot: current.onBoot,
      template: current.template,
      memoryConfiguredBytes: mibToBytes(current.memoryMiB),
      balloonEnabled: current.balloonMiB !== 0,
      balloonMinBytes: current.balloonInvalid ? undefined : balloonFloorBytes(current.balloonMiB, current.memoryMiB),
      hugepages: current.hugepages === undefined ? undefined : proxmoxHugepages[current.hugepages],
      pending: next && { memoryConfiguredBytes: mibToBytes(next.memoryMiB), balloonMinBytes: balloonFloorBytes(next.balloonMiB, next.memoryMiB) },
      devices: proxmoxDevices(current, context, mappingProblems),
      mdevs: [],
      configProblems: problems.length + mappingProblems.length,
      configUnreadable: false,
      readErrors: [],
    },
    hugepageNodes: proxmoxHugepageNodes(current, next === undefined ? current.memoryMiB : next.memoryMiB),
    problems: [...problems, ...mappingProblems].sort((a, b) => a.line - b.line),
  };
}

export interface ProxmoxContext {
  node: string | undefined;
  mappings: ParsedPciMappings['mappings'];
  presentAddresses: readonly string[];
}

/** This node's Proxmox VMs, and the node's name. One unreadable config is an error for that VM only. */
export async function readProxmoxVms(
  paths: HostPaths,
  presentAddresses: readonly string[],
  log: Logger,
  memo: ProblemMemo,
  reads: BoundedReads,
): Promise<ConfigRead & { node: string | undefined }> {
  const vmids = await listPveVmids(paths);
  const errors: string[] = [];
  const vms: ConfiguredVm[] = [];
  if (vmids.length === 0) return { vms, errors, node: undefined };
  const node = await pveNodeName(paths);
  let mappings: ParsedPciMappings['mappings'] = new Map();
  try {
    const mappingText = await readPciMappingText(paths);
    if (mappingText !== undefined) {
      const parsed = parsePciMappingConfig(mappingText);
      memo.warnOnce(log, 'etc/pve/mapping/pci.cfg', parsed.problems);
      mappings = parsed.mappings;
    }
  } catch (error) {
    errors.push(`PCI mappings: ${errorMessage(error)}`);
  }
  const context: ProxmoxContext = { node, mappings, presentAddresses };
  // All configs at once (the thread pool bounds how many run): one after the other, each read cost its own wake-ups of the event loop.
  const texts = await Promise.all(
    vmids.map((vmid) =>
      reads.run(pveConfigFile(paths, vmid), () => readConfigText(pveConfigFile(paths, vmid))).then(
        (text) => ({ text, error: undefined }),
        (error: unknown) => ({ text: undefined, error }),
      ),
    ),
  );
  vmids.forEach((vmid, index) => {
    const file = pveConfigFile(paths, vmid);
    const pidFile = pvePidFile(paths, vmid);
    const { text, error: readError } = texts[index]!;
    try {
      if (text === undefined) throw readError;
      const { vm, hugepageNodes, problems } = proxmoxVm(vmid, text, context);
      memo.warnOnce(log, file, problems);
      vms.push({ vm, pidFile, statusPid: undefined, hugepageNodes });
    } catch (error) {
      const message = `VM ${vmid}: ${errorMessage(error)}`;
      errors.push(message);
      vms.push({ vm: { ...emptyVm(vmid, 'proxmox'), readErrors: [message] }, pidFile, statusPid: undefined, hugepageNodes: undefined });
    }
  });
  return { vms, errors, node };
}

export function libvirtVm(domain: LibvirtDomain, startOnBoot: boolean): ConfiguredVm['vm'] {
  return {
    vmid: domain.name,
    name: domain.name,
    source: 'libvirt',
    startOnBoot,
    template: false,
    memoryConfiguredBytes: domain.memoryBytes,
    balloonEnabled: domain.balloonEnabled,
    // libvirt has no auto-balloon floor; the guest starts at <currentMemory>.
    balloonMinBytes: domain.balloonEnabled ? domain.currentMemoryBytes : 0,
    hugepages: domain.hugepages === undefined ? undefined : hugepageLabel(domain.hugepages),
    pending: undefined,
    devices: domain.hostdevs.map((pciAddress, index) => ({ pciAddress, slot: `hostdev${index}`, present: undefined })),
    mdevs: [],
    configProblems: 0,
    configUnreadable: false,
    readErrors: [],
  };
}

/**
 * libvirt domains: a running one from its status XML (the live definition), else its defined XML.
 * One unreadable domain is an error for that domain only.
 */
export async function readLibvirtVms(paths: HostPaths, reads: BoundedReads): Promise<ConfigRead> {
  const [defined, running] = await Promise.all([listDefinedDomains(paths), listRunningDomains(paths)]);
  const errors: string[] = [];
  const vms: ConfiguredVm[] = [];
  const names = [...new Set([...defined, ...running])].sort();
  if (names.length === 0) return { vms, errors };
  // The XML parser is loaded on a libvirt host only: a Proxmox host never holds it in memory.
  const { parseLibvirtDomain, parseLibvirtStatus } = await import('../parse/libvirt-domain.js');
  for (const name of names) {
    const pidFile = libvirtPidFile(paths, name);
    const failures: string[] = [];
    let domain: LibvirtDomain | undefined;
    let statusPid: number | undefined;
    if (running.includes(name)) {
      try {
        // Status XML carries the QEMU capabilities too: it may outgrow a config.
        const file = runningDomainFile(paths, name);
        const status = parseLibvirtStatus(await reads.run(file, () => readConfigText(file, maxTextFileBytes)));
        domain = status.domain;
        statusPid = status.pid;
      } catch (error) {
        failures.push(fileErrorMessage(runningDomainFile(paths, name), error));
      }
    }
    if (domain === undefined && defined.includes(name)) {
      try {
        const file = definedDomainFile(paths, name);
        domain = parseLibvirtDomain(await reads.run(file, () => readConfigText(file)));
      } catch (error) {
        failures.push(fileErrorMessage(definedDomainFile(paths, name), error));
      }
    }
    const readErrors = failures.map((failure) => `domain ${name}: ${failure}`);
    errors.push(...readErrors);
    const vm = domain === undefined ? { ...emptyVm(name, 'libvirt'), name } : libvirtVm(domain, await isAutostart(paths, name));
    vms.push({ vm: { ...vm, configProblems: failures.length, readErrors }, pidFile, statusPid, hugepageNodes: domain?.hugepageNodes });
  }
  return { vms, errors };
}
