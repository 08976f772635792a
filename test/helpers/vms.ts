import type { Vm } from '../../src/collectors/vm-types.js';

/** A VM as the vm collector reports it, with only what a test cares about set. */
export function vm(vmid: string, overrides: Partial<Vm> = {}, process?: { pid: number; comm?: string; cgroupPath?: string }): Vm {
  return {
    vmid,
    name: vmid,
    source: 'proxmox',
    running: process !== undefined,
    startOnBoot: false,
    template: false,
    memoryConfiguredBytes: undefined,
    balloonEnabled: false,
    balloonMinBytes: undefined,
    hugepages: undefined,
    hugepageDemand: undefined,
    pending: undefined,
    configProblems: 0,
    configUnreadable: false,
    readErrors: [],
    devices: [],
    mdevs: [],
    process: process && {
      pid: process.pid,
      comm: process.comm ?? 'kvm',
      rssBytes: 0,
      lockedBytes: 0,
      cgroupPath: process.cgroupPath,
      cgroupMemoryBytes: undefined,
      cgroupMemoryPath: undefined,
    },
    qmp: undefined,
    ...overrides,
  };
}
