import { access, readdir } from 'node:fs/promises';
import { errorMessage, isMissing, listDir } from '../host/fs.js';
import { sysPath } from '../host/paths.js';
import { readPciBus } from '../host/pci-bus.js';
import { groupViability, type IommuMember } from '../parse/iommu.js';
import type { CollectorDefinition } from './types.js';

export interface IommuGroup {
  id: string;
  members: IommuMember[];
  /** Members that keep VFIO from accepting the group: endpoints on host drivers. */
  blocking: IommuMember[];
  /** Undefined when a member could not be read and no other member blocks the group. */
  viable: boolean | undefined;
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

/** The group whose `devices/` directory lists `address`, for a device whose own `iommu_group` link could not be read. */
async function groupListing(groupsDir: string, groupIds: readonly string[], address: string): Promise<string | undefined> {
  for (const id of groupIds) if ((await readdir(`${groupsDir}/${id}/devices`).catch((): string[] => [])).includes(address)) return id;
  return undefined;
}

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
        const groupsDir = sysPath(paths, 'kernel/iommu_groups');
        const groupIds = (await listDir(groupsDir)).filter((name) => /^\d+$/.test(name));
        for (const id of groupIds) membersById.set(id, []);
        // Membership from each device's `iommu_group` link, the other side of the group's `devices/` links:
        // the bus is read once per sample for pci and iommu, where listing every group costs a read each.
        const bus = await readPciBus(paths, context);
        // Nothing changed since these facts were made: the same facts again, whose text the sampler keeps.
        if (last?.generation === bus.generation && last.groupIds === groupIds.join()) return { facts: last.facts, errors };
        const addMember = (iommuGroup: string | undefined, member: IommuMember): void => {
          if (iommuGroup === undefined) return;
          const members = membersById.get(iommuGroup) ?? [];
          membersById.set(iommuGroup, members);
          members.push(member);
        };
        for (const { address, classId, driver, iommuGroup } of bus.devices) addMember(iommuGroup, { address, classId, driver, driverKnown: true });
        // A device only partly read still belongs to its group: left out, it would make the group read viable.
        for (const failure of bus.failures) {
          if (isMissing(failure.error)) continue;
          errors.push(`PCI device ${failure.address}: ${errorMessage(failure.error)}`);
          const group = failure.iommuGroup.ok ? failure.iommuGroup.value : await groupListing(groupsDir, groupIds, failure.address);
          addMember(group, {
            address: failure.address,
            classId: failure.classId.ok ? failure.classId.value : undefined,
            driver: failure.driver.ok ? failure.driver.value : undefined,
            driverKnown: failure.driver.ok,
          });
        }
        const groups: IommuGroup[] = [...membersById.keys()].sort(byNumericId).map((id) => {
          const members = membersById.get(id)!;
          const previous = built.get(id);
          return previous && sameMembers(previous.members, members) ? previous : { id, members, ...groupViability(members) };
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
      '1 when VFIO would accept the IOMMU group now: no endpoint in it is bound to a host driver. Absent when a member could not be read.',
      ['iommu_group'],
    );
    for (const group of groups)
      sink.group(group, () => {
        size({ iommu_group: group.id }, group.members.length);
        if (group.viable !== undefined) viable({ iommu_group: group.id }, group.viable ? 1 : 0);
      });
  },
};
