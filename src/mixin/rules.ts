import { defaultMixinConfig, describeSelector, hostLabels, promqlString, type MixinConfig } from './config.js';
import { raw, renderRules, section, type Annotations, type RuleGroup } from './rules-yaml.js';

/**
 * The start alert's annotations. Its warning and its critical rule are split on vfio_vm_start_on_boot, so each
 * states what follows for its own kind of VM without querying that series again for every alert.
 */
function startAnnotations(onBoot: boolean): Annotations {
  return {
    summary: 'Starting passthrough VM {{ $labels.vmid }} ({{ $labels.name }}) on {{ $labels.instance }} would {{ if $labels.size }}fail: its {{ $labels.size }} hugepage pool is short{{ else }}trigger the OOM killer{{ end }}',
    description: raw`
      {{ if $labels.size }}VM {{ $labels.vmid }} ({{ $labels.name }}) takes
      {{ with printf "vfio_vm_hugepages_bytes{instance=%q,job=%q,vmid=%q,size=%q}" $labels.instance $labels.job $labels.vmid $labels.size | query }}{{ . | first | value | humanize1024 }}B{{ end }}
      of its RAM from {{ $labels.size }} hugepages, but that pool has
      {{ with printf "vfio:vm_start_available_bytes{instance=%q,job=%q,vmid=%q,size=%q}" $labels.instance $labels.job $labels.vmid $labels.size | query }}{{ . | first | value | humanize1024 }}B{{ end }}
      free and unreserved: headroom {{ $value | humanize1024 }}B. QEMU cannot map its RAM and the start
      fails, no OOM kill (qemu-server first tries to grow the pool and stops with "hugepage allocation
      failed" when the kernel has no such pages to add).
      ${onBoot ? 'It starts on boot: after the next reboot it stays down.' : 'Starting it now fails.'}{{ else }}VM {{ $labels.vmid }} ({{ $labels.name }}) has host PCI devices, so VFIO pins all of its
      {{ with printf "vfio:vm_memory_next_start_bytes{instance=%q,job=%q,vmid=%q}" $labels.instance $labels.job $labels.vmid | query }}{{ . | first | value | humanize1024 }}B{{ end }}
      at start (the balloon cannot lower that), but the host can give it
      {{ with printf "vfio:vm_start_available_bytes{instance=%q,job=%q,vmid=%q}" $labels.instance $labels.job $labels.vmid | query }}{{ . | first | value | humanize1024 }}B{{ end }}
      (MemAvailable + reclaimable ZFS ARC - host reserve):
      headroom {{ $value | humanize1024 }}B.
      ${onBoot ? 'It starts on boot: the next reboot kills it.' : 'Starting it now gets it killed.'}{{ end }}`,
  };
}

/**
 * The recording and alerting rules: alerts/vfio.rules.yml is this, rendered with the default config.
 * Each rule is written once, as it reads in the YAML; `${host}` is the labels of one host's series.
 */
