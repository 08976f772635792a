/** Whether VFIO would accept an IOMMU group, from the drivers of its members. */

export interface IommuMember {
  address: string;
  classId: string;
  driver: string | undefined;
}

/** Drivers VFIO tolerates on other group members (drivers/vfio/group.c, `vfio_driver_allowed`). */
const allowedDrivers = new Set(['pci-stub']);

/** PCI-to-PCI bridges (0x0604) and semi-transparent bridges (0x0609); VFIO ignores bridges' drivers. */
export const isPciBridgeClass = (classId: string): boolean => /^0x060[49]/.test(classId);

/**
 * The kernel refuses a group ("group is not viable") while any endpoint in it is bound to a host
 * driver; devices on a vfio driver, on pci-stub or on no driver are fine, and bridges are skipped.
 */
export function blockingMembers(members: readonly IommuMember[]): IommuMember[] {
  return members.filter(
    (member) =>
      member.driver !== undefined &&
      !member.driver.includes('vfio') &&
      !allowedDrivers.has(member.driver) &&
      !isPciBridgeClass(member.classId),
  );
}
