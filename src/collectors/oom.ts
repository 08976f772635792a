import { sharedBoundedReads } from '../host/bounded-reads.js';
import { errorMessage } from '../host/fs.js';
import { KmsgFollower } from '../host/kmsg.js';
import { readBootId, readBootTimeSeconds, readCgroupOomKills, readVmstatOomKills } from '../host/oom-counters.js';
import { procPath, type HostPaths } from '../host/paths.js';
import { readStateFile, writeStateFile } from '../host/state-file.js';
import { kernelEventKinds } from '../parse/kernel-events.js';
import { decodeSavedKernelLog, encodeSavedKernelLog, type SavedKernelLog } from './oom-state.js';
import { KernelLogTally, sequenceBreakKinds, skipReasons, tallyHandlers, type KernelLogFacts, type TallyContext, type TallyFinding } from './oom-tally.js';
import type { CollectorDefinition } from './types.js';
import type { Logger } from '../log.js';
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
async function qemuVmidsByPid(paths: HostPaths, readTimeoutSeconds: number): Promise<Map<number, string>> {
  const { processes } = await findQemuProcesses(paths, new Set(), sharedBoundedReads(paths, readTimeoutSeconds));
  const vmids = new Map<number, string>();
  for (const { pid, cmdline } of processes.values()) {
    const vmid = cmdlineVmid(cmdline) ?? cmdline.name;
    if (vmid !== undefined) vmids.set(pid, vmid);
  }
  return vmids;
}

/** Between samples the kernel log is still read this often, so a burst does not overrun the ring. */
const backgroundPollMs = 1000;
/** Kernel log anomalies logged per sample at most; the counters hold them all. */
const anomaliesLoggedPerSample = 5;

declare module './types.js' {
  interface CollectorSettings {
    /** Where the kernel log counts are kept across restarts (`--state.file`); undefined keeps nothing. */
    stateFile?: string;
  }
}

function logFinding(log: Logger, finding: TallyFinding | undefined, anomalyLogged: () => boolean): void {
  switch (finding?.kind) {
    case 'kill': {
      const { vmid, pid, comm, constraint, rssBytes, taskMemcg } = finding.kill;
      log.info('OOM kill in kernel log', { collector: 'oom', vmid: vmid || undefined, pid, comm, constraint: constraint || undefined, rss_bytes: rssBytes, task_memcg: taskMemcg });
      return;
    }
    case 'kernel-event':
      log.debug('passthrough trouble in kernel log', { collector: 'oom', kind: finding.event });
      return;
    case 'skipped':
      if (anomalyLogged()) log.warn('kernel log record skipped', { collector: 'oom', reason: finding.reason, after_sequence: finding.sequence });
      return;
    case 'sequence-break':
      if (anomalyLogged()) log.warn('kernel log numbering broke, counting on', { collector: 'oom', kind: finding.break, sequence: finding.sequence });
      logFinding(log, finding.finding, anomalyLogged);
  }
}

/**
 * Keeps the kernel log counts of this boot in `file`, so a restart carries on where the last run stopped
 * instead of recounting what the ring still holds (counters would drop as old records rotate out).
 * Nothing here is fatal: without a state the counts start from the ring, as on a new boot.
 */
class KernelLogStateKeeper {
  private bootId: string | undefined;
  private saved: string | undefined;
  private saveError: string | undefined;

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  async restore(paths: HostPaths, tally: KernelLogTally): Promise<void> {
    this.bootId = await readBootId(paths).catch(() => undefined);
    if (this.bootId === undefined) {
      this.log.warn('no boot id: kernel log counts are not kept across restarts', { collector: 'oom', file: procPath(paths, 'sys/kernel/random/boot_id') });
      return;
    }
    let saved: SavedKernelLog | undefined;
    try {
      const text = await readStateFile(this.file);
      if (text === undefined) return;
      saved = decodeSavedKernelLog(text);
    } catch (error) {
      this.log.warn('state file unreadable, counting from the kernel log ring', { collector: 'oom', file: this.file, err: errorMessage(error) });
      return;
    }
    if (saved.bootId !== this.bootId) {
      this.log.info('state file is from another boot, counting from the kernel log ring', { collector: 'oom', file: this.file });
      return;
    }
    tally.restore(saved.state);
    this.log.info('kernel log counts restored', { collector: 'oom', file: this.file, records: saved.state.facts.records, after_sequence: saved.state.newest?.sequence });
  }

