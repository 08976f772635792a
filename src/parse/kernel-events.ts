/**
 * Kernel log lines that mean trouble for PCI passthrough, other than OOM kills. Formats from the kernel
 * sources named beside each pattern; samples in test/fixtures/kmsg/.
 */

export const kernelEventKinds = ['vfio_pin_failed', 'iommu_fault', 'group_not_viable', 'bar_reserve_failed'] as const;
export type KernelEventKind = (typeof kernelEventKinds)[number];

// drivers/vfio/vfio_iommu_type1.c: `vfio_pin_pages_remote: RLIMIT_MEMLOCK (N) exceeded` (vfio_pin_pages before 4.10),
// `vfio_pin_page_external: Task <comm> (<pid>) RLIMIT_MEMLOCK (N) exceeded`. iommufd refuses silently (pages.c).
const vfioPinFailed = /^vfio_\w+: (?:Task .* \(\d+\) )?RLIMIT_MEMLOCK \(\d+\) exceeded/;
// drivers/iommu/intel/dmar.c, dmar_fault_do_one: `DMAR: [DMA Read NO_PASID] Request device [01:00.0] fault addr 0x…`,
// 4.x `DMAR: [DMA Write] Request device [..] fault addr …`, `DMAR: [INTR-REMAP] Request device [..] fault index …`.
const dmarFault = /^DMAR: ?\[(?:DMA Read|DMA Write|INTR-REMAP)[^\]]*\] Request device \[/;
// dmar_fault: `DMAR: DRHD: handling fault status reg <hex>`; each primary fault (PPF, bit 1) gets its own line
// above, so the header only counts when it reports something else (overflow, invalidation errors).
const dmarStatus = /^DMAR: ?DRHD: handling fault status reg ([0-9a-fA-F]+)/;
const primaryPendingFault = 0x2;
// drivers/iommu/amd/iommu.c: `[<driver> <device>: ]AMD-Vi: Event logged [IO_PAGE_FAULT domain=… address=… flags=…]`, and
// the other event types (ILLEGAL_DEV_TABLE_ENTRY, INVALID_DEVICE_REQUEST…) in the same form.
const amdViEvent = 'AMD-Vi: Event logged [';
// drivers/pci/pci.c __pci_request_region: `<driver> <device>: BAR N: can't reserve [mem …]`; pci_enable_resources:
// `device not available (can't reserve [mem …])`. Counted for vfio drivers: the BAR QEMU needs is held by someone else
// (typically efifb/simplefb on a GPU's framebuffer).
const barReserveFailed = /^\S*vfio\S* [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]: (?:BAR \d+: can't reserve|device not available \(can't reserve)/;
// drivers/vfio/vfio.c (before 5.19): a device joining a group in use, which makes it unviable.
const deviceAddedToLiveGroup = /added to live group \d+!/;
// QEMU hw/vfio: `vfio 0000:01:00.0: group 1 is not viable` (older `vfio: error, group 1 is not viable, please ensure …`).
// The kernel does not print this itself; it reaches the kernel log only when forwarded from user space.
const qemuGroupNotViable = /\bgroup \d+ is not viable\b/;

/**
 * The kind of passthrough trouble a kernel log message reports, or undefined. `fromKernel` is false for
 * records user space wrote to /dev/kmsg: only QEMU's own "group is not viable" is believed from there.
 */
export function classifyKernelEvent(message: string, fromKernel: boolean): KernelEventKind | undefined {
  if (fromKernel) {
    if (message.includes('RLIMIT_MEMLOCK') && vfioPinFailed.test(message)) return 'vfio_pin_failed';
    if (message.startsWith('DMAR:')) {
      if (dmarFault.test(message)) return 'iommu_fault';
      const status = dmarStatus.exec(message);
      if (status && (parseInt(status[1]!, 16) & primaryPendingFault) === 0) return 'iommu_fault';
      return undefined;
    }
    if (message.includes(amdViEvent)) return 'iommu_fault';
    if (message.includes("can't reserve") && barReserveFailed.test(message)) return 'bar_reserve_failed';
    if (message.includes('live group') && deviceAddedToLiveGroup.test(message)) return 'group_not_viable';
  }
  if (message.includes('not viable') && qemuGroupNotViable.test(message)) return 'group_not_viable';
  return undefined;
}
