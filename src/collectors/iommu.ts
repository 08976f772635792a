import { access } from 'node:fs/promises';
import { errorMessage, isMissing, listDir } from '../host/fs.js';
import { sysPath } from '../host/paths.js';
import { readPciBus } from '../host/pci-bus.js';
import { blockingMembers, type IommuMember } from '../parse/iommu.js';
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

const sameMembers = (a: readonly IommuMember[], b: readonly IommuMember[]): boolean =>
  a.length === b.length && a.every((member, index) => member.address === b[index]!.address && member.classId === b[index]!.classId && member.driver === b[index]!.driver);

export const iommuCollector: CollectorDefinition<'iommu'> = {
  name: 'iommu',
  description: 'IOMMU groups: membership and whether VFIO would accept each group',
  defaultEnabled: true,
  create() {
    let last: { generation: number; groupIds: string; facts: IommuFacts } | undefined;
    // Each group as last built: one whose members read as before is the same object again, so that its
    // series are replayed rather than formatted.
    let built = new Map<string, IommuGroup>();
    return {
      async collect(context) {
        const { paths } = context;
        // No sysfs `kernel` directory means a wrong --path.sysfs, not a host without IOMMU: fail rather than say "disabled".
        await access(sysPath(paths, 'kernel'));
        const errors: string[] = [];
        const membersById = new Map<string, IommuMember[]>();
        const groupIds = (await listDir(sysPath(paths, 'kernel/iommu_groups'))).filter((name) => /^\d+$/.test(name));
        for (const id of groupIds) membersById.set(id, []);
        // Membership from each device's `iommu_group` link, the other side of the group's `devices/` links:
        // the bus is read once per sample for pci and iommu, where listing every group costs a read each.
        const bus = await readPciBus(paths, context);
        // Nothing changed since these facts were made: the same facts again, whose text the sampler keeps.
        if (last?.generation === bus.generation && last.groupIds === groupIds.join()) return { facts: last.facts, errors };
        for (const { address, error } of bus.failures) if (!isMissing(error)) errors.push(`PCI device ${address}: ${errorMessage(error)}`);
        for (const { address, classId, driver, iommuGroup } of bus.devices) {
          if (iommuGroup === undefined) continue;
          const members = membersById.get(iommuGroup) ?? [];
          membersById.set(iommuGroup, members);
          members.push({ address, classId, driver });
        }
        const groups: IommuGroup[] = [...membersById.keys()].sort(byNumericId).map((id) => {
          const members = membersById.get(id)!;
          const previous = built.get(id);
          return previous && sameMembers(previous.members, members) ? previous : { id, members, blocking: blockingMembers(members) };
        });
        built = new Map(groups.map((group) => [group.id, group]));
        const facts = { enabled: groups.length > 0, groups };
        last = errors.length === 0 ? { generation: bus.generation, groupIds: groupIds.join(), facts } : undefined;
        return { facts, errors };
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
    for (const group of groups)
      sink.group(group, () => {
        size({ iommu_group: group.id }, group.members.length);
        viable({ iommu_group: group.id }, group.blocking.length === 0 ? 1 : 0);
      });
  },
};