  /** Writes the tally's state when it changed; a failure is logged when it starts and when it clears. */
  async save(tally: KernelLogTally): Promise<void> {
    if (this.bootId === undefined) return;
    const text = encodeSavedKernelLog({ bootId: this.bootId, state: tally.state() });
    if (text === this.saved) return;
    try {
      await writeStateFile(this.file, text);
      this.saved = text;
      if (this.saveError !== undefined) this.log.info('state file written again', { collector: 'oom', file: this.file });
      this.saveError = undefined;
    } catch (error) {
      const message = errorMessage(error);
      if (message !== this.saveError) this.log.warn('cannot write state file: a restart will count from the kernel log ring', { collector: 'oom', file: this.file, err: message });
      this.saveError = message;
    }
  }
}

export const oomCollector: CollectorDefinition<'oom'> = {
  name: 'oom',
  description: 'OOM kills from /proc/vmstat, the kernel log (--path.kmsg) and VM cgroups; VFIO/IOMMU trouble in the kernel log',
  defaultEnabled: true,
  create(settings, log) {
    const tally = new KernelLogTally();
    const keeper = settings.stateFile === undefined ? undefined : new KernelLogStateKeeper(settings.stateFile, log);
    let context: TallyContext = { vms: [], bootTimeSeconds: undefined };
    let follower: KmsgFollower | undefined;
    let kernelLogRead = false;
    let anomaliesLogged = 0;
    const anomalyLogged = (): boolean => anomaliesLogged++ < anomaliesLoggedPerSample;
    return {
      async collect({ paths, previous }) {
        const errors: string[] = [];
        const failed = (what: string) => (error: unknown) => {
          errors.push(`${what}: ${errorMessage(error)}`);
          return undefined;
        };
        const vms = previous?.facts.vm?.vms ?? [];
        context = { vms, bootTimeSeconds: await readBootTimeSeconds(paths).catch(failed('boot time')) };
        anomaliesLogged = 0;

        if (!follower) {
          // The ring holds kills from before the exporter started, and no VM has been reported yet.
          if (previous?.facts.vm === undefined) context.startProcessVmids = await qemuVmidsByPid(paths, settings.vmReadTimeoutSeconds).catch(failed('QEMU processes'));
          await keeper?.restore(paths, tally);
          follower = new KmsgFollower(paths.kmsg, tallyHandlers(tally, () => context, (finding) => logFinding(log, finding, anomalyLogged)));
          follower.startPolling(Math.min(backgroundPollMs, settings.sampleIntervalSeconds * 1000), (error) =>
            log.debug('kernel log poll failed', { collector: 'oom', err: errorMessage(error) }),
          );
        }
        try {
          if (await follower.poll()) kernelLogRead = true;
          else errors.push(`${paths.kmsg}: not read to its end within this sample's limit (not a kernel log, or a dump larger than any kernel ring); reading on at the next sample`);
        } catch (error) {
          errors.push(errorMessage(error));
        }
        // Only the ring read at start: later kills are attributed from the VMs the vm collector reports.
        context = { vms: context.vms, bootTimeSeconds: context.bootTimeSeconds };
        await keeper?.save(tally);

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
        await keeper?.save(tally);
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
      const skipped = sink.counter(
        'vfio_kmsg_records_skipped_total',
        'Kernel log records lost: cut, an unfinished record at the end of a dump that was then truncated or replaced.',
        ['reason'],
      );
      for (const reason of skipReasons) skipped({ reason }, kernelLog.skipped[reason]);
      const breaks = sink.counter(
        'vfio_kmsg_sequence_breaks_total',
        'Kernel log records whose sequence number stepped back: new_boot (a dump spanning a reboot) or outlier (the record before had a bogus number).',
        ['kind'],
      );
      for (const kind of sequenceBreakKinds) breaks({ kind }, kernelLog.sequenceBreaks[kind]);
    }
    const cgroupKills = sink.counter(
      'vfio_vm_cgroup_oom_kills_total',
      "OOM kills inside the running VM's cgroup since it was created (memory.events oom_kill; v1 memory.oom_control).",
      ['vmid'],
    );
    for (const { vmid, kills } of cgroupOomKills) cgroupKills({ vmid }, kills);
  },
};
