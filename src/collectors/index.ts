import { bootBindingCollector } from './boot-binding.js';
import { disksCollector } from './disks.js';
import { hostCollector } from './host.js';
import { iommuCollector } from './iommu.js';
import { memoryCollector } from './memory.js';
import { oomCollector } from './oom.js';
import { pciCollector } from './pci.js';
import { pciHealthCollector } from './pci-health.js';
import type { AnyCollectorDefinition } from './types.js';
import { vmCollector } from './vm.js';

/** Every collector, in the order their series appear on /metrics. */
export const allCollectors: readonly AnyCollectorDefinition[] = [pciCollector, pciHealthCollector, bootBindingCollector, iommuCollector, memoryCollector, vmCollector, oomCollector, disksCollector, hostCollector];
