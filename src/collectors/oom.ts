import { errorMessage } from '../host/fs.js';
import { KmsgFollower } from '../host/kmsg.js';
import { readBootTimeSeconds, readCgroupOomKills, readVmstatOomKills } from '../host/oom-counters.js';
import { kernelEventKinds } from '../parse/kernel-events.js';
import { KernelLogTally, type KernelLogFacts, type TallyContext, type TallyFinding } from './oom-tally.js';
import type { CollectorDefinition } from './types.js';
import type { Logger } from '../log.js';
import type { HostPaths } from '../host/paths.js';
import { cmdlineVmid } from '../parse/qemu-cmdline.js';
import { findQemuProcesses } from './vm-processes.js';

export interface VmCgroupOomKills {
  vmid: string;
  /** `oom_kill` of the VM's cgroup: kills inside it since the cgroup was created (the VM started). */
  kills: number;
}

export interface OomFacts {
  /** /proc/vmstat `oom_kill`; undefined on kernels before 4.13. */
  vmstatOomKills: number | undefined;
  /** Undefined until the kernel log has been read once. */
  kernelLog: KernelLogFacts | undefined;
  cgroupOomKills: VmCgroupOomKills[];
}

declare module './types.js' {
  interface FactsByCollector {
    oom: OomFacts;
  }
}

/**
 * pid → vmid of every QEMU alive now (`-id`, a Proxmox pid file, else `-name`). A kill in the ring whose pid
 * still names a QEMU is that VM's only while the pid was not reused since; a QEMU that is gone names nothing.
 */
async function qemuVmidsByPid(paths: HostPaths): Promise<Map<number, string>> {
  const { processes } = await findQemuProcesses(paths, new Set());
  const vmids = new Map<number, string>();
  for (const { pid, cmdline } of processes.values()) {
    const vmid = cmdlineVmid(cmdline) ?? cmdline.name;
    if (vmid !== undefined) vmids.set(pid, vmid);
  }
  return vmids;
}

/** Between samples the kernel log is still read this often, so a burst does not overrun the ring. */
const backgroundPollMs = 1000;

const logFinding = (log: Logger, finding: TallyFinding | undefined): void => {
  if (finding?.kind === 'kill') {
    const { vmid, pid, comm, constraint, rssBytes, taskMemcg } = finding.kill;
    log.info('OOM kill in kernel log', { collector: 'oom', vmid: vmid || undefined, pid, comm, constraint: constraint || undefined, rss_bytes: rssBytes, task_memcg: taskMemcg });
  } else if (finding?.kind === 'kernel-event') {
    log.debug('passthrough trouble in kernel log', { collector: 'oom', kind: finding.event });
  }
};

