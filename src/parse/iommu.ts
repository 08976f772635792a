/** Whether VFIO would accept an IOMMU group, from the drivers of its members. */

export interface IommuMember {
  address: string;
  /** Undefined when the device's class could not be read. */
  classId: string | undefined;
  /** Bound driver; undefined when unbound. */
  driver: string | undefined;
  /** False when the device's driver link could not be read: `driver` then says nothing. */
  driverKnown: boolean;
}

/** Drivers VFIO tolerates on other group members (drivers/vfio/group.c, `vfio_driver_allowed`). */
const allowedDrivers = new Set(['pci-stub']);

/** PCI-to-PCI bridges (0x0604) and semi-transparent bridges (0x0609); VFIO ignores bridges' drivers. */
export const isPciBridgeClass = (classId: string): boolean => /^0x060[49]/.test(classId);

const onHostDriver = (member: IommuMember): boolean =>
  member.driver !== undefined && !member.driver.includes('vfio') && !allowedDrivers.has(member.driver);

export interface GroupViability {
  /** Endpoints known to be bound to a host driver. */
  blocking: IommuMember[];
  /** True: VFIO would accept the group; undefined: a member that could not be read may block it. */
  viable: boolean | undefined;
}

/**
 * The kernel refuses a group ("group is not viable") while any endpoint in it is bound to a host
 * driver; devices on a vfio driver, on pci-stub or on no driver are fine, and bridges are skipped.
 * A member whose driver, or whose class while on a host driver, is unknown leaves the verdict unknown
 * unless another member already blocks the group.
 */
export function groupViability(members: readonly IommuMember[]): GroupViability {
  const blocking = members.filter((member) => member.driverKnown && onHostDriver(member) && member.classId !== undefined && !isPciBridgeClass(member.classId));
  const unknown = members.some((member) => !member.driverKnown || (onHostDriver(member) && member.classId === undefined));
  return { blocking, viable: blocking.length > 0 ? false : unknown ? undefined : true };
}
