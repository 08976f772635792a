import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type { MixinConfig } from '../config.js';
import { assignedDevicesInNonViableGroupsOrNone, dashboardBase, dashboardLink, labelVariable, matchers, prometheusAnnotation, variables } from './common.js';
import { barGaugePanel, byName, byQuery, gaugePanel, q, regexMap, row, stateTimelinePanel, statPanel, tablePanel, thresholds, timeSeriesPanel, valueMap } from './panels.js';

/** grafana/vfio-overview.json. `${host}` selects the hosts chosen in the variables, `${jobs}` every host of the chosen jobs. */
export function overviewDashboard(config: MixinConfig): dashboard.DashboardBuilder {
  const { host } = matchers(config);
  /** Per host, the RAM running passthrough VMs pin: all they are configured with, or what is locked if more (0 without any). */
  const pinnedByPassthroughVMs = `(sum by (instance, job) ((vfio_vm_memory_configured_bytes{${host}} > vfio_vm_memory_locked_bytes{${host}} or vfio_vm_memory_locked_bytes{${host}} or vfio_vm_memory_configured_bytes{${host}}) and on (instance, job, vmid) (vfio_vm_passthrough_devices{${host}} > 0) and on (instance, job, vmid) (vfio_vm_running{${host}} == 1)) or on (instance, job) vfio_host_memory_total_bytes{${host}} * 0)`;
  return dashboardBase(
    'vfio-overview',
    'VFIO passthrough: host overview',
    'One or a few Proxmox / libvirt hosts running PCI-passthrough VMs: memory a passthrough VM needs to start, devices on the right drivers, IOMMU groups, OOM kills. Data from vfio-exporter.',
  )
    .annotation(
      prometheusAnnotation({
        name: 'OOM kill of a VM',
        enable: true,
        iconColor: 'red',
        expr: `max by (instance, vmid) (vfio_vm_last_oom_kill_timestamp_seconds{${host}, vmid=~"$vmid"}) * 1000`,
        titleFormat: 'OOM kill of VM {{vmid}}',
        textFormat: '{{instance}}',
        tagKeys: 'instance,vmid',
        useValueForTime: true,
      }),
    )
    .annotation(
      prometheusAnnotation({
        name: 'Firing alerts',
        enable: false,
        iconColor: 'orange',
        expr: `ALERTS{${host}, alertname=~"Vfio.*", alertstate="firing"}`,
        titleFormat: '{{alertname}}',
        textFormat: '{{instance}} {{vmid}}',
        tagKeys: 'alertname,severity,instance',
        useValueForTime: false,
      }),
    )
    .annotation(
      prometheusAnnotation({
        name: 'OOM kill (any process)',
        enable: false,
        iconColor: 'orange',
        expr: `sum by (instance) (increase(vfio_oom_kills_total{${host}}[$__rate_interval])) > 0`,
        titleFormat: 'OOM kill',
        textFormat: '{{instance}}',
        tagKeys: 'instance',
        useValueForTime: false,
      }),
    )
    .links([dashboardLink('Fleet', 'vfio-fleet', 'All hosts', false)])
    .variables([
      ...variables(config, { allHosts: false }),
      labelVariable('vmid', 'VM', 'VMs on the selected hosts', `label_values(vfio_vm_info{${host}}, vmid)`).allValue('.*'),
    ])
    .withRow(row(60, 'Alerts', 0))
    .withPanel(
      tablePanel({
        id: 61,
        title: 'Alerts',
        pos: [0, 1, 20, 6],
        description: 'Alerts of alerts/vfio.rules.yml firing or pending (waiting out their for:) on the selected hosts, with how many of each (devices, groups, VMs). The runbook of each alert is in docs/runbooks.md.',
        columns: {
          hide: ['Time', '__name__', 'job'],
          order: ['instance', 'alertname', 'severity', 'alertstate', 'vmid', 'Value'],
          rename: { instance: 'host', alertname: 'alert', alertstate: 'state', vmid: 'VM', Value: 'count' },
        },
        sortBy: { column: 'state' },
        overrides: [
          byName('state', { mappings: [valueMap(['firing', 'firing', 'red'], ['pending', 'pending', 'orange'])], 'custom.cellOptions': { type: 'color-background', mode: 'basic' } }),
          byName('severity', { mappings: [valueMap(['critical', 'critical', 'red'], ['warning', 'warning', 'orange'])], 'custom.cellOptions': { type: 'color-text' } }),
        ],
        targets: [
          q(`count by (instance, alertname, severity, alertstate, vmid) (ALERTS{${host}, alertname=~"Vfio.*"})`),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 12,
        title: 'Memory headroom gone in',
        pos: [20, 1, 4, 6],
        description: 'Time until memory headroom (available + reclaimable ZFS ARC - host reserve) is gone at the pace of the last 5 minutes (recording rule vfio:host_memory_exhaustion_seconds): VfioHostMemoryDrainingFast warns under 13 minutes and pages under 5. "not falling": headroom holds or grows; "gone": it is below zero now.',
        unit: 's',
        thresholds: thresholds('red', 300, 'orange', 780, 'green'),
        mappings: [valueMap(['-1', 'not falling', 'green'], ['0', 'gone', 'red'])],
        colorMode: 'background',
        targets: [
          q(`vfio:host_memory_exhaustion_seconds{${host}} or on (instance, job) (0 * vfio_last_sample_timestamp_seconds{${host}} and on (instance, job) (vfio:host_memory_headroom_bytes{${host}} < 0)) or on (instance, job) (0 * vfio_last_sample_timestamp_seconds{${host}} - 1)`, 'gone in'),
        ],
      }),
    )
    .withRow(row(1, 'Host memory: $instance', 7, { repeat: 'instance' }))
    .withPanel(
      timeSeriesPanel({
        id: 2,
        title: 'Where the host memory goes',
        pos: [0, 8, 12, 10],
        description: 'Stacked: RAM pinned by running passthrough VMs (VFIO pins all of it; the balloon cannot return it), other used memory, the ZFS ARC (not in MemAvailable, shrinks to c_min under pressure) and available memory; the dashed line is the total. A stopped passthrough VM needs its whole configured memory out of available + reclaimable ARC to start.',
        unit: 'bytes',
        fillOpacity: 60,
        stacked: true,
        legendCalcs: ['lastNotNull', 'max'],
        overrides: [
          byQuery('A', { color: { mode: 'fixed', fixedColor: 'red' } }),
          byQuery('B', { color: { mode: 'fixed', fixedColor: 'yellow' } }),
          byQuery('C', { color: { mode: 'fixed', fixedColor: 'blue' } }),
          byQuery('D', { color: { mode: 'fixed', fixedColor: 'green' } }),
          byQuery('E', { color: { mode: 'fixed', fixedColor: 'text' }, 'custom.stacking': { mode: 'none', group: 'A' }, 'custom.fillOpacity': 0, 'custom.lineStyle': { fill: 'dash', dash: [10, 10] } }),
        ],
        targets: [
          q(pinnedByPassthroughVMs, 'pinned by passthrough VMs'),
          q(`clamp_min(vfio_host_memory_total_bytes{${host}} - vfio_host_memory_available_bytes{${host}} - (vfio_host_zfs_arc_size_bytes{${host}} or vfio_host_memory_total_bytes{${host}} * 0) - on (instance, job) ${pinnedByPassthroughVMs}, 0)`, 'other used'),
          q(`vfio_host_zfs_arc_size_bytes{${host}}`, 'ZFS ARC'),
          q(`vfio_host_memory_available_bytes{${host}}`, 'available'),
          q(`vfio_host_memory_total_bytes{${host}}`, 'total'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 3,
        title: 'Memory total',
        pos: [12, 8, 3, 5],
        description: 'MemTotal of the host.',
        unit: 'bytes',
        targets: [
          q(`vfio_host_memory_total_bytes{${host}}`, 'total'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 4,
        title: 'Available now',
        pos: [15, 8, 3, 5],
        description: 'MemAvailable: what a starting VM gets without evicting the ZFS ARC.',
        unit: 'bytes',
        targets: [
          q(`vfio_host_memory_available_bytes{${host}}`, 'available'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 5,
        title: 'Reclaimable ZFS ARC',
        pos: [18, 8, 3, 5],
        description: 'ARC size above c_min: memory the ARC gives back when a VM needs it. No data on hosts without ZFS.',
        unit: 'bytes',
        targets: [
          q(`clamp_min(vfio_host_zfs_arc_size_bytes{${host}} - vfio_host_zfs_arc_min_bytes{${host}}, 0)`, 'reclaimable ARC'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 11,
        title: 'Room for a VM start',
        pos: [21, 8, 3, 5],
        description: 'What a starting VM can take now without the OOM killer stepping in: available + reclaimable ZFS ARC - the host reserve (recording rule vfio:host_memory_headroom_bytes). A passthrough VM needs all of its memory from here.',
        unit: 'bytes',
        thresholds: thresholds('red', 0, 'green'),
        targets: [
          q(`vfio:host_memory_headroom_bytes{${host}}`, 'room'),
        ],
      }),
    )
    .withPanel(
      gaugePanel({
        id: 6,
        title: 'Pinned by running passthrough VMs',
        pos: [12, 13, 6, 5],
        description: 'Guest RAM of running VMs with host PCI devices (configured or locked, whichever is larger), against the host total.',
        unit: 'bytes',
        thresholds: thresholds('green'),
        transformations: [{ id: 'configFromData', options: { configRefId: 'B', mappings: [{ fieldName: 'total', handlerKey: 'max' }] } }],
        targets: [
          q(pinnedByPassthroughVMs, 'pinned'),
          q(`sum by (instance) (vfio_host_memory_total_bytes{${host}})`, 'total'),
        ],
      }),
    )
    .withPanel(
      gaugePanel({
        id: 7,
        title: 'Committed to passthrough VMs',
        pos: [18, 13, 6, 5],
        description: 'Guest RAM the host must hold pinned for every passthrough VM that runs or starts on boot (their next-start memory), against what the host can give them: total - ZFS ARC floor - hugepage pool - host reserve. Past the end of the scale, a reboot ends in an OOM kill. Hugepage-backed VMs count against the hugepage pool instead.',
        unit: 'bytes',
        thresholds: thresholds('green'),
        transformations: [{ id: 'configFromData', options: { configRefId: 'B', mappings: [{ fieldName: 'total', handlerKey: 'max' }] } }],
        targets: [
          q(`sum by (instance) (vfio:host_passthrough_memory_committed_bytes{${host}, pool="memory"})`, 'committed'),
          q(`sum by (instance) (vfio:host_passthrough_memory_capacity_bytes{${host}, pool="memory"})`, 'total'),
        ],
      }),
    )
    .withPanel(
      timeSeriesPanel({
        id: 8,
        title: 'Memory pressure (PSI)',
        pos: [0, 18, 12, 7],
        description: 'Share of time some (or all) tasks stalled waiting for memory. Rising before a VM start means the host is reclaiming hard.',
        unit: 'percentunit',
        fillOpacity: 10,
        legendCalcs: ['lastNotNull', 'max'],
        targets: [
          q(`rate(vfio_host_memory_pressure_stalled_seconds_total{${host}}[$__rate_interval])`, '{{kind}}'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 9,
        title: 'Swap used',
        pos: [12, 18, 6, 7],
        description: 'SwapTotal - SwapFree. Pinned guest RAM never swaps; other processes do.',
        unit: 'bytes',
        targets: [
          q(`vfio_host_swap_total_bytes{${host}} - vfio_host_swap_free_bytes{${host}}`, 'swap used'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 10,
        title: 'Hugepages free / total',
        pos: [18, 18, 6, 7],
        description: 'Default-size hugepage pool. VMs with hugepages configured take their RAM from here, not from available memory.',
        textMode: 'value_and_name',
        targets: [
          q(`vfio_host_hugepages_free{${host}}`, 'free'),
          q(`vfio_host_hugepages{${host}}`, 'total'),
        ],
      }),
    )
    .withPanel(
      timeSeriesPanel({
        id: 14,
        title: 'Hugepage pools per size',
        pos: [0, 25, 12, 8],
        description: 'Every hugepage pool the kernel keeps (/sys/kernel/mm/hugepages), by page size: all its pages, those free and not reserved by a mapping, and what the VMs on that page size take at their next start. /proc/meminfo (the stat beside) shows only the default size; 1 GiB pages live here.',
        unit: 'bytes',
        fillOpacity: 10,
        legendCalcs: ['lastNotNull', 'max'],
        targets: [
          q(`vfio:host_hugepages_pool_bytes{${host}}`, '{{instance}} {{size}} pool'),
          q(`vfio:host_hugepages_free_bytes{${host}}`, '{{instance}} {{size}} free'),
          q(`sum by (instance, size) (vfio_vm_hugepages_bytes{${host}}) or sum by (instance, size) (0 * vfio:host_hugepages_pool_bytes{${host}})`, '{{instance}} {{size}} VMs take'),
        ],
      }),
    )
    .withPanel(
      timeSeriesPanel({
        id: 15,
        title: 'Hugepage pools per NUMA node',
        pos: [12, 25, 12, 8],
        description: 'Where the pages of each size are: all and free pages per NUMA node (/sys/devices/system/node/node<K>/hugepages). A VM bound to a node (Proxmox numaN hostnodes, libvirt numatune) takes its pages from that node only.',
        unit: 'bytes',
        fillOpacity: 10,
        legendCalcs: ['lastNotNull', 'max'],
        targets: [
          q(`vfio_host_numa_hugepage_pool_pages{${host}} * on (instance, job, size) group_left vfio_host_hugepage_page_size_bytes{${host}}`, '{{instance}} node {{node}} {{size}} pool'),
          q(`vfio_host_numa_hugepage_pool_free_pages{${host}} * on (instance, job, size) group_left vfio_host_hugepage_page_size_bytes{${host}}`, '{{instance}} node {{node}} {{size}} free'),
        ],
      }),
    )
    .withRow(row(20, 'VMs', 33))
    .withPanel(
      tablePanel({
        id: 21,
        title: 'VMs',
        pos: [0, 34, 24, 8],
        description: 'Every VM the exporter knows on the selected hosts: is it running, does it start on boot, how many host PCI devices it takes, and its memory as configured, as the balloon sees it and as the host sees it (RSS, locked). Start headroom is shown for stopped passthrough VMs.',
        columns: {
          hide: ['Time', '__name__', 'job', 'Value #A'],
          order: ['instance', 'vmid', 'name', 'source', 'Value #B', 'Value #C', 'Value #D', 'Value #E', 'Value #F', 'Value #G', 'Value #H', 'Value #I', 'Value #J', 'Value #K'],
          rename: { instance: 'host', vmid: 'VM', 'Value #B': 'state', 'Value #C': 'on boot', 'Value #D': 'PCI devices', 'Value #E': 'configured', 'Value #F': 'balloon floor', 'Value #G': 'balloon actual', 'Value #H': 'RSS', 'Value #I': 'locked', 'Value #J': 'QMP', 'Value #K': 'start headroom' },
        },
        sortBy: { column: 'VM' },
        overrides: [
          byName('state', { mappings: [valueMap(['0', 'stopped', 'text'], ['1', 'running', 'green'])], 'custom.cellOptions': { type: 'color-text' } }),
          byName('on boot', { mappings: [valueMap(['0', 'no', 'text'], ['1', 'yes', 'green'])] }),
          byName('QMP', { mappings: [valueMap(['0', 'DOWN', 'red'], ['1', 'up', 'green'])], 'custom.cellOptions': { type: 'color-text' } }),
          byName('configured', { unit: 'bytes' }),
          byName('balloon floor', { unit: 'bytes' }),
          byName('balloon actual', { unit: 'bytes' }),
          byName('RSS', { unit: 'bytes' }),
          byName('locked', { unit: 'bytes' }),
          byName('start headroom', { unit: 'bytes', thresholds: thresholds('red', 0, 'orange', 1073741824, 'green'), 'custom.cellOptions': { type: 'color-background', mode: 'basic' } }),
        ],
        targets: [
          q(`max by (instance, vmid, name, source) (vfio_vm_info{${host}, vmid=~"$vmid"})`),
          q(`max by (instance, vmid) (vfio_vm_running{${host}, vmid=~"$vmid"})`),
          q(`max by (instance, vmid) (vfio_vm_start_on_boot{${host}, vmid=~"$vmid"})`),
          q(`max by (instance, vmid) (vfio_vm_passthrough_devices{${host}, vmid=~"$vmid"})`),
          q(`max by (instance, vmid) (vfio_vm_memory_configured_bytes{${host}, vmid=~"$vmid"})`),
          q(`max by (instance, vmid) (vfio_vm_memory_balloon_min_bytes{${host}, vmid=~"$vmid"})`),
          q(`max by (instance, vmid) (vfio_vm_memory_balloon_actual_bytes{${host}, vmid=~"$vmid"})`),
          q(`max by (instance, vmid) (vfio_vm_memory_rss_bytes{${host}, vmid=~"$vmid"})`),
          q(`max by (instance, vmid) (vfio_vm_memory_locked_bytes{${host}, vmid=~"$vmid"})`),
          q(`max by (instance, vmid) (vfio_vm_qmp_up{${host}, vmid=~"$vmid"})`),
          q(`min by (instance, vmid) (vfio:vm_start_headroom_bytes{${host}, vmid=~"$vmid"})`),
        ],
      }),
    )
    .withPanel(
      barGaugePanel({
        id: 22,
        title: 'Start headroom of stopped passthrough VMs',
        pos: [0, 42, 12, 8],
        description: 'What would be left if each stopped passthrough VM started now: available memory + reclaimable ZFS ARC - the host reserve - its whole next-start memory (VFIO pins it all; ballooning does not help); for a hugepage-backed VM, the free pages of the pool of each page size it uses (the size after its id): negative there, the start fails. Red (negative): starting it now ends in an OOM kill, as VM 101 did.',
        unit: 'bytes',
        thresholds: thresholds('red', 0, 'orange', 1073741824, 'green'),
        targets: [
          q(`sort(vfio:vm_start_headroom_bytes{${host}, vmid=~"$vmid"})`, '{{instance}} VM {{vmid}}{{size}}'),
        ],
      }),
    )
    .withPanel(
      stateTimelinePanel({
        id: 23,
        title: 'VM running',
        pos: [12, 42, 12, 8],
        description: 'When each VM had a live QEMU process. A passthrough VM that stops right after starting was probably OOM-killed: see the OOM row.',
        mappings: [valueMap(['0', 'stopped', 'text'], ['1', 'running', 'green'])],
        targets: [
          q(`vfio_vm_running{${host}, vmid=~"$vmid"}`, '{{instance}} VM {{vmid}}'),
        ],
      }),
    )
    .withPanel(
      timeSeriesPanel({
        id: 24,
        title: 'VM $vmid memory',
        pos: [0, 58, 8, 8],
        description: 'Configured guest RAM against what QEMU really holds: RSS, locked (VFIO-pinned RAM lands here) and the balloon (actual size and floor). On a passthrough VM, locked reaches the configured size whatever the balloon says.',
        unit: 'bytes',
        fillOpacity: 0,
        legendCalcs: ['lastNotNull'],
        overrides: [
          byQuery('A', { 'custom.lineStyle': { fill: 'dash', dash: [10, 10] }, color: { mode: 'fixed', fixedColor: 'text' } }),
          byQuery('C', { 'custom.fillOpacity': 20, color: { mode: 'fixed', fixedColor: 'red' } }),
          byQuery('E', { 'custom.lineStyle': { fill: 'dot' }, color: { mode: 'fixed', fixedColor: 'purple' } }),
        ],
        repeat: { variable: 'vmid', maxPerRow: 3 },
        targets: [
          q(`vfio_vm_memory_configured_bytes{${host}, vmid=~"$vmid"}`, '{{instance}} configured'),
          q(`vfio_vm_memory_rss_bytes{${host}, vmid=~"$vmid"}`, '{{instance}} RSS'),
          q(`vfio_vm_memory_locked_bytes{${host}, vmid=~"$vmid"}`, '{{instance}} locked'),
          q(`vfio_vm_memory_balloon_actual_bytes{${host}, vmid=~"$vmid"}`, '{{instance}} balloon actual'),
          q(`vfio_vm_memory_balloon_min_bytes{${host}, vmid=~"$vmid"}`, '{{instance}} balloon floor'),
        ],
      }),
    )
    .withPanel(
      tablePanel({
        id: 25,
        title: "Where each VM's memory comes from",
        pos: [0, 50, 24, 8],
        description: "Each VM's pool: RAM, or the hugepage pool of its page size (Proxmox any and libvirt default resolved as they are at start; a VM on several sizes has a row per size). What it takes from it at its next start, and what that pool has to give now: free, unreserved pages, or for RAM the host's headroom (available + reclaimable ZFS ARC - host reserve).",
        columns: {
          hide: ['Time'],
          order: ['instance', 'vmid', 'size', 'Value #A', 'Value #B'],
          rename: { instance: 'host', vmid: 'VM', size: 'pool', 'Value #A': 'takes', 'Value #B': 'its pool has' },
        },
        sortBy: { column: 'VM' },
        overrides: [
          byName('host', { links: [{ title: 'Host overview of ${__value.raw}', url: '/d/vfio-overview?var-datasource=${datasource}&var-instance=${__value.raw}&${__url_time_range}' }] }),
          byName('takes', { unit: 'bytes' }),
          byName('its pool has', { unit: 'bytes' }),
        ],
        targets: [
          q(`max by (instance, vmid, size) (vfio_vm_hugepages_bytes{${host}, vmid=~"$vmid"}) or label_replace(max by (instance, vmid) (vfio:vm_memory_next_start_bytes{${host}, vmid=~"$vmid"} unless on (instance, job, vmid) vfio_vm_hugepages_info{${host}, vmid=~"$vmid"}), "size", "RAM", "", "")`),
          q(`max by (instance, vmid, size) (0 * vfio_vm_hugepages_bytes{${host}, vmid=~"$vmid"} + on (instance, job, size) group_left vfio:host_hugepages_free_bytes{${host}}) or label_replace(max by (instance, vmid) (0 * vfio:vm_memory_next_start_bytes{${host}, vmid=~"$vmid"} unless on (instance, job, vmid) vfio_vm_hugepages_info{${host}, vmid=~"$vmid"}) + on (instance) group_left max by (instance) (vfio:host_memory_headroom_bytes{${host}}), "size", "RAM", "", "")`),
        ],
      }),
    )
    .withRow(row(30, 'PCI devices and IOMMU groups', 66))
    .withPanel(
      statPanel({
        id: 31,
        title: 'IOMMU',
        pos: [0, 67, 6, 4],
        description: 'Without an IOMMU (intel_iommu=on / amd_iommu on the kernel command line, VT-d / AMD-Vi in the firmware) no device can be passed through.',
        mappings: [valueMap(['0', 'OFF', 'red'], ['1', 'on', 'green'])],
        textMode: 'value_and_name',
        targets: [
          q(`vfio_iommu_enabled{${host}}`, '{{instance}}'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 32,
        title: 'Assigned devices on a host driver',
        pos: [6, 67, 6, 4],
        description: 'Devices a VM config assigns that are bound to a host driver (ahci, nvme, igb…) instead of vfio-pci: the VM fails to start, or the host driver grabbed the device at boot. Bind them to vfio-pci early (vfio-pci.ids= and a softdep).',
        thresholds: thresholds('green', 1, 'red'),
        colorMode: 'background',
        textMode: 'value_and_name',
        targets: [
          q(`sum by (instance) ((1 - max by (instance, pci_address) (vfio_pci_device_vfio_bound{${host}})) * on (instance, pci_address) max by (instance, pci_address) (vfio_vm_pci_device_info{${host}})) or on (instance) sum by (instance) (vfio_iommu_enabled{${host}}) * 0`, '{{instance}}'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 33,
        title: 'Assigned devices in non-viable IOMMU groups',
        pos: [12, 67, 6, 4],
        description: 'Assigned devices whose IOMMU group still holds a device on a host driver: VFIO refuses the whole group ("group is not viable").',
        thresholds: thresholds('green', 1, 'red'),
        colorMode: 'background',
        textMode: 'value_and_name',
        targets: [
          q(assignedDevicesInNonViableGroupsOrNone(host, `vfio_iommu_enabled{${host}}`), '{{instance}}'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 34,
        title: 'Devices on vfio drivers',
        pos: [18, 67, 6, 4],
        description: 'Devices bound to vfio-pci or a vfio variant driver, ready to be passed through.',
        textMode: 'value_and_name',
        targets: [
          q(`sum by (instance) (vfio_pci_device_vfio_bound{${host}})`, '{{instance}}'),
        ],
      }),
    )
    .withPanel(
      tablePanel({
        id: 35,
        title: 'PCI devices',
        pos: [0, 71, 24, 12],
        description: 'Every PCI device with its names, bound driver, IOMMU group and the VM it is assigned to. Rows in red: assigned to a VM but bound to a host driver.',
        columns: {
          hide: ['Time', '__name__', 'job', 'Value #A', 'Value #B', 'Value #D'],
          order: ['instance', 'pci_address', 'vendor_name', 'device_name', 'class_name', 'vendor_id', 'device_id', 'driver', 'Value #C', 'iommu_group', 'vmid', 'name', 'slot', 'Value #E', 'numa_node'],
          rename: { instance: 'host', pci_address: 'address', vendor_name: 'vendor', device_name: 'device', class_name: 'class', vendor_id: 'vendor id', device_id: 'device id', 'Value #C': 'vfio', iommu_group: 'IOMMU group', vmid: 'VM', name: 'VM name', 'Value #E': 'passthrough', numa_node: 'NUMA node' },
        },
        sortBy: { column: 'address' },
        overrides: [
          byName('vfio', { mappings: [valueMap(['0', 'no', 'text'], ['1', 'yes', 'green'])] }),
          byName('driver', { mappings: [regexMap('.*vfio.*', 'green')], 'custom.cellOptions': { type: 'color-text' } }),
          byName('passthrough', { mappings: [valueMap(['0', 'not assigned', 'transparent'], ['1', 'ready for VFIO', 'green'], ['2', 'HOST DRIVER', 'red'])], 'custom.cellOptions': { type: 'color-background', mode: 'basic', applyToRow: true } }),
        ],
        targets: [
          q(`max by (instance, pci_address, vendor_id, device_id, vendor_name, device_name, class_name, iommu_group, numa_node) (vfio_pci_device_info{${host}})`),
          q(`max by (instance, pci_address, driver) (vfio_pci_device_driver_info{${host}})`),
          q(`max by (instance, pci_address) (vfio_pci_device_vfio_bound{${host}})`),
          q(`max by (instance, pci_address, vmid, slot, name) (vfio_vm_pci_device_info{${host}} * on (instance, vmid) group_left (name) max by (instance, vmid, name) (vfio_vm_info{${host}}))`),
          q(`max by (instance, pci_address) (vfio_vm_pci_device_info{${host}}) * on (instance, pci_address) (2 - max by (instance, pci_address) (vfio_pci_device_vfio_bound{${host}})) or on (instance, pci_address) max by (instance, pci_address) (vfio_pci_device_vfio_bound{${host}}) * 0`),
        ],
      }),
    )
    .withPanel(
      tablePanel({
        id: 36,
        title: 'IOMMU groups',
        pos: [0, 83, 12, 10],
        description: 'Each IOMMU group: how many devices it holds, whether VFIO would accept it now, and how many of its devices VMs take. Rows in red hold a passed-through device but are not viable: move the other devices to vfio-pci or pci-stub, or use another slot.',
        columns: {
          hide: ['Time', '__name__', 'job'],
          order: ['instance', 'iommu_group', 'Value #A', 'Value #B', 'Value #C', 'Value #D'],
          rename: { instance: 'host', iommu_group: 'group', 'Value #A': 'devices', 'Value #B': 'viable', 'Value #C': 'assigned to VMs', 'Value #D': 'passthrough' },
        },
        sortBy: { column: 'passthrough', desc: true },
        overrides: [
          byName('viable', { mappings: [valueMap(['0', 'not viable', 'orange'], ['1', 'viable', 'green'])], 'custom.cellOptions': { type: 'color-text' } }),
          byName('passthrough', { mappings: [valueMap(['0', 'no passthrough', 'transparent'], ['1', 'ready for VFIO', 'green'], ['2', 'NOT VIABLE', 'red'])], 'custom.cellOptions': { type: 'color-background', mode: 'basic', applyToRow: true } }),
        ],
        targets: [
          q(`max by (instance, iommu_group) (vfio_iommu_group_devices{${host}})`),
          q(`max by (instance, iommu_group) (vfio_iommu_group_viable{${host}})`),
          q(`count by (instance, iommu_group) (vfio_pci_device_info{${host}} and on (instance, pci_address) vfio_vm_pci_device_info{${host}}) or on (instance, iommu_group) max by (instance, iommu_group) (vfio_iommu_group_devices{${host}}) * 0`),
          q(`clamp_max(max by (instance, iommu_group) (vfio_pci_device_info{${host}} * on (instance, pci_address) group_left () max by (instance, pci_address) (vfio_vm_pci_device_info{${host}})), 1) * on (instance, iommu_group) (2 - max by (instance, iommu_group) (vfio_iommu_group_viable{${host}})) or on (instance, iommu_group) max by (instance, iommu_group) (vfio_iommu_group_viable{${host}}) * 0`),
        ],
      }),
    )
    .withPanel(
      tablePanel({
        id: 37,
        title: 'Driver overrides',
        pos: [12, 83, 12, 10],
        description: 'Devices with driver_override set: the driver the kernel will bind on the next probe, whatever the ids say.',
        columns: {
          hide: ['Time', '__name__', 'job', 'Value'],
          order: ['instance', 'pci_address', 'driver_override'],
          rename: { instance: 'host', pci_address: 'address', driver_override: 'driver override' },
        },
        sortBy: { column: 'address' },
        targets: [
          q(`vfio_pci_device_driver_override_info{${host}}`),
        ],
      }),
    )
    .withRow(row(40, 'OOM kills and kernel events', 93))
    .withPanel(
      timeSeriesPanel({
        id: 41,
        title: 'OOM kills',
        pos: [0, 94, 12, 8],
        description: 'OOM kills on the host (any process, /proc/vmstat) and kills of VM processes (from the kernel log).',
        bars: true,
        fillOpacity: 80,
        legendCalcs: ['sum'],
        targets: [
          q(`sum by (instance) (increase(vfio_oom_kills_total{${host}}[$__rate_interval]))`, '{{instance}} all processes'),
          q(`sum by (instance, vmid) (increase(vfio_oom_kill_events_total{${host}, vmid=~"$vmid", vmid!=""}[$__rate_interval]))`, '{{instance}} VM {{vmid}}'),
        ],
      }),
    )
    .withPanel(
      tablePanel({
        id: 42,
        title: 'OOM kills of VMs',
        pos: [12, 94, 12, 8],
        description: 'The last OOM kill of each VM: the process killed, its RSS when it died and when. A passthrough VM killed at start needed more memory than the host had: compare its RSS at kill with the start headroom.',
        columns: {
          hide: ['Time', '__name__', 'job', 'Value #D'],
          order: ['instance', 'vmid', 'name', 'comm', 'constraint', 'Value #A', 'Value #B', 'Value #C'],
          rename: { instance: 'host', vmid: 'VM', comm: 'process', 'Value #A': 'kills', 'Value #B': 'RSS at kill', 'Value #C': 'last killed at' },
        },
        sortBy: { column: 'last killed at', desc: true },
        overrides: [
          byName('RSS at kill', { unit: 'bytes' }),
          byName('last killed at', { unit: 'dateTimeAsIso' }),
        ],
        targets: [
          q(`max by (instance, vmid, comm, constraint) (vfio_oom_kill_events_total{${host}, vmid=~"$vmid", vmid!=""})`),
          q(`max by (instance, vmid) (vfio_vm_oom_killed_rss_bytes{${host}, vmid=~"$vmid"})`),
          q(`max by (instance, vmid) (vfio_vm_last_oom_kill_timestamp_seconds{${host}, vmid=~"$vmid"}) * 1000`),
          q(`max by (instance, vmid, name) (vfio_vm_info{${host}, vmid=~"$vmid"}) and on (instance, vmid) vfio_vm_last_oom_kill_timestamp_seconds{${host}, vmid=~"$vmid"}`),
        ],
      }),
    )
    .withPanel(
      timeSeriesPanel({
        id: 43,
        title: 'Passthrough trouble in the kernel log',
        pos: [0, 102, 12, 8],
        description: 'Kernel messages that break passthrough: VFIO pin failures (RLIMIT_MEMLOCK), IOMMU faults, non-viable groups, BAR reservation failures.',
        bars: true,
        fillOpacity: 80,
        legendCalcs: ['sum'],
        targets: [
          q(`sum by (instance, kind) (increase(vfio_kernel_events_total{${host}}[$__rate_interval]))`, '{{instance}} {{kind}}'),
        ],
      }),
    )
    .withPanel(
      timeSeriesPanel({
        id: 44,
        title: 'Kernel log reader',
        pos: [12, 102, 12, 8],
        description: 'Records the exporter read from /dev/kmsg, records lost because it fell behind the ring (overruns), and records it could not parse. Overruns mean kills may be missing from the table.',
        fillOpacity: 10,
        legendCalcs: ['sum'],
        targets: [
          q(`sum by (instance) (increase(vfio_kmsg_records_total{${host}}[$__rate_interval]))`, '{{instance}} records'),
          q(`sum by (instance) (increase(vfio_kmsg_overruns_total{${host}}[$__rate_interval]))`, '{{instance}} overruns'),
          q(`sum by (instance) (increase(vfio_kmsg_parse_errors_total{${host}}[$__rate_interval]))`, '{{instance}} parse errors'),
        ],
      }),
    )
    .withRow(row(70, 'PCI device health: boot binding, reset, PCIe errors, SR-IOV', 110))
    .withPanel(
      statPanel({
        id: 71,
        title: 'Assigned devices without a reset method',
        pos: [0, 111, 6, 4],
        description: "Devices a VM config assigns for which the kernel has no reset method, nor for any other function of their slot (reset_method empty or hidden, kernel 5.15+): VFIO cannot reset them between VM runs, so a VM reboot or second start inherits the device's state (the GPU reset bug).",
        thresholds: thresholds('green', 1, 'red'),
        colorMode: 'background',
        textMode: 'value_and_name',
        targets: [
          q(`count by (instance) (max by (instance, pci_address) (vfio_vm_pci_device_info{${host}}) and on (instance, pci_address) (max by (instance, pci_address) (vfio:pci_device_slot_reset_methods{${host}}) == 0)) or on (instance) sum by (instance) (vfio_iommu_enabled{${host}}) * 0`, '{{instance}}'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 75,
        title: 'On-boot devices a host driver claims at boot',
        pos: [0, 115, 6, 4],
        description: 'Devices of VMs that start on boot which a host module (ahci, igb, nouveau…) claims at boot before vfio-pci: neither vfio-pci ids= with a softdep or blacklist of the module reserves them. vfio-exporter check names the lines to add.',
        thresholds: thresholds('green', 1, 'red'),
        colorMode: 'background',
        textMode: 'value_and_name',
        targets: [
          q(`count by (instance) (max by (instance, pci_address) (vfio_vm_pci_device_info{${host}} * on (instance, job, vmid) group_left () (vfio_vm_start_on_boot{${host}} == 1)) and on (instance, pci_address) (max by (instance, pci_address) (vfio_pci_device_boot_vfio_reserved{${host}}) == 0) and on (instance, pci_address) max by (instance, pci_address) (vfio_pci_device_boot_module_info{${host}, module!~"vfio_pci|pci_stub"})) or on (instance) sum by (instance) (vfio_iommu_enabled{${host}}) * 0`, '{{instance}}'),
        ],
      }),
    )
    .withPanel(
      statPanel({
        id: 72,
        title: 'Uncorrectable PCIe errors on assigned devices',
        pos: [6, 111, 6, 8],
        description: "AER non-fatal and fatal error messages sent by devices assigned to VMs, over the dashboard's time range. The alert VfioPassthroughDeviceAERErrors also looks at the port each device sits behind.",
        thresholds: thresholds('green', 1, 'red'),
        colorMode: 'background',
        textMode: 'value_and_name',
        targets: [
          q(`sum by (instance) (sum by (instance, pci_address) (increase(vfio_pci_device_aer_error_messages_total{${host}, severity=~"nonfatal|fatal"}[$__range])) * on (instance, pci_address) max by (instance, pci_address) (vfio_vm_pci_device_info{${host}})) or on (instance) sum by (instance) (vfio_iommu_enabled{${host}}) * 0`, '{{instance}}'),
        ],
      }),
    )
    .withPanel(
      timeSeriesPanel({
        id: 73,
        title: 'PCIe AER errors',
        pos: [12, 111, 12, 8],
        description: 'PCIe Advanced Error Reporting: error messages each device sent, by severity. Correctable errors are recovered by the link; non-fatal and fatal ones lose transactions or the link.',
        bars: true,
        fillOpacity: 80,
        legendCalcs: ['sum'],
        targets: [
          q(`sum by (instance, pci_address, severity) (increase(vfio_pci_device_aer_error_messages_total{${host}}[$__rate_interval]))`, '{{instance}} {{pci_address}} {{severity}}'),
        ],
      }),
    )
    .withPanel(
      tablePanel({
        id: 74,
        title: 'Device reset, PCIe errors and SR-IOV',
        pos: [0, 119, 24, 10],
        description: 'Per PCI device: how many reset methods the kernel has (0: none), uncorrectable and correctable PCIe errors since the device was added, the port it sits behind, the VM it is assigned to, and for SR-IOV functions their physical function (a PF names itself) with the VFs it supports and has enabled, so a VF given to a VM shows its PF.',
        columns: {
          hide: ['Time', '__name__', 'job', 'Value #D', 'Value #E', 'Value #F'],
          order: ['instance', 'pci_address', 'Value #A', 'Value #B', 'Value #C', 'parent_address', 'vmid', 'name', 'slot', 'physfn_address', 'vf_index', 'Value #G', 'Value #H', 'Value #I'],
          rename: { instance: 'host', pci_address: 'address', 'Value #A': 'reset methods', 'Value #B': 'uncorrectable errors', 'Value #C': 'correctable errors', parent_address: 'behind port', vmid: 'VM', name: 'VM name', physfn_address: 'physical function', vf_index: 'VF', 'Value #G': 'VFs supported', 'Value #H': 'VFs enabled', 'Value #I': 'vfio-pci at boot' },
        },
        sortBy: { column: 'address' },
        overrides: [
          byName('reset methods', { mappings: [valueMap(['0', 'none', 'red'])], 'custom.cellOptions': { type: 'color-text' } }),
          byName('vfio-pci at boot', { mappings: [valueMap(['0', 'no', 'text'], ['1', 'yes', 'green'])], 'custom.cellOptions': { type: 'color-text' } }),
          byName('uncorrectable errors', { thresholds: thresholds('text', 1, 'red'), 'custom.cellOptions': { type: 'color-text' } }),
        ],
        targets: [
          q(`max by (instance, pci_address) (vfio_pci_device_reset_methods{${host}})`),
          q(`sum by (instance, pci_address) (vfio_pci_device_aer_error_messages_total{${host}, severity=~"nonfatal|fatal"})`),
          q(`sum by (instance, pci_address) (vfio_pci_device_aer_error_messages_total{${host}, severity="correctable"})`),
          q(`max by (instance, pci_address, vmid, slot, name) (vfio_vm_pci_device_info{${host}} * on (instance, vmid) group_left (name) max by (instance, vmid, name) (vfio_vm_info{${host}}))`),
          q(`max by (instance, pci_address, physfn_address, vf_index) (vfio_pci_device_sriov_vf_info{${host}}) or on (instance, pci_address) label_replace(label_join(max by (instance, pci_address) (vfio_pci_device_sriov_totalvfs{${host}}), "physfn_address", "", "pci_address"), "vf_index", "PF", "pci_address", ".*")`),
          q(`max by (instance, pci_address, parent_address) (vfio_pci_device_parent_info{${host}})`),
          q(`max by (instance, pci_address) (vfio_pci_device_sriov_totalvfs{${host}})`),
          q(`max by (instance, pci_address) (vfio_pci_device_sriov_numvfs{${host}})`),
          q(`max by (instance, pci_address) (vfio_pci_device_boot_vfio_reserved{${host}})`),
        ],
      }),
    )
    .withRow(
      row(50, 'Exporter', 129, { collapsed: true })
        .withPanel(
          statPanel({
            id: 51,
            title: 'Exporter up',
            pos: [0, 130, 4, 8],
            description: 'Prometheus reached the exporter at its last scrape.',
            mappings: [valueMap(['0', 'DOWN', 'red'], ['1', 'up', 'green'])],
            colorMode: 'background',
            textMode: 'value_and_name',
            targets: [
              q(`up{${host}}`, '{{instance}}'),
            ],
          }),
        )
        .withPanel(
          statPanel({
            id: 52,
            title: 'Last sample age',
            pos: [4, 130, 4, 8],
            description: 'Time since the exporter last sampled the host. Much more than the sample interval: the sampler is stuck.',
            unit: 's',
            thresholds: thresholds('green', 60, 'orange', 300, 'red'),
            textMode: 'value_and_name',
            targets: [
              q(`time() - vfio_last_sample_timestamp_seconds{${host}}`, '{{instance}}'),
            ],
          }),
        )
        .withPanel(
          stateTimelinePanel({
            id: 53,
            title: 'Collector success',
            pos: [8, 130, 16, 8],
            description: 'Whether each collector ran without errors. A failing collector still exports what it could read; its log says why.',
            mappings: [valueMap(['0', 'FAILING', 'red'], ['1', 'ok', 'green'])],
            targets: [
              q(`vfio_collector_success{${host}}`, '{{instance}} {{collector}}'),
            ],
          }),
        )
        .withPanel(
          timeSeriesPanel({
            id: 54,
            title: 'Collector and scrape durations',
            pos: [0, 138, 12, 8],
            description: 'How long each collector took in the last sample, and how long Prometheus took to scrape.',
            unit: 's',
            fillOpacity: 10,
            legendCalcs: ['lastNotNull', 'max'],
            targets: [
              q(`vfio_collector_duration_seconds{${host}}`, '{{instance}} {{collector}}'),
              q(`scrape_duration_seconds{${host}}`, '{{instance}} scrape'),
            ],
          }),
        )
        .withPanel(
          tablePanel({
            id: 55,
            title: 'Exporter build',
            pos: [12, 138, 12, 8],
            description: 'Version, revision and Node.js runtime of each exporter.',
            columns: {
              hide: ['Time', '__name__', 'job', 'Value'],
              order: ['instance', 'version', 'revision', 'nodejs'],
              rename: { instance: 'host', nodejs: 'Node.js' },
            },
            targets: [
              q(`vfio_exporter_build_info{${host}}`),
            ],
          }),
        ),
    );
}
