import { access } from 'node:fs/promises';
import { errorMessage, isMissing, listDir } from '../host/fs.js';
import { sysPath } from '../host/paths.js';
import { readPciClass, readPciDriver } from '../host/sysfs-pci.js';
import { blockingMembers, type IommuMember } from '../parse/iommu.js';
import { isPciAddress } from '../parse/sysfs.js';
import type { CollectorDefinition } from './types.js';

export interface IommuGroup {
  id: string;
  members: IommuMember[];
  /** Members that keep VFIO from accepting the group: endpoints on host drivers. */
  blocking: IommuMember[];
}

export interface IommuFacts {
  enabled: boolean;
  groups: IommuGroup[];
}

declare module './types.js' {
  interface FactsByCollector {
    iommu: IommuFacts;
  }
}

const byNumericId = (a: string, b: string): number => Number(a) - Number(b) || a.localeCompare(b);

export const iommuCollector: CollectorDefinition<'iommu'> = {
  name: 'iommu',
  description: 'IOMMU groups: membership and whether VFIO would accept each group',
  defaultEnabled: true,
  create() {
    return {
      async collect({ paths }) {
        // No sysfs `kernel` directory means a wrong --path.sysfs, not a host without IOMMU: fail rather than say "disabled".
        await access(sysPath(paths, 'kernel'));
        const groupsDir = sysPath(paths, 'kernel/iommu_groups');
        const errors: string[] = [];
        const groups: IommuGroup[] = [];
        for (const id of (await listDir(groupsDir)).filter((name) => /^\d+$/.test(name)).sort(byNumericId)) {
          const members: IommuMember[] = [];
          for (const address of (await listDir(sysPath(paths, 'kernel/iommu_groups', id, 'devices'))).filter(isPciAddress)) {
            try {
              const [classId, driver] = await Promise.all([readPciClass(paths, address), readPciDriver(paths, address)]);
              members.push({ address, classId, driver });
            } catch (error) {
              if (!isMissing(error)) errors.push(`iommu group ${id} device ${address}: ${errorMessage(error)}`);
            }
          }
          groups.push({ id, members, blocking: blockingMembers(members) });
        }
        return { facts: { enabled: groups.length > 0, groups }, errors };
      },
    };
  },
  render({ enabled, groups }, sink) {
    sink.gauge('vfio_iommu_enabled', '1 when the kernel has IOMMU groups (IOMMU on and in use).')({}, enabled ? 1 : 0);
    const size = sink.gauge('vfio_iommu_group_devices', 'Number of devices in the IOMMU group.', ['iommu_group']);
    const viable = sink.gauge(
      'vfio_iommu_group_viable',
      '1 when VFIO would accept the IOMMU group now: no endpoint in it is bound to a host driver.',
      ['iommu_group'],
    );
    for (const group of groups) {
      size({ iommu_group: group.id }, group.members.length);
      viable({ iommu_group: group.id }, group.blocking.length === 0 ? 1 : 0);
    }
  },
};