export const oomCollector: CollectorDefinition<'oom'> = {
  name: 'oom',
  description: 'OOM kills from /proc/vmstat, the kernel log (--path.kmsg) and VM cgroups; VFIO/IOMMU trouble in the kernel log',
  defaultEnabled: true,
  create(settings, log) {
    const tally = new KernelLogTally();
    let context: TallyContext = { vms: [], bootTimeSeconds: undefined };
    let follower: KmsgFollower | undefined;
    let kernelLogRead = false;
    return {
      async collect({ paths, previous }) {
        const errors: string[] = [];
        const failed = (what: string) => (error: unknown) => {
          errors.push(`${what}: ${errorMessage(error)}`);
          return undefined;
        };
        const vms = previous?.facts.vm?.vms ?? [];
        context = { vms, bootTimeSeconds: await readBootTimeSeconds(paths).catch(failed('boot time')) };

        if (!follower) {
          // The ring holds kills from before the exporter started, and no VM has been reported yet.
          if (previous?.facts.vm === undefined) context.startProcessVmids = await qemuVmidsByPid(paths).catch(failed('QEMU processes'));
          follower = new KmsgFollower(paths.kmsg, {
            record: (record) => logFinding(log, tally.add(record, context)),
            malformed: () => tally.noteParseError(),
            overrun: () => tally.noteOverrun(),
          });
          follower.startPolling(Math.min(backgroundPollMs, settings.sampleIntervalSeconds * 1000), (error) =>
            log.debug('kernel log poll failed', { collector: 'oom', err: errorMessage(error) }),
          );
        }
        try {
          await follower.poll();
          kernelLogRead = true;
        } catch (error) {
          errors.push(errorMessage(error));
        }
        // Only the ring read at start: later kills are attributed from the VMs the vm collector reports.
        context = { vms: context.vms, bootTimeSeconds: context.bootTimeSeconds };

        const vmstatOomKills = await readVmstatOomKills(paths).catch(failed('vmstat'));
        const cgroupOomKills: VmCgroupOomKills[] = [];
        for (const { vmid, running, process } of vms) {
          const cgroupPath = process?.cgroupPath;
          if (!running || cgroupPath === undefined || cgroupPath === '/') continue;
          const kills = await readCgroupOomKills(paths, cgroupPath).catch(failed(`VM ${vmid} cgroup ${cgroupPath}`));
          if (kills !== undefined) cgroupOomKills.push({ vmid, kills });
        }
        return { facts: { vmstatOomKills, kernelLog: kernelLogRead ? tally.facts() : undefined, cgroupOomKills }, errors };
      },
      async close() {
        await follower?.close();
      },
    };
  },
  render({ vmstatOomKills, kernelLog, cgroupOomKills }, sink) {
    if (vmstatOomKills !== undefined) {
      sink.counter('vfio_oom_kills_total', 'OOM kills since boot, every process (/proc/vmstat oom_kill).')({}, vmstatOomKills);
    }
    if (kernelLog) {
      const events = sink.counter(
        'vfio_oom_kill_events_total',
        'OOM kills read from the kernel log, as far back as its ring buffer reaches; vmid is empty when the process was not a VM.',
        ['vmid', 'comm', 'constraint'],
      );
      for (const { vmid, comm, constraint, kills } of kernelLog.killCounts) events({ vmid, comm, constraint }, kills);
      const lastKill = sink.gauge('vfio_vm_last_oom_kill_timestamp_seconds', 'When the VM was last OOM-killed, seconds since the epoch.', ['vmid']);
      const killedRss = sink.gauge('vfio_vm_oom_killed_rss_bytes', 'anon-rss + file-rss + shmem-rss of the VM process at its last OOM kill.', ['vmid']);
      for (const { vmid, timestampSeconds, rssBytes } of kernelLog.lastKills) {
        if (timestampSeconds !== undefined) lastKill({ vmid }, timestampSeconds);
        killedRss({ vmid }, rssBytes);
      }
      const kernelEvents = sink.counter(
        'vfio_kernel_events_total',
        'Passthrough trouble in the kernel log: VFIO pin failures, IOMMU faults, unviable groups, BAR reservation failures.',
        ['kind'],
      );
      for (const kind of kernelEventKinds) kernelEvents({ kind }, kernelLog.kernelEvents[kind]);
      sink.counter('vfio_kmsg_records_total', 'Kernel log records read, each counted once by its sequence number.')({}, kernelLog.records);
      sink.counter('vfio_kmsg_overruns_total', 'Times the kernel log ring overwrote records before they were read.')({}, kernelLog.overruns);
      sink.counter('vfio_kmsg_parse_errors_total', 'Kernel log text that was not a record.')({}, kernelLog.parseErrors);
    }
    const cgroupKills = sink.counter(
      'vfio_vm_cgroup_oom_kills_total',
      "OOM kills inside the running VM's cgroup since it was created (memory.events oom_kill; v1 memory.oom_control).",
      ['vmid'],
    );
    for (const { vmid, kills } of cgroupOomKills) cgroupKills({ vmid }, kills);
  },
};