export function ruleGroups(config: MixinConfig): RuleGroup[] {
  const host = hostLabels(config);
  return [
  {
    name: 'vfio.recording',
    rules: [
      section('settings'),
      {
        record: 'vfio:config_host_reserve_bytes',
        expr: `vector(${config.hostReserveBytes})`,
      },
      {
        record: 'vfio:config_memory_exhaustion_horizon_seconds',
        expr: `vector(${config.memoryExhaustionHorizonSeconds})`,
      },
      {
        record: 'vfio:config_memory_drain_warning_seconds',
        expr: `vector(${config.memoryDrainWarningSeconds})`,
      },
      {
        record: 'vfio:config_memory_drain_critical_seconds',
        expr: `vector(${config.memoryDrainCriticalSeconds})`,
      },
      {
        record: 'vfio:config_memory_pressure_full_ratio',
        expr: `vector(${config.memoryPressureFullRatio})`,
      },
      {
        record: 'vfio:config_sample_stale_seconds',
        expr: `vector(${config.sampleStaleSeconds})`,
      },
      {
        record: 'vfio:config_runbook_base_info',
        expr: `label_replace(vector(1), "url", ${promqlString(config.runbookBaseUrl)}, "", "")`,
      },
      section('host memory'),
      {
        comment: `
          The ZFS ARC is not counted in MemAvailable but gives memory back down to c_min under pressure.
          Hosts without ZFS have no ARC series: they get 0 (vfio_last_sample_timestamp_seconds is the one
          series every exporter has).`,
        record: 'vfio:host_zfs_arc_reclaimable_bytes',
        expr: raw`
          clamp_min(vfio_host_zfs_arc_size_bytes - vfio_host_zfs_arc_min_bytes, 0)
            or
          0 * vfio_last_sample_timestamp_seconds`,
      },
      {
        comment: `
          Each host's reserve: its exporter's --memory.host-reserve where that was set (the exporter then
          exports it, and check judges with the same value), else the setting above.`,
        record: 'vfio:host_reserve_bytes',
        expr: raw`
          vfio_exporter_host_reserve_bytes
            or on (${host})
          0 * (vfio_host_memory_total_bytes or vfio_host_memory_available_bytes) + scalar(vfio:config_host_reserve_bytes)`,
      },
      {
        comment: 'What a new VM could take now without the OOM killer stepping in.',
        record: 'vfio:host_memory_headroom_bytes',
        expr: raw`
          vfio_host_memory_available_bytes
            + vfio:host_zfs_arc_reclaimable_bytes
            - on (${host}) group_left () vfio:host_reserve_bytes`,
      },
      {
        record: 'vfio:host_memory_headroom_predicted_bytes',
        expr: 'predict_linear(vfio:host_memory_headroom_bytes[30m], scalar(vfio:config_memory_exhaustion_horizon_seconds))',
      },
      {
        record: 'vfio:host_passthrough_vms_running',
        expr: raw`
          count without (vmid) (vfio_vm_passthrough_devices > 0 and on (${host}, vmid) vfio_vm_running == 1)
            or
          0 * vfio_last_sample_timestamp_seconds`,
      },
      section('OOM kills'),
      {
        comment: `
          Kills of each VM in the last 15 minutes. A VM's first kill creates its counter at 1, which
          increase() cannot see; the time of its last kill can (counted as 1).`,
        record: 'vfio:vm_oom_kills_recent',
        expr: raw`
          sum without (comm, constraint) (increase(vfio_oom_kill_events_total{vmid!=""}[15m])) > 0
            or on (${host}, vmid)
          count without () (vfio_vm_last_oom_kill_timestamp_seconds > time() - 900)`,
      },
      section('memory trend'),
      {
        comment: `
          How fast headroom changes, fitted over the last 5 minutes: 20 samples at the exporter's 15 s,
          5 evaluations at Prometheus' default 1m.`,
        record: 'vfio:host_memory_headroom_change_bytes_per_second',
        expr: 'deriv(vfio:host_memory_headroom_bytes[5m])',
      },
      {
        comment: 'Seconds until headroom is gone at that pace; only while it falls and is not gone yet.',
        record: 'vfio:host_memory_exhaustion_seconds',
        expr: '(vfio:host_memory_headroom_bytes >= 0) / -(vfio:host_memory_headroom_change_bytes_per_second < 0)',
      },
      {
        comment: `
          The lowest headroom of the hour before the last 5 minutes. A busy host falls and recovers
          within its usual range every day; a leak breaks below it.`,
        record: 'vfio:host_memory_headroom_usual_min_bytes',
        expr: 'min_over_time(vfio:host_memory_headroom_bytes[1h] offset 5m)',
      },
    ],
  },
  {
    name: 'vfio.alerts',
    rules: [
      section('host memory'),
      {
        alert: 'VfioHostMemoryLow',
        expr: 'vfio:host_memory_headroom_bytes < 0 and vfio:host_passthrough_vms_running > 0',
        for: '5m',
        severity: 'critical',
        annotations: {
          summary: 'Host {{ $labels.instance }} is out of memory headroom while passthrough VMs run',
          description: raw`
            MemAvailable + reclaimable ZFS ARC is
            {{ with printf "vfio_host_memory_available_bytes{instance=%q,job=%q} + vfio:host_zfs_arc_reclaimable_bytes{instance=%q,job=%q}" $labels.instance $labels.job $labels.instance $labels.job | query }}{{ . | first | value | humanize1024 }}B{{ end }},
            below the {{ with printf "vfio:host_reserve_bytes{instance=%q,job=%q}" $labels.instance $labels.job | query }}{{ . | first | value | humanize1024 }}B{{ end }} host reserve
            (headroom {{ $value | humanize1024 }}B), while
            {{ with printf "vfio:host_passthrough_vms_running{instance=%q,job=%q}" $labels.instance $labels.job | query }}{{ . | first | value }}{{ end }}
            passthrough VM(s) run. Their memory is pinned and cannot be swapped or ballooned: the OOM
            killer picks the largest process, usually one of them.`,
        },
      },
      {
        alert: 'VfioHostMemoryExhaustionPredicted',
        expr: raw`
          vfio:host_memory_headroom_predicted_bytes < 0
            and vfio:host_memory_headroom_bytes >= 0
            and vfio:host_memory_headroom_bytes < vfio:host_memory_headroom_usual_min_bytes
            and vfio:host_passthrough_vms_running > 0`,
        for: '10m',
        severity: 'warning',
        annotations: {
          summary: 'Host {{ $labels.instance }} runs out of memory headroom within {{ with query "vfio:config_memory_exhaustion_horizon_seconds" }}{{ . | first | value | humanizeDuration }}{{ end }}',
          description: raw`
            Memory headroom (MemAvailable + reclaimable ZFS ARC - host reserve) is
            {{ with printf "vfio:host_memory_headroom_bytes{instance=%q,job=%q}" $labels.instance $labels.job | query }}{{ . | first | value | humanize1024 }}B{{ end }}
            and, on the trend of the last 30 minutes, reaches {{ $value | humanize1024 }}B within
            {{ with query "vfio:config_memory_exhaustion_horizon_seconds" }}{{ . | first | value | humanizeDuration }}{{ end }}
            while passthrough VMs run. Their pinned memory cannot be reclaimed: the OOM killer would pick one of them.`,
        },
      },
      {
        alert: 'VfioMemoryPressure',
        expr: 'rate(vfio_host_memory_pressure_stalled_seconds_total{kind="full"}[5m]) > scalar(vfio:config_memory_pressure_full_ratio)',
        for: '10m',
        severity: 'warning',
        annotations: {
          summary: 'Host {{ $labels.instance }} stalls on memory',
          description: raw`
            All non-idle tasks were stalled waiting for memory {{ $value | humanizePercentage }} of the
            time over the last 5 minutes (PSI memory "full"; threshold
            {{ with query "vfio:config_memory_pressure_full_ratio" }}{{ . | first | value | humanizePercentage }}{{ end }}).
            The host is reclaiming hard; the OOM killer is next.`,
        },
      },
      section('fast drain'),
      {
        comment: `
          Headroom falling so fast, on the 5-minute trend, that it is gone within the warning (or
          critical) time; still falling over the last minute (a one-off drop that stopped is not a
          drain) and below the host's usual range of the last hour (a busy host's daily swing is not).`,
        alert: 'VfioHostMemoryDrainingFast',
        expr: raw`
          vfio:host_memory_exhaustion_seconds < scalar(vfio:config_memory_drain_warning_seconds)
            and vfio:host_memory_headroom_bytes < vfio:host_memory_headroom_bytes offset 1m
            and vfio:host_memory_headroom_bytes < vfio:host_memory_headroom_usual_min_bytes
            and vfio:host_passthrough_vms_running > 0`,
        for: '2m',
        severity: 'warning',
        annotations: {
          anchor: 'drain-annotations',
          summary: 'Host {{ $labels.instance }} runs out of memory headroom in {{ $value | printf "%.0f" | humanizeDuration }} at its current pace',
          description: raw`
            Memory headroom (MemAvailable + reclaimable ZFS ARC - host reserve) is
            {{ with printf "vfio:host_memory_headroom_bytes{instance=%q,job=%q}" $labels.instance $labels.job | query }}{{ . | first | value | humanize1024 }}B{{ end }}
            and fell by
            {{ with printf "-60 * vfio:host_memory_headroom_change_bytes_per_second{instance=%q,job=%q}" $labels.instance $labels.job | query }}{{ . | first | value | humanize1024 }}B{{ end }}
            a minute over the last 5 minutes, below anything of the hour before: at that pace it is
            gone in {{ $value | printf "%.0f" | humanizeDuration }}, while
            {{ with printf "vfio:host_passthrough_vms_running{instance=%q,job=%q}" $labels.instance $labels.job | query }}{{ . | first | value }}{{ end }}
            passthrough VM(s) run. Their pinned memory cannot be reclaimed: the OOM killer would pick one of them.`,
        },
      },
      {
        alert: 'VfioHostMemoryDrainingFast',
        expr: raw`
          vfio:host_memory_exhaustion_seconds < scalar(vfio:config_memory_drain_critical_seconds)
            and vfio:host_memory_headroom_bytes < vfio:host_memory_headroom_bytes offset 1m
            and vfio:host_memory_headroom_bytes < vfio:host_memory_headroom_usual_min_bytes
            and vfio:host_passthrough_vms_running > 0`,
        for: '2m',
        severity: 'critical',
        annotations: 'drain-annotations',
      },
      section('OOM kills and kernel trouble'),
      {
        alert: 'VfioVMOOMKilled',
        exprComment: 'vfio_vm_info is joined where present: a killed plain-QEMU VM leaves none.',
        expr: raw`
          vfio:vm_oom_kills_recent * on (${host}, vmid) group_left (name) vfio_vm_info
            or on (${host}, vmid)
          vfio:vm_oom_kills_recent`,
        severity: 'critical',
        annotations: {
          summary: 'VM {{ $labels.vmid }}{{ with $labels.name }} ({{ . }}){{ end }} on {{ $labels.instance }} was killed by the OOM killer',
          description: raw`
            The kernel OOM killer killed VM {{ $labels.vmid }}{{ with $labels.name }} ({{ . }}){{ end }}{{ with printf "vfio_vm_last_oom_kill_timestamp_seconds{instance=%q,job=%q,vmid=%q}" $labels.instance $labels.job $labels.vmid | query }} at {{ . | first | value | humanizeTimestamp }}{{ end }}
            ({{ range $i, $kill := printf "vfio_oom_kill_events_total{instance=%q,job=%q,vmid=%q}" $labels.instance $labels.job $labels.vmid | query | sortByLabel "constraint" }}{{ if $i }}, {{ end }}{{ $kill.Labels.comm }} {{ $kill.Labels.constraint }}{{ end }});
            its RSS at the kill was
            {{ with printf "vfio_vm_oom_killed_rss_bytes{instance=%q,job=%q,vmid=%q}" $labels.instance $labels.job $labels.vmid | query }}{{ . | first | value | humanize1024 }}B{{ else }}not recorded{{ end }}.
            CONSTRAINT_NONE: the whole host ran out of memory; CONSTRAINT_MEMCG: the VM's own cgroup limit.`,
        },
      },
      {
        alert: 'VfioHostOOMKill',
        expr: 'increase(vfio_oom_kills_total[15m]) > 0',
        severity: 'warning',
        annotations: {
          summary: 'The OOM killer ran on {{ $labels.instance }}',
          description: raw`
            The kernel killed {{ $value | printf "%.0f" }} process(es) for lack of memory in the last
            15 minutes (/proc/vmstat oom_kill). A passthrough VM was not among them, or VfioVMOOMKilled
            says so; the next one may be.`,
        },
      },
      {
        alert: 'VfioKernelPassthroughErrors',
        expr: 'increase(vfio_kernel_events_total[15m]) > 0',
        severity: 'warning',
        annotations: {
          summary: 'Kernel reports {{ $labels.kind }} on {{ $labels.instance }}',
          description: raw`
            {{ $value | printf "%.0f" }} kernel log record(s) of kind {{ $labels.kind }} in the last 15 minutes:
            {{ if eq $labels.kind "vfio_pin_failed" }}VFIO could not pin guest memory (RLIMIT_MEMLOCK too low, or no memory left).{{ else if eq $labels.kind "iommu_fault" }}the IOMMU blocked a device's DMA (DMAR / AMD-Vi fault): a device or its driver misbehaves, or a mapping is missing.{{ else if eq $labels.kind "group_not_viable" }}VFIO refused an IOMMU group because a device in it is on a host driver.{{ else if eq $labels.kind "bar_reserve_failed" }}a device's BAR could not be reserved: another driver (often the boot framebuffer) holds its memory.{{ else }}passthrough trouble.{{ end }}
            Read the kernel log: journalctl -k.`,
        },
      },
      section('disks behind passed-through controllers'),
      {
        comment: `
          A controller given to a VM while the host uses its disks: the VM's start tears the disks from
          the host (Proxmox unbinds the host driver), or, with the host driver kept, two kernels write
          the same disks.`,
        alert: 'VfioPassthroughDiskHeldByHost',
        expr: raw`
          vfio_vm_pci_device_info
            * on (${host}, pci_address) group_left ()
              count by (${host}, pci_address) (vfio_block_device_held == 1)
            * on (${host}, vmid) group_left (name) vfio_vm_info`,
        for: '2m',
        severity: 'critical',
        annotations: {
          summary: 'The host uses disks behind {{ $labels.pci_address }}, which is assigned to VM {{ $labels.vmid }} ({{ $labels.name }})',
          description: raw`
            {{ $value | printf "%.0f" }} block device(s) behind {{ $labels.pci_address }}, assigned to VM {{ $labels.vmid }}
            ({{ $labels.name }}, {{ $labels.slot }}), are in use on the host:
            {{ range $i, $holder := printf "vfio_block_device_holder_info{instance=%q,job=%q,pci_address=%q}" $labels.instance $labels.job $labels.pci_address | query | sortByLabel "device" }}{{ if $i }}, {{ end }}{{ $holder.Labels.device }} ({{ $holder.Labels.kind }} {{ $holder.Labels.holder }}){{ end }}.
            Starting the VM takes the disks from under the host; keeping the host driver lets two
            kernels write them. Release them (umount, swapoff, mdadm --stop, vgchange -an, zpool export)
            and reserve the controller for vfio-pci at boot.`,
        },
      },
    ],
  },
  {
    name: 'vfio.exporter',
    interval: '2m30s',
    comment: `
      The exporter itself, on every host: its alerts hold for 5 minutes or more, or wait for a sample 5 minutes
      old. Evaluated every 2m30s, which divides those 5 minutes; a failing collector or a dead target is seen up
      to 2m30s later.`,
    rules: [
      {
        alert: 'VfioExporterCollectorFailing',
        expr: 'vfio_collector_success == 0',
        for: '5m',
        severity: 'warning',
        annotations: {
          summary: 'Collector {{ $labels.collector }} of vfio-exporter fails on {{ $labels.instance }}',
          description: raw`
            The {{ $labels.collector }} collector has reported errors for 5 minutes; its series may be
            missing or incomplete, and the alerts built on them are blind. The exporter logs each error
            as "collector problem" with collector={{ $labels.collector }}.`,
        },
      },
      {
        alert: 'VfioExporterDown',
        expr: `up{${config.exporterSelector}} == 0`,
        for: '5m',
        severity: 'warning',
        annotations: {
          summary: 'vfio-exporter on {{ $labels.instance }} is down',
          description: raw`
            Prometheus has not scraped {{ $labels.instance }} (job {{ $labels.job }}) for 5 minutes:
            no passthrough alert can fire for this host.`,
        },
      },
      {
        alert: 'VfioExporterAbsent',
        expr: `absent(up{${config.exporterSelector}})`,
        for: '15m',
        severity: 'warning',
        annotations: {
          summary: 'Prometheus scrapes no vfio-exporter',
          description: raw`
            No scrape target in ${describeSelector(config.exporterSelector)} exists: the exporter's job was
            removed, renamed, or service discovery lost it. No passthrough alert can fire.`,
        },
      },
      {
        alert: 'VfioExporterSampleStale',
        expr: 'time() - vfio_last_sample_timestamp_seconds > scalar(vfio:config_sample_stale_seconds)',
        severity: 'warning',
        annotations: {
          summary: 'vfio-exporter on {{ $labels.instance }} serves an old sample',
          description: raw`
            The exporter answers scrapes, but its last sample started {{ $value | humanizeDuration }} ago:
            sampling is stuck, and every series it serves is that old.`,
        },
      },
    ],
  },
  {
    name: 'vfio.starts',
    interval: '5m',
    comment: `
      What the start of a stopped VM leaves, and the memory passthrough VMs pin now and after a reboot: host
      headroom, VM configs and which VMs run. Evaluated every 5 minutes, the time its alerts hold: an alert fires
      5 minutes after its condition is first seen, as at 1 minute, and is seen up to 5 minutes later. The alerts
      that read these series are in this group, evaluated after them; no rule of another group reads them.`,
    rules: [
      section('what starts and pinned memory draw on'),
      {
        record: 'vfio:host_zfs_arc_floor_bytes',
        expr: raw`
          vfio_host_zfs_arc_min_bytes
            or
          0 * vfio_last_sample_timestamp_seconds`,
      },
      {
        comment: `
          Hugepage pools per page size (\`size\`: 2M, 1G), from sysfs: /proc/meminfo shows the default size only.
          Free pages already reserved by a mapping (hugetlbfs reserves at mmap) are not there for a new VM.`,
        record: 'vfio:host_hugepages_free_bytes',
        expr: raw`
          (vfio_host_hugepage_pool_free_pages - vfio_host_hugepage_pool_reserved_pages)
          * on (${host}, size) group_left () vfio_host_hugepage_page_size_bytes`,
      },
      {
        record: 'vfio:host_hugepages_pool_bytes',
        expr: `vfio_host_hugepage_pool_pages * on (${host}, size) group_left () vfio_host_hugepage_page_size_bytes`,
      },
      section('passthrough VMs'),
      {
        comment: 'The memory a VM gets at its next start: a pending change (Proxmox [PENDING]) applies then.',
        record: 'vfio:vm_memory_next_start_bytes',
        expr: 'vfio_vm_pending_memory_configured_bytes or vfio_vm_memory_configured_bytes',
      },
      {
        comment: `
          What the start of a stopped passthrough VM can draw on: the host's headroom, or for a VM backed by
          hugepages the free pages of the pool of each page size it uses (\`size\`), none when the host has no
          such pool. A hugepage VM whose pool is unknown (vfio_vm_hugepages_bytes absent) is not judged.
          A template never starts as configured.`,
        record: 'vfio:vm_start_available_bytes',
        expr: raw`
          (
              vfio:host_memory_headroom_bytes
            + on (${host}) group_right
              0 * (vfio_vm_passthrough_devices unless on (${host}, vmid) vfio_vm_hugepages_info)
            or
              vfio:host_hugepages_free_bytes
            + on (${host}, size) group_right
              0 * vfio_vm_hugepages_bytes
            or
              0 * vfio_vm_hugepages_bytes and on (${host}) vfio_host_hugepages
          )
          and on (${host}, vmid) (vfio_vm_passthrough_devices > 0)
          and on (${host}, vmid) (vfio_vm_running == 0)
          unless on (${host}, vmid) (vfio_vm_template == 1)`,
      },
      {
        comment: `
          VFIO pins every byte of guest RAM at start, whatever the balloon says: negative means the
          start triggers the OOM killer; for a hugepage pool (series with \`size\`), that QEMU cannot map
          the guest's RAM and the start fails.`,
        record: 'vfio:vm_start_headroom_bytes',
        expr: raw`
          vfio:vm_start_available_bytes - vfio:vm_memory_next_start_bytes
            or
          vfio:vm_start_available_bytes - vfio_vm_hugepages_bytes`,
      },
      {
        comment: 'Pinned memory the host must hold after a reboot: running and on-boot passthrough VMs, templates aside.',
        record: 'vfio:vm_passthrough_committed_bytes',
        expr: raw`
          (
              label_replace(
                vfio:vm_memory_next_start_bytes unless on (${host}, vmid) vfio_vm_hugepages_info,
                "pool", "memory", "", "")
            or
              label_replace(vfio_vm_hugepages_bytes, "pool", "hugepages", "", "")
          )
          and on (${host}, vmid) (vfio_vm_passthrough_devices > 0)
          and on (${host}, vmid) (vfio_vm_running == 1 or vfio_vm_start_on_boot == 1)
          unless on (${host}, vmid) (vfio_vm_template == 1)`,
      },
      {
        record: 'vfio:host_passthrough_memory_committed_bytes',
        expr: raw`
          sum without (vmid) (vfio:vm_passthrough_committed_bytes)
            or
          label_replace(0 * vfio_last_sample_timestamp_seconds, "pool", "memory", "", "")`,
      },
      {
        comment: `
          RAM outside the hugepage pools, less what the host keeps and the ARC never gives back; and each
          pool (\`size\`), none for a page size VMs use that the host has no pool of.`,
        record: 'vfio:host_passthrough_memory_capacity_bytes',
        expr: raw`
          label_replace(
              vfio_host_memory_total_bytes
            - vfio:host_zfs_arc_floor_bytes
            - (sum without (size) (vfio:host_hugepages_pool_bytes) or 0 * vfio_last_sample_timestamp_seconds)
            - on (${host}) group_left () vfio:host_reserve_bytes,
            "pool", "memory", "", "")
            or
          label_replace(vfio:host_hugepages_pool_bytes, "pool", "hugepages", "", "")
            or
          label_replace(0 * sum without (vmid) (vfio_vm_hugepages_bytes) and on (${host}) vfio_host_hugepages, "pool", "hugepages", "", "")`,
      },
      section('starts of VMs without passthrough'),
      {
        comment: `
          The least a VM takes once its guest has touched its memory: auto-ballooning shrinks it to its
          balloon floor, never below; without a balloon, all of it (at its next start).`,
        record: 'vfio:vm_memory_floor_bytes',
        expr: raw`
          (
              (vfio_vm_memory_balloon_min_bytes and on (${host}, vmid) vfio_vm_balloon_enabled == 1)
            < on (${host}, vmid) group_left () vfio:vm_memory_next_start_bytes
          )
            or
          vfio:vm_memory_next_start_bytes`,
      },
      {
        comment: `
          What the start of a stopped VM without passthrough (not on hugepages, not a template) leaves on a host
          whose passthrough VMs run: negative means the OOM killer must free memory, and it picks the
          largest process, a passthrough VM with all its RAM pinned.`,
        record: 'vfio:vm_start_passthrough_headroom_bytes',
        expr: raw`
          (
              vfio:host_memory_headroom_bytes
            - on (${host}) group_right
              vfio:vm_memory_floor_bytes
          )
          and on (${host}, vmid) (vfio_vm_passthrough_devices == 0)
          and on (${host}, vmid) (vfio_vm_running == 0)
          unless on (${host}, vmid) vfio_vm_hugepages_info
          and on (${host}) (vfio:host_passthrough_vms_running > 0)
          unless on (${host}, vmid) (vfio_vm_template == 1)`,
      },
      section('alerts on starts and pinned memory'),
      {
        alert: 'VfioPassthroughVMStartWouldOOM',
        expr: raw`
          (vfio:vm_start_headroom_bytes < 0 unless on (${host}, vmid) vfio_vm_start_on_boot == 1)
          * on (${host}, vmid) group_left (name) vfio_vm_info`,
        for: '5m',
        severity: 'warning',
        annotations: startAnnotations(false),
      },
      {
        alert: 'VfioPassthroughVMStartWouldOOM',
        expr: raw`
          (vfio:vm_start_headroom_bytes < 0 and on (${host}, vmid) vfio_vm_start_on_boot == 1)
          * on (${host}, vmid) group_left (name) vfio_vm_info`,
        for: '5m',
        severity: 'critical',
        annotations: startAnnotations(true),
      },
      {
        alert: 'VfioVMStartEndangersPassthrough',
        expr: raw`
          (vfio:vm_start_passthrough_headroom_bytes < 0)
          * on (${host}, vmid) group_left (name) vfio_vm_info`,
        for: '5m',
        severity: 'warning',
        annotations: {
          summary: 'Starting VM {{ $labels.vmid }} ({{ $labels.name }}) on {{ $labels.instance }} would put its running passthrough VMs at risk',
          description: raw`
            VM {{ $labels.vmid }} ({{ $labels.name }}) has no host PCI device, but once started it takes at least
            {{ with printf "vfio:vm_memory_floor_bytes{instance=%q,job=%q,vmid=%q}" $labels.instance $labels.job $labels.vmid | query }}{{ . | first | value | humanize1024 }}B{{ end }}
            (its balloon floor, or all of its memory without a balloon) and the host has
            {{ with printf "vfio:host_memory_headroom_bytes{instance=%q,job=%q}" $labels.instance $labels.job | query }}{{ . | first | value | humanize1024 }}B{{ end }}
            of headroom: {{ $value | humanize1024 }}B after its start. The OOM killer then picks the largest process,
            a passthrough VM whose memory is pinned:
            {{ range $i, $vm := printf "vfio_vm_info{instance=%q,job=%q} and on (instance, job, vmid) (vfio_vm_passthrough_devices{instance=%q,job=%q} > 0) and on (instance, job, vmid) (vfio_vm_running{instance=%q,job=%q} == 1)" $labels.instance $labels.job $labels.instance $labels.job $labels.instance $labels.job | query | sortByLabel "vmid" }}{{ if $i }}, {{ end }}VM {{ $vm.Labels.vmid }} ({{ $vm.Labels.name }}){{ end }}.`,
        },
      },
      section('pinned memory after a reboot'),
      {
        alert: 'VfioPassthroughMemoryOvercommitted',
        expr: 'vfio:host_passthrough_memory_committed_bytes > vfio:host_passthrough_memory_capacity_bytes',
        for: '5m',
        severity: 'warning',
        annotations: {
          summary: 'Passthrough VMs on {{ $labels.instance }} need more {{ if $labels.size }}{{ $labels.size }} {{ end }}{{ $labels.pool }} than the host has',
          description: raw`
            Running and on-boot passthrough VMs pin {{ $value | humanize1024 }}B of {{ if $labels.size }}{{ $labels.size }} {{ end }}{{ $labels.pool }}
            ({{ range $i, $vm := printf "vfio:vm_passthrough_committed_bytes{instance=%q,job=%q,pool=%q,size=%q}" $labels.instance $labels.job $labels.pool $labels.size | query | sortByLabel "vmid" }}{{ if $i }}, {{ end }}VM {{ $vm.Labels.vmid }} {{ $vm.Value | humanize1024 }}B{{ end }}),
            but the host can hold
            {{ with printf "vfio:host_passthrough_memory_capacity_bytes{instance=%q,job=%q,pool=%q,size=%q}" $labels.instance $labels.job $labels.pool $labels.size | query }}{{ . | first | value | humanize1024 }}B{{ end }}
            ({{ if eq $labels.pool "hugepages" }}the {{ $labels.size }} hugepage pool{{ else }}MemTotal - host reserve - ZFS ARC c_min - hugepage pools{{ end }}).
            After a reboot they cannot all start: one of them is killed by the OOM killer or fails to start.`,
        },
      },
      {
        alert: 'VfioPassthroughVMBalloonEnabled',
        expr: raw`
          (
              (vfio_vm_memory_balloon_min_bytes < on (${host}, vmid) group_left () vfio_vm_memory_configured_bytes)
            and on (${host}, vmid) (vfio_vm_balloon_enabled == 1)
            and on (${host}, vmid) (vfio_vm_passthrough_devices > 0)
          )
          * on (${host}, vmid) group_left (name) vfio_vm_info`,
        for: '5m',
        severity: 'warning',
        annotations: {
          summary: 'Passthrough VM {{ $labels.vmid }} ({{ $labels.name }}) on {{ $labels.instance }} has ballooning on',
          description: raw`
            VM {{ $labels.vmid }} ({{ $labels.name }}) has host PCI devices and a balloon floor of
            {{ $value | humanize1024 }}B below its
            {{ with printf "vfio_vm_memory_configured_bytes{instance=%q,job=%q,vmid=%q}" $labels.instance $labels.job $labels.vmid | query }}{{ . | first | value | humanize1024 }}B{{ end }}.
            VFIO pins all guest RAM, so the balloon cannot give any back: the host must hold the full
            amount, and sizing the host by the floor ends in the OOM killer.`,
        },
      },
    ],
  },
  {
    name: 'vfio.devices',
    interval: '5m',
    comment: `
      Devices, IOMMU groups and the disks behind controllers assigned to stopped VMs: bindings and hardware
      change at boot or by hand, and these alerts hold for 5 or 10 minutes, whole evaluations of 5 minutes; a
      change is seen up to 5 minutes later. Disks the host holds page within minutes and stay in vfio.alerts.`,
    rules: [
      section('devices and IOMMU'),
      {
        comment: `
          The devices meant for VMs, with every label of vfio_pci_device_info: assigned to a VM or bound to a
          vfio driver. The rules below read these few instead of every device of every host.`,
        record: 'vfio:pci_device_passthrough_info',
        expr: raw`
          vfio_pci_device_info
          and on (${host}, pci_address) (vfio_vm_pci_device_info or vfio_pci_device_driver_info{driver=~".*vfio.*"})`,
      },
      {
        comment: `
          vfio_pci_device_vfio_bound is 1 exactly when the driver's name has "vfio" in it: matching the driver
          label selects the few vfio-bound devices instead of every device of every host.`,
        alert: 'VfioPassthroughDeviceOnHostDriver',
        expr: raw`
          (
              vfio_vm_pci_device_info
            * on (${host}, pci_address) group_left (driver)
              vfio_pci_device_driver_info{driver!~"none|pci-stub|.*vfio.*"}
          )
          * on (${host}, pci_address) group_left (iommu_group) vfio:pci_device_passthrough_info
          * on (${host}, vmid) group_left (name) vfio_vm_info`,
        for: '5m',
        severity: 'warning',
        annotations: {
          summary: 'Device {{ $labels.pci_address }} of VM {{ $labels.vmid }} ({{ $labels.name }}) is on host driver {{ $labels.driver }}',
          description: raw`
            {{ with printf "vfio_pci_device_info{instance=%q,job=%q,pci_address=%q}" $labels.instance $labels.job $labels.pci_address | query }}{{ with first . }}{{ .Labels.device_name }} [{{ reReplaceAll "0x" "" .Labels.vendor_id }}:{{ reReplaceAll "0x" "" .Labels.device_id }}]{{ end }}{{ end }}
            at {{ $labels.pci_address }} is assigned to VM {{ $labels.vmid }} ({{ $labels.name }}, {{ $labels.slot }})
            but bound to the host driver {{ $labels.driver }}, not vfio-pci: the host uses the device (disks
            mounted, pools imported, links up) and the VM's start has to tear it away.
            Have vfio-pci claim it at boot{{ with printf "vfio_pci_device_info{instance=%q,job=%q,pci_address=%q}" $labels.instance $labels.job $labels.pci_address | query }}{{ with first . }} (vfio-pci.ids={{ reReplaceAll "0x" "" .Labels.vendor_id }}:{{ reReplaceAll "0x" "" .Labels.device_id }}, softdep {{ $labels.driver }} pre: vfio-pci){{ end }}{{ end }}.`,
        },
      },
      {
        alert: 'VfioIOMMUGroupNotViable',
        expr: raw`
          vfio_iommu_group_viable == 0
          and on (${host}, iommu_group)
            group by (${host}, iommu_group) (vfio:pci_device_passthrough_info)`,
        for: '5m',
        severity: 'warning',
        annotations: {
          summary: 'IOMMU group {{ $labels.iommu_group }} on {{ $labels.instance }} cannot be passed through',
          description: raw`
            IOMMU group {{ $labels.iommu_group }} holds a device meant for a VM, but
            {{ range $i, $device := printf "vfio_pci_device_driver_info{instance=%q,job=%q,driver!~\"none|pci-stub|.*vfio.*\"} and on (pci_address) vfio_pci_device_info{instance=%q,job=%q,iommu_group=%q,class_id!~\"0x0604.*\"}" $labels.instance $labels.job $labels.instance $labels.job $labels.iommu_group | query | sortByLabel "pci_address" }}{{ if $i }}, {{ end }}{{ $device.Labels.pci_address }} ({{ $device.Labels.driver }}){{ end }}
            in the same group is on a host driver. VFIO takes whole groups only: a VM using this group
            does not start.`,
        },
      },
      {
        alert: 'VfioIOMMUDisabled',
        expr: 'count without (vmid) (vfio_vm_passthrough_devices > 0) and vfio_iommu_enabled == 0',
        for: '5m',
        severity: 'critical',
        annotations: {
          summary: 'IOMMU is off on {{ $labels.instance }}, which has passthrough VMs',
          description: raw`
            {{ $value }} VM(s) have host PCI devices configured, but the kernel has no IOMMU groups:
            none of them can start. Enable VT-d / AMD-Vi in the firmware and boot with intel_iommu=on
            (Intel) or amd_iommu=on, plus iommu=pt.`,
        },
      },
      {
        alert: 'VfioPassthroughDeviceMissing',
        expr: raw`vfio_vm_pci_device_present * on (${host}, vmid) group_left (name) vfio_vm_info == 0`,
        for: '5m',
        severity: 'warning',
        annotations: {
          summary: 'VM {{ $labels.vmid }} ({{ $labels.name }}) is assigned {{ $labels.pci_address }}, which {{ $labels.instance }} does not have',
          description: raw`
            VM {{ $labels.vmid }} ({{ $labels.name }}) has {{ $labels.pci_address }} as {{ $labels.slot }}, but the
            host's PCI bus lists no device at that address: the VM fails to start (or lost the device it runs with).
            A card moved to another slot, died, or was hidden by a firmware change.`,
        },
      },
      section('disks behind passed-through controllers'),
      {
        alert: 'VfioPassthroughControllerDisksOnHost',
        expr: raw`
          vfio_vm_pci_device_info
            * on (${host}, pci_address) group_left () (vfio_pci_device_block_devices > 0)
            * on (${host}, vmid) group_left (name) (vfio_vm_info and on (${host}, vmid) vfio_vm_running == 0)`,
        for: '10m',
        severity: 'warning',
        annotations: {
          summary: 'The host sees the disks behind {{ $labels.pci_address }} of stopped VM {{ $labels.vmid }} ({{ $labels.name }})',
          description: raw`
            {{ $labels.pci_address }}, assigned to VM {{ $labels.vmid }} ({{ $labels.name }}, {{ $labels.slot }}), is on a
            host driver with {{ $value | printf "%.0f" }} block device(s) visible to the host
            ({{ range $i, $device := printf "vfio_block_device_info{instance=%q,job=%q,pci_address=%q,type=\"disk\"}" $labels.instance $labels.job $labels.pci_address | query | sortByLabel "device" }}{{ if $i }}, {{ end }}{{ $device.Labels.device }} {{ $device.Labels.model }}{{ end }}):
            until the VM starts, the host can mount, assemble or import them. Reserve the controller
            for vfio-pci at boot so the host never sees its disks.`,
        },
      },
    ],
  },
  {
    name: 'vfio.devices.health',
    interval: '5m',
    comment: `
      Whether a passthrough device survives its VM's life: a reset between VM runs, a clean PCIe link, a
      reservation at boot. Reset methods and boot bindings change with the kernel or its command line, PCIe
      errors are counted over 15 minutes: evaluated every 5 minutes.`,
    rules: [
      {
        comment: `
          Uncorrectable PCIe errors (ERR_NONFATAL, ERR_FATAL messages) each device sent in the last 15 minutes;
          devices that sent none are not recorded, of the many the exporter counts errors for.`,
        record: 'vfio:pci_device_aer_uncorrectable_recent',
        expr: raw`sum without (severity) (increase(vfio_pci_device_aer_error_messages_total{severity=~"nonfatal|fatal"}[15m])) > 0`,
      },
      {
        comment: `
          VFIO resets a device when its VM starts and stops. A function of a multi-function card without a
          method of its own is reset with the slot through a sibling that has one (the kernel gives \`bus\` to
          the first function only), so what counts is the most methods any function of the slot (bus:device) has.
          Recorded for the devices assigned to a VM that the host's bus lists, the ones the alert and the overview
          look at, not one per device of the host; vfio_vm_pci_device_present names them without a second read of
          every device's reset_methods.`,
        record: 'vfio:pci_device_slot_reset_methods',
        expr: raw`
          0 * label_replace(max without (vmid, slot) (vfio_vm_pci_device_present == 1), "pci_slot", "$1", "pci_address", "^(.+)\\.[0-7]$")
            + on (${host}, pci_slot) group_left ()
          max by (${host}, pci_slot) (label_replace(vfio_pci_device_reset_methods, "pci_slot", "$1", "pci_address", "^(.+)\\.[0-7]$"))`,
      },
      {
        alert: 'VfioPassthroughDeviceNoReset',
        expr: raw`
          (
              vfio_vm_pci_device_info
            and on (${host}, pci_address)
              vfio:pci_device_slot_reset_methods == 0
          )
          * on (${host}, vmid) group_left (name) vfio_vm_info`,
        for: '5m',
        severity: 'warning',
        annotations: {
          summary: 'Device {{ $labels.pci_address }} of VM {{ $labels.vmid }} ({{ $labels.name }}) has no reset method',
          description: raw`
            {{ with printf "vfio_pci_device_info{instance=%q,job=%q,pci_address=%q}" $labels.instance $labels.job $labels.pci_address | query }}{{ with first . }}{{ .Labels.device_name }} [{{ reReplaceAll "0x" "" .Labels.vendor_id }}:{{ reReplaceAll "0x" "" .Labels.device_id }}]{{ end }}{{ end }}
            at {{ $labels.pci_address }}, assigned to VM {{ $labels.vmid }} ({{ $labels.name }}, {{ $labels.slot }}),
            has no reset method the kernel can use (reset_method: no FLR, no PM reset, no bus reset), nor has any
            other function of its slot. QEMU logs "no available reset mechanism": the device keeps the state the
            guest left it in, so a VM reboot or a second start can hang the guest driver or the host.`,
        },
      },
      {
        comment: `
          The kernel counts an error where it was detected: on the device, or on its link partner above it
          (the port it sits behind), which may see a misbehaving endpoint's errors while the endpoint counts none.`,
        alert: 'VfioPassthroughDeviceAERErrors',
        expr: raw`
          (
              label_replace(
                  vfio_vm_pci_device_info
                * on (${host}, pci_address) group_left ()
                  (vfio:pci_device_aer_uncorrectable_recent > 0),
                "reported_by", "$1", "pci_address", "^(.+)$"
              )
            or
                vfio_vm_pci_device_info
              * on (${host}, pci_address) group_left (reported_by)
                (
                    label_replace(vfio_pci_device_parent_info, "reported_by", "$1", "parent_address", "^(.+)$")
                  * on (${host}, reported_by) group_left ()
                    label_replace(vfio:pci_device_aer_uncorrectable_recent > 0, "reported_by", "$1", "pci_address", "^(.+)$")
                )
          )
          * on (${host}, vmid) group_left (name) vfio_vm_info`,
        severity: 'warning',
        annotations: {
          summary: 'Uncorrectable PCIe errors on device {{ $labels.pci_address }} of VM {{ $labels.vmid }} ({{ $labels.name }})',
          description: raw`
            {{ $labels.reported_by }}{{ if ne $labels.reported_by $labels.pci_address }}, the port {{ $labels.pci_address }} sits behind,{{ end }}
            reported {{ $value | printf "%.0f" }} uncorrectable PCIe error(s) (AER ERR_NONFATAL or ERR_FATAL) in the last
            15 minutes. {{ $labels.pci_address }} is assigned to VM {{ $labels.vmid }} ({{ $labels.name }}, {{ $labels.slot }}):
            the guest may have lost the device, and the link or the card is failing.`,
        },
      },
      {
        comment: `
          A VM that starts on boot needs its devices on vfio-pci before it starts; a host driver that loads
          first takes them (and the disks or links behind them) at every boot, as ahci took the seed's controller.`,
        alert: 'VfioPassthroughDeviceNotReservedAtBoot',
        expr: raw`
          (
              (
                  vfio_vm_pci_device_info
                * on (${host}, vmid) group_left ()
                  (vfio_vm_start_on_boot == 1)
              )
            and on (${host}, pci_address)
              (vfio_pci_device_boot_vfio_reserved == 0)
            and on (${host}, pci_address)
              vfio_pci_device_boot_module_info{module!~"pci_stub|vfio_pci"}
            unless on (${host}, vmid)
              (vfio_vm_template == 1)
          )
          * on (${host}, vmid) group_left (name) vfio_vm_info`,
        for: '5m',
        severity: 'warning',
        annotations: {
          summary: 'A host driver claims device {{ $labels.pci_address }} of VM {{ $labels.vmid }} ({{ $labels.name }}) at boot',
          description: raw`
            {{ $labels.pci_address }} is assigned to VM {{ $labels.vmid }} ({{ $labels.name }}, {{ $labels.slot }}), which starts on boot,
            but at boot the kernel module{{ range printf "vfio_pci_device_boot_module_info{instance=%q,job=%q,pci_address=%q}" $labels.instance $labels.job $labels.pci_address | query }} {{ .Labels.module }}{{ end }}
            claims it before vfio-pci: nothing reserves it (vfio-pci ids= together with a softdep or blacklist of that module).
            The host uses the device until the VM's start tears it away.`,
        },
      },
    ],
  },
  ];
}

