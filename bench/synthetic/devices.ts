import type { FixtureDevice, FixturePciHealth } from '../../test/fixtures/build-hosts.js';

/**
 * The PCI tree of a two-socket SR-IOV host: chipset, one host bridge and root ports per socket, a NIC
 * physical function behind each root port and its virtual functions beside it. Every device has an
 * IOMMU group of its own (ACS-capable root ports), except the chipset's multi-function devices.
 */

interface NicModel {
  vendor: string;
  pf: string;
  vf: string;
  subsystem: [string, string];
  revision: string;
  pfDriver: string;
  /** The host's VF driver: a VF not handed to a VM is a host netdev. */
  vfDriver: string;
}

const connectX6Dx: NicModel = { vendor: '15b3', pf: '101d', vf: '101e', subsystem: ['15b3', '0016'], revision: '00', pfDriver: 'mlx5_core', vfDriver: 'mlx5_core' };
const e810: NicModel = { vendor: '8086', pf: '1592', vf: '1889', subsystem: ['8086', '0002'], revision: '02', pfDriver: 'ice', vfDriver: 'iavf' };

const intel = '8086';
const supermicro = '15d9';
const board: [string, string] = [supermicro, '0952'];

const hex2 = (value: number): string => value.toString(16).padStart(2, '0');
const shortAddress = (bus: number, device: number, fn: number): string => `${hex2(bus)}:${hex2(device)}.${fn}`;

/** SR-IOV routing ids: First VF Offset 2, VF Stride 1 (ConnectX and E810 with ARI); past devfn 0xff they spill to the next bus. */
const vfAddress = (pfBus: number, index: number): string => {
  const routingId = 2 + index;
  const devfn = routingId & 0xff;
  return shortAddress(pfBus + (routingId >> 8), devfn >> 3, devfn & 7);
};

export interface SriovLayout {
  /** Chipset, host bridges, root ports and physical functions, with their drivers. */
  platform: FixtureDevice[];
  /** Virtual functions without a driver yet: which VM owns a VF decides it. */
  virtualFunctions: FixtureDevice[];
  hostVfDriver: Map<string, string>;
}

