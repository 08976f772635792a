import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type { MixinConfig } from '../config.js';
import { assignedDevicesInNonViableGroupsOrNone, dashboardBase, dashboardLink, matchers, prometheusAnnotation, variables } from './common.js';
import { barGaugePanel, byName, q, row, stateTimelinePanel, statPanel, tablePanel, thresholds, timeSeriesPanel, valueMap } from './panels.js';

/** grafana/vfio-fleet.json. `${host}` selects the hosts chosen in the variables, `${jobs}` every host of the chosen jobs. */
export function fleetDashboard(config: MixinConfig): dashboard.DashboardBuilder {
  const { host } = matchers(config);
  // A bar per host reads for a few dozen hosts; a fleet's panels show the worst of them.
  const barsPerPanel = 20;
  /**
   * Per host, the devices assigned to VMs, present, and not on a vfio driver (0 for a host without any): the few
   * vfio-bound devices by their driver label, not the vfio_bound flag of every device of every host.
   */
  const devicesOnHostDriver = `count by (instance) (max by (instance, pci_address) (vfio_vm_pci_device_present{${host}} == 1) unless on (instance, pci_address) vfio_pci_device_driver_info{${host}, driver=~".*vfio.*"}) or on (instance) sum by (instance) (vfio_exporter_build_info{${host}}) * 0`;
  return dashboardBase(
    'vfio-fleet',
    'VFIO passthrough: fleet',
    'Many hosts running vfio-exporter: which have a passthrough VM that cannot start, devices on the wrong driver, OOM kills, exporters down.',
  )
    .annotation(
      prometheusAnnotation({
        name: 'OOM kill of a VM',
        enable: true,
        iconColor: 'red',
        expr: `max by (instance, vmid) (vfio_vm_last_oom_kill_timestamp_seconds{${host}}) * 1000`,
        titleFormat: 'OOM kill of VM {{vmid}} on {{instance}}',
        textFormat: '{{instance}}',
        tagKeys: 'instance,vmid',
        useValueForTime: true,
      }),
    )
    .links([dashboardLink('Host overview', 'vfio-overview', 'One host in detail', true)])
    .variables([
      ...variables(config, { allHosts: true }),
    ])
    .withRow(row(1, 'At a glance', 0))
    .withPanel(
      statPanel({
        id: 2,
        title: 'Hosts with a passthrough VM that cannot start',
        pos: [0, 1, 5, 4],
        description: 'Hosts where at least one stopped passthrough VM has negative start headroom: starting it now ends in an OOM kill.',
        thresholds: thresholds('green', 1, 'red'),
        colorMode: 'background',
        targets: [
          q(`count(count by (instance) (vfio:vm_start_headroom_bytes{${host}} < 0)) or vector(0)`, 'hosts'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 3,
        title: 'Stopped passthrough VMs that cannot start',
        pos: [5, 1, 5, 4],
        description: 'Stopped passthrough VMs, on all hosts, whose configured memory exceeds what their host could give now.',
        thresholds: thresholds('green', 1, 'red'),
        colorMode: 'background',
        targets: [
          q(`count(count by (instance, vmid) (vfio:vm_start_headroom_bytes{${host}} < 0)) or vector(0)`, 'VMs'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 4,
        title: 'Assigned devices on a host driver',
        pos: [10, 1, 5, 4],
        description: 'Devices assigned to VMs but bound to a host driver, on all hosts.',
        thresholds: thresholds('green', 1, 'red'),
        colorMode: 'background',
        targets: [
          q(`sum(${devicesOnHostDriver})`, 'devices'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 5,
        title: 'Exporters down',
        pos: [15, 1, 5, 4],
        description: 'vfio-exporters Prometheus could not scrape at its last attempt: their hosts are blind.',
        thresholds: thresholds('green', 1, 'red'),
        colorMode: 'background',
        targets: [
          q(`count(up{${host}} == 0) or vector(0)`, 'down'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 7,
        title: 'Soonest memory headroom gone',
        pos: [20, 1, 4, 4],
        description: 'Across the fleet, the shortest time until memory headroom (available + reclaimable ZFS ARC - host reserve) of a host is gone at the pace of the last 5 minutes (recording rule vfio:host_memory_exhaustion_seconds): VfioHostMemoryDrainingFast warns under 13 minutes and pages under 5. "not falling": headroom holds or grows; "gone": it is below zero now.',
        unit: 's',
        thresholds: thresholds('red', 300, 'orange', 780, 'green'),
        mappings: [valueMap(['-1', 'not falling', 'green'], ['0', 'gone', 'red'])],
        colorMode: 'background',
        targets: [
          q(`min(vfio:host_memory_exhaustion_seconds{${host}} or on (instance, job) (0 * vfio_last_sample_timestamp_seconds{${host}} and on (instance, job) (vfio:host_memory_headroom_bytes{${host}} < 0))) or vector(-1)`, 'gone in'),
        ],
      }),
    )
    .withPanel(
      tablePanel({
        id: 6,
        title: 'Hosts',
        pos: [0, 5, 24, 9],
        description: 'One row per host: exporter reachable, IOMMU on, passthrough VMs running, the least start headroom among its stopped passthrough VMs, devices on the wrong driver, OOM kills in the time range, memory pinned by running passthrough VMs, the room left once every running and on-boot passthrough VM holds its memory after a reboot (red: negative), and how many vfio alerts fire. Click a host for its overview.',
        columns: {
          hide: ['Time', '__name__', 'job'],
          order: ['instance', 'Value #A', 'Value #B', 'Value #C', 'Value #D', 'Value #E', 'Value #F', 'Value #G', 'Value #H', 'Value #I', 'Value #J'],
          rename: { instance: 'host', 'Value #A': 'exporter', 'Value #B': 'IOMMU', 'Value #C': 'passthrough VMs running', 'Value #D': 'least start headroom', 'Value #E': 'devices on host driver', 'Value #F': 'OOM kills', 'Value #G': 'pinned now', 'Value #H': 'room after reboot', 'Value #I': 'last sample age', 'Value #J': 'alerts firing' },
        },
        sortBy: { column: 'least start headroom' },
        overrides: [
          byName('host', { links: [{ title: 'Host overview of ${__value.raw}', url: '/d/vfio-overview?var-datasource=${datasource}&var-instance=${__value.raw}&${__url_time_range}' }] }),
          byName('exporter', { mappings: [valueMap(['0', 'DOWN', 'red'], ['1', 'up', 'green'])], 'custom.cellOptions': { type: 'color-text' } }),
          byName('IOMMU', { mappings: [valueMap(['0', 'OFF', 'red'], ['1', 'on', 'green'])], 'custom.cellOptions': { type: 'color-text' } }),
          byName('least start headroom', { unit: 'bytes', thresholds: thresholds('red', 0, 'orange', 1073741824, 'green'), 'custom.cellOptions': { type: 'color-background', mode: 'basic' } }),
          byName('devices on host driver', { thresholds: thresholds('transparent', 1, 'red'), 'custom.cellOptions': { type: 'color-background', mode: 'basic' } }),
          byName('OOM kills', { decimals: 0, thresholds: thresholds('transparent', 1, 'orange'), 'custom.cellOptions': { type: 'color-background', mode: 'basic' } }),
          byName('pinned now', { unit: 'bytes' }),
          byName('room after reboot', { unit: 'bytes', thresholds: thresholds('red', 0, 'transparent'), 'custom.cellOptions': { type: 'color-background', mode: 'basic' } }),
          byName('last sample age', { unit: 's' }),
          byName('alerts firing', { thresholds: thresholds('transparent', 1, 'red'), 'custom.cellOptions': { type: 'color-background', mode: 'basic' } }),
        ],
        targets: [
          q(`max by (instance) (up{${host}})`),
          q(`max by (instance) (vfio_iommu_enabled{${host}})`),
          q(`max by (instance) (vfio:host_passthrough_vms_running{${host}})`),
          q(`min by (instance) (vfio:vm_start_headroom_bytes{${host}})`),
          q(devicesOnHostDriver),
          q(`sum by (instance) (increase(vfio_oom_kills_total{${host}}[$__range]))`),
          q(`max by (instance) (sum by (instance, job) ((vfio_vm_memory_configured_bytes{${host}} > vfio_vm_memory_locked_bytes{${host}} or vfio_vm_memory_locked_bytes{${host}} or vfio_vm_memory_configured_bytes{${host}}) and on (instance, job, vmid) (vfio_vm_passthrough_devices{${host}} > 0) and on (instance, job, vmid) (vfio_vm_running{${host}} == 1)) or vfio_exporter_build_info{${host}} * 0)`),
          q(`min by (instance) (vfio:host_passthrough_memory_capacity_bytes{${host}} - vfio:host_passthrough_memory_committed_bytes{${host}})`),
          q(`max by (instance) (time() - vfio_last_sample_timestamp_seconds{${host}})`),
          q(`count by (instance) (ALERTS{${host}, alertname=~"Vfio.*", alertstate="firing"}) or on (instance) sum by (instance) (vfio_exporter_build_info{${host}}) * 0`),
        ],
      }),
    )
    .withRow(row(10, 'Start headroom', 14))
    .withPanel(
      tablePanel({
        id: 11,
        title: 'Stopped passthrough VMs, least headroom first',
        pos: [0, 15, 12, 10],
        description: 'Every stopped passthrough VM in the fleet with its start headroom (available + reclaimable ZFS ARC - its configured memory), lowest first. Negative: it would be OOM-killed at start; for a hugepage VM (its pool named), the pool of that page size lacks free pages and the start fails.',
        columns: {
          hide: ['Time', '__name__', 'job'],
          order: ['instance', 'vmid', 'name', 'Value'],
          rename: { instance: 'host', vmid: 'VM', Value: 'start headroom', size: 'hugepage pool' },
        },
        sortBy: { column: 'start headroom' },
        overrides: [
          byName('host', { links: [{ title: 'Host overview of ${__value.raw}', url: '/d/vfio-overview?var-datasource=${datasource}&var-instance=${__value.raw}&${__url_time_range}' }] }),
          byName('start headroom', { unit: 'bytes', thresholds: thresholds('red', 0, 'orange', 1073741824, 'green'), 'custom.cellOptions': { type: 'color-background', mode: 'basic' } }),
        ],
        targets: [
          q(`sort(vfio:vm_start_headroom_bytes{${host}} * on (instance, vmid) group_left (name) max by (instance, vmid, name) (vfio_vm_info{${host}}))`),
        ],
      }),
    )
    .withPanel(
      barGaugePanel({
        id: 12,
        title: 'Least start headroom per host',
        pos: [12, 15, 12, 10],
        description: `For each host, the start headroom of its tightest stopped passthrough VM, lowest first: the ${barsPerPanel} lowest.`,
        unit: 'bytes',
        thresholds: thresholds('red', 0, 'orange', 1073741824, 'green'),
        targets: [
          q(`sort(bottomk(${barsPerPanel}, min by (instance) (vfio:vm_start_headroom_bytes{${host}})))`, '{{instance}}'),
        ],
      }),
    )
    .withRow(row(13, 'Hugepage pools', 25))
    .withPanel(
      tablePanel({
        id: 14,
        title: 'Hugepage pools per host',
        pos: [0, 26, 24, 8],
        description: 'Every hugepage pool per host and page size, those VMs draw on most first: its size, what is free and not reserved, and what the VMs on that page size take at their next start. A pool short of what its stopped passthrough VMs need fails their start.',
        columns: {
          hide: ['Time'],
          order: ['instance', 'size', 'Value #A', 'Value #B', 'Value #C'],
          rename: { instance: 'host', size: 'page size', 'Value #A': 'pool', 'Value #B': 'free', 'Value #C': 'VMs take' },
        },
        sortBy: { column: 'VMs take', desc: true },
        overrides: [
          byName('host', { links: [{ title: 'Host overview of ${__value.raw}', url: '/d/vfio-overview?var-datasource=${datasource}&var-instance=${__value.raw}&${__url_time_range}' }] }),
          byName('pool', { unit: 'bytes' }),
          byName('free', { unit: 'bytes' }),
          byName('VMs take', { unit: 'bytes' }),
        ],
        targets: [
          q(`max by (instance, size) (vfio:host_hugepages_pool_bytes{${host}})`),
          q(`max by (instance, size) (vfio:host_hugepages_free_bytes{${host}})`),
          q(`sum by (instance, size) (vfio_vm_hugepages_bytes{${host}}) or sum by (instance, size) (0 * vfio:host_hugepages_pool_bytes{${host}})`),
        ],
      }),
    )
    .withRow(row(20, 'Devices and IOMMU groups', 34))
    .withPanel(
      barGaugePanel({
        id: 21,
        title: 'Assigned devices on a host driver, per host',
        pos: [0, 35, 12, 8],
        description: `Devices VM configs assign that a host driver holds: the VM will not start until vfio-pci has them. The ${barsPerPanel} hosts with the most.`,
        min: 0,
        thresholds: thresholds('green', 1, 'red'),
        targets: [
          q(`sort_desc(topk(${barsPerPanel}, ${devicesOnHostDriver}))`, '{{instance}}'),
        ],
      }),
    )
    .withPanel(
      barGaugePanel({
        id: 22,
        title: 'Assigned devices in non-viable IOMMU groups, per host',
        pos: [12, 35, 12, 8],
        description: `Devices VM configs assign whose IOMMU group still holds a device on a host driver. The ${barsPerPanel} hosts with the most.`,
        min: 0,
        thresholds: thresholds('green', 1, 'red'),
        targets: [
          q(`sort_desc(topk(${barsPerPanel}, ${assignedDevicesInNonViableGroupsOrNone(host, `vfio_exporter_build_info{${host}}`)}))`, '{{instance}}'),
        ],
      }),
    )
    .withRow(row(30, 'OOM kills', 43))
    .withPanel(
      timeSeriesPanel({
        id: 31,
        title: 'OOM kills per host',
        pos: [0, 44, 12, 8],
        description: 'Every OOM kill on each host (/proc/vmstat), whatever it killed. Hosts without a kill draw nothing.',
        bars: true,
        fillOpacity: 80,
        legendCalcs: ['sum'],
        targets: [
          q(`sum by (instance) (increase(vfio_oom_kills_total{${host}}[$__rate_interval])) > 0`, '{{instance}}'),
        ],
      }),
    )
    .withPanel(
      timeSeriesPanel({
        id: 32,
        title: 'VM OOM kills per host',
        pos: [12, 44, 12, 8],
        description: 'OOM kills of VM processes, attributed from the kernel log. Hosts without a VM killed draw nothing.',
        bars: true,
        fillOpacity: 80,
        legendCalcs: ['sum'],
        targets: [
          q(`sum by (instance, vmid) (increase(vfio_oom_kill_events_total{${host}, vmid!=""}[$__rate_interval])) > 0`, '{{instance}} VM {{vmid}}'),
        ],
      }),
    )
    .withRow(row(40, 'Exporters', 52))
    .withPanel(
      stateTimelinePanel({
        id: 41,
        title: 'When exporters were down',
        pos: [0, 53, 12, 8],
        description: 'When Prometheus could not reach a vfio-exporter; exporters it always reached are not listed.',
        mappings: [valueMap(['0', 'DOWN', 'red'], ['1', 'up', 'green'])],
        targets: [
          q(`up{${host}} == 0`, '{{instance}}'),
        ],
      }),
    )
    .withPanel(
      barGaugePanel({
        id: 42,
        title: 'Failing collectors per host',
        pos: [12, 53, 12, 8],
        description: `Collectors that reported errors in their last sample: their metrics may be partial. The ${barsPerPanel} hosts with the most.`,
        min: 0,
        thresholds: thresholds('green', 1, 'red'),
        targets: [
          q(`sort_desc(topk(${barsPerPanel}, sum by (instance) (1 - vfio_collector_success{${host}})))`, '{{instance}}'),
        ],
      }),
    );
}