function header(config: MixinConfig): string {
  const host = hostLabels(config);
  const scrapeAdvice =
    config.exporterSelector === defaultMixinConfig.exporterSelector
      ? `Load this file in Prometheus (\`rule_files:\`) and scrape the exporter in a job whose name contains
"vfio" (e.g. \`job_name: vfio\`): the exporter-down alerts select \`up{job=~".*vfio.*"}\`.`
      : `Load this file in Prometheus (\`rule_files:\`): the exporter-down alerts select \`up{${config.exporterSelector}}\`.`;
  return `vfio-exporter: recording and alerting rules for PCI-passthrough (VFIO) hosts.

${scrapeAdvice}

SETTINGS: the first rules below are the only numbers to edit. Each is a constant recorded as a
series, so every rule and dashboard reads the same value and Prometheus shows what is in force.
  vfio:config_host_reserve_bytes                 memory the host itself keeps (kernel, Proxmox daemons,
                                                 page cache it cannot do without); default 1 GiB. A host
                                                 whose exporter runs with --memory.host-reserve uses that
                                                 instead (vfio:host_reserve_bytes)
  vfio:config_memory_exhaustion_horizon_seconds  how far ahead predicted exhaustion warns; default 1 h
                                                 (the trend is fitted over the last 30m: \`[30m]\` below)
  vfio:config_memory_drain_warning_seconds       fast drain: time to exhaustion, on the trend of the last
                                                 5 minutes (\`[5m]\` below), that warns; default 13 min
  vfio:config_memory_drain_critical_seconds      ... and that pages; default 5 min. Measure what a
                                                 change does first: npx tsx scripts/lead-times.ts
  vfio:config_memory_pressure_full_ratio         share of time all tasks stall on memory (PSI "full")
                                                 that is too much; default 0.05 (5 %)
  vfio:config_sample_stale_seconds               age of the exporter's last sample that means it is stuck
  vfio:config_runbook_base_info{url}             where docs/runbooks.md is published; every runbook_url
                                                 is this url + "#<alert name in lower case>"

Every join is on (${host}) for host series and (${host}, vmid) for VM series, so one
Prometheus can watch many hosts.`;
}

export const renderRuleFile = (config: MixinConfig): string => renderRules(header(config), ruleGroups(config));
