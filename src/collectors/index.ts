import { hostCollector } from './host.js';
import { iommuCollector } from './iommu.js';
import { oomCollector } from './oom.js';
import { pciCollector } from './pci.js';
import type { AnyCollectorDefinition } from './types.js';

/** Every collector, in the order their series appear on /metrics. */
export const allCollectors: readonly AnyCollectorDefinition[] = [pciCollector, iommuCollector, hostCollector, oomCollector];