export function sriovLayout(physicalFunctions: number, vfsPerPf: number): SriovLayout {
  if (vfsPerPf > 510) throw new Error('a PF here spans two buses: at most 510 VFs');
  let nextGroup = 0;
  const group = (): number => nextGroup++;
  const chipsetGroup = group();
  const platform: FixtureDevice[] = [
    { address: '00:00.0', vendor: intel, device: '2020', subsystem: board, classId: '060000', revision: '07', numaNode: 0, iommuGroup: group() },
    { address: '00:11.5', vendor: intel, device: 'a1d2', subsystem: board, classId: '010601', revision: '09', driver: 'ahci', numaNode: 0, iommuGroup: group() },
    { address: '00:14.0', vendor: intel, device: 'a1af', subsystem: board, classId: '0c0330', revision: '09', driver: 'xhci_hcd', numaNode: 0, iommuGroup: group() },
    { address: '00:1c.0', vendor: intel, device: 'a190', subsystem: board, classId: '060400', revision: 'f9', driver: 'pcieport', numaNode: 0, iommuGroup: group() },
    { address: '02:00.0', vendor: '1a03', device: '1150', subsystem: ['1a03', '1150'], classId: '060400', revision: '04', numaNode: 0, iommuGroup: group(), parent: '00:1c.0' },
    { address: '03:00.0', vendor: '1a03', device: '2000', subsystem: board, classId: '030000', revision: '41', driver: 'ast', numaNode: 0, iommuGroup: group(), parent: '02:00.0' },
    { address: '00:1f.0', vendor: intel, device: 'a1c1', subsystem: board, classId: '060100', revision: '09', numaNode: 0, iommuGroup: chipsetGroup },
    { address: '00:1f.2', vendor: intel, device: 'a1a1', subsystem: board, classId: '058000', revision: '09', numaNode: 0, iommuGroup: chipsetGroup },
    { address: '00:1f.4', vendor: intel, device: 'a1a3', subsystem: board, classId: '0c0500', revision: '09', driver: 'i801_smbus', numaNode: 0, iommuGroup: chipsetGroup },
    { address: '80:00.0', vendor: intel, device: '2020', subsystem: board, classId: '060000', revision: '07', numaNode: 1, iommuGroup: group() },
  ];
  const virtualFunctions: FixtureDevice[] = [];
  const hostVfDriver = new Map<string, string>();
  for (let index = 0; index < physicalFunctions; index++) {
    // Half the NICs on each socket; ConnectX-6 Dx on even slots, E810 on odd ones.
    const numaNode = index < physicalFunctions / 2 ? 0 : 1;
    const slot = numaNode === 0 ? index : index - Math.ceil(physicalFunctions / 2);
    const rootBus = numaNode === 0 ? 0x00 : 0x80;
    const nic = index % 2 === 0 ? connectX6Dx : e810;
    const rootPort = shortAddress(rootBus, 2 + (slot >> 2), slot & 3);
    platform.push({
      address: rootPort, vendor: intel, device: (0x2030 + (slot & 3)).toString(16), subsystem: board, classId: '060400', revision: '07',
      driver: 'pcieport', numaNode, iommuGroup: group(),
    });
    const pfBus = rootBus + 0x10 + 2 * slot;
    const pf = shortAddress(pfBus, 0, 0);
    platform.push({
      address: pf, vendor: nic.vendor, device: nic.pf, subsystem: nic.subsystem, classId: '020000', revision: nic.revision,
      driver: nic.pfDriver, numaNode, iommuGroup: group(), parent: rootPort,
    });
    for (let vf = 0; vf < vfsPerPf; vf++) {
      const address = vfAddress(pfBus, vf);
      hostVfDriver.set(address, nic.vfDriver);
      virtualFunctions.push({
        address, vendor: nic.vendor, device: nic.vf, subsystem: nic.subsystem, classId: '020000', revision: nic.revision,
        numaNode, iommuGroup: group(), parent: rootPort, physfn: pf,
      });
    }
  }
  return { platform, virtualFunctions, hostVfDriver };
}

/**
 * Binds the VFs: those a VM config names go to vfio-pci with driver_override set (how Proxmox
 * hookscripts and `driverctl` pin them); every eighth other VF is left unbound, the rest stay on the host driver.
 */
export function bindVirtualFunctions(layout: SriovLayout, assigned: ReadonlySet<string>): FixtureDevice[] {
  return layout.virtualFunctions.map((vf, index) => {
    if (assigned.has(vf.address)) return { ...vf, driver: 'vfio-pci', driverOverride: 'vfio-pci' };
    if (index % 8 === 7) return vf;
    return { ...vf, driver: layout.hostVfDriver.get(vf.address)! };
  });
}

/**
 * The health attributes a 6.x kernel shows for this tree: root ports and NIC physical functions have AER
 * (root ports count the messages from below), PFs their SR-IOV counts; VFs and PFs reset by FLR, root
 * ports and chipset functions by power management. VFs have no AER capability here.
 */
export function pciHealthOf(layout: SriovLayout, vfsPerPf: number): Record<string, FixturePciHealth> {
  const health: Record<string, FixturePciHealth> = {};
  const physicalFunctions = new Set(layout.virtualFunctions.map((vf) => vf.physfn!));
  for (const device of layout.platform) {
    if (device.driver === 'pcieport') health[device.address] = { resetMethod: 'pm', aer: {}, rootPort: {} };
    else if (physicalFunctions.has(device.address)) health[device.address] = { resetMethod: 'flr', aer: {}, sriov: { totalVfs: vfsPerPf, numVfs: vfsPerPf } };
    else if (device.driver !== undefined) health[device.address] = { resetMethod: 'pm' };
  }
  for (const vf of layout.virtualFunctions) health[vf.address] = { resetMethod: 'flr' };
  return health;
}
