import { classifyKernelEvent, kernelEventKinds, type KernelEventKind } from '../parse/kernel-events.js';
import type { KmsgHandlers } from '../host/kmsg.js';
import type { KmsgRecord } from '../parse/kmsg.js';
import { constraintFromReason, parseOomLine, parseOomSummary, vmidFromCgroupPath, type OomKill, type OomLine, type OomMemcgContext, type OomSummary } from '../parse/oom.js';
import { withDetachedStrings } from '../parse/detach.js';
import { SequenceTracker, type NewestRecord } from './kmsg-sequence.js';
import type { Vm } from './vm-types.js';

export interface OomKillCount {
  /** Empty when the process was not a VM's. */
  vmid: string;
  comm: string;
  /** From the oom-kill summary; `CONSTRAINT_MEMCG` or empty when the kernel printed none. */
  constraint: string;
  kills: number;
}

export interface ObservedKill {
  vmid: string;
  pid: number;
  comm: string;
  constraint: string;
  /** Wall-clock time of the kill; undefined when the boot time is unknown. */
  timestampSeconds: number | undefined;
  /** anon-rss + file-rss + shmem-rss when it was killed. */
  rssBytes: number;
  /** The memory cgroup the process was in, when the kernel said. */
  taskMemcg: string | undefined;
}

/** Records lost: cut off by a dump that was truncated or replaced before the record was complete. */
export const skipReasons = ['cut'] as const;
export type SkipReason = (typeof skipReasons)[number];

/** Breaks in the kernel's record numbering, after which counting goes on (see SequenceTracker). */
export const sequenceBreakKinds = ['new_boot', 'outlier'] as const;
export type SequenceBreakKind = (typeof sequenceBreakKinds)[number];

export interface KernelLogFacts {
  records: number;
  overruns: number;
  parseErrors: number;
  skipped: Record<SkipReason, number>;
  sequenceBreaks: Record<SequenceBreakKind, number>;
  killCounts: OomKillCount[];
  /** The last kill of each VM's QEMU process. */
  lastKills: ObservedKill[];
  kernelEvents: Record<KernelEventKind, number>;
}

/** What attribution and timestamps need from outside the log: the VMs last seen and the boot time. */
export interface TallyContext {
  vms: readonly Vm[];
  bootTimeSeconds: number | undefined;
  /**
   * Before the vm collector has reported (the ring read at start): the QEMU processes alive now, pid → vmid,
   * for kills the kernel logged without a cgroup path.
   */
  startProcessVmids?: ReadonlyMap<number, string>;
}

export type TallyFinding =
  | { kind: 'kill'; kill: ObservedKill }
  | { kind: 'kernel-event'; event: KernelEventKind }
  | { kind: 'skipped'; reason: SkipReason; sequence: number }
  /** `finding`: what the record itself said. */
  | { kind: 'sequence-break'; break: SequenceBreakKind; sequence: number; finding: TallyFinding | undefined };

/** What a restart carries over: the counts, and the newest record counted in this boot. */
export interface KernelLogState {
  facts: KernelLogFacts;
  newest: NewestRecord | undefined;
}

/** What the report being read so far said about the next kill. */
interface OomEpisode {
  summary?: OomSummary;
  memcgContext?: OomMemcgContext;
  /** Up to 5.2 the reason is on the `Kill process … or sacrifice child` line. */
  chosenReason?: string;
  /** Set by `Tasks in <memcg> are going to be killed due to memory.oom.group set`; holds for the rest of the group. */
  groupMemcg?: string;
}

const maxHeldSummaries = 32;

const zeroCounts = <K extends string>(keys: readonly K[]): Record<K, number> => Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;

/** Older kernels flag pr_cont fragments `+`; newer ones log an interrupted fragment as a record of its own. */
const isFragment = (record: KmsgRecord): boolean => record.flags === '+' || /^[,/]/.test(record.message);

/**
 * Names QEMU gives its threads (`-name ...,debug-threads=on`, which libvirt sets): vCPUs (`CPU 3/KVM`,
 * accel/kvm/kvm-accel-ops.c), iothreads (`IO mon_iothread`, iothread.c), `worker` (util/thread-pool.c),
 * `call_rcu` (util/rcu.c), `vnc_worker`, `live_migration`. mm/oom_kill.c `__oom_kill_process` names the
 * victim's thread that still holds the mm (`find_lock_task_mm`), which may be one of these.
 */
const qemuThreadComm = /^(CPU \d+\/(KVM|TCG)|IO .+|worker|call_rcu|vnc_worker|live_migration|SPICE Worker)$/;

/**
 * The VM's QEMU itself, not a helper in its scope (swtpm, virtiofsd) killed with it: Proxmox runs `kvm`,
 * libvirt and plain QEMU `qemu-system-*` or `qemu-kvm` (comm is cut to 15 characters), or one of its threads.
 */
const isQemu = ({ vmid, pid, comm }: ObservedKill, vms: readonly Vm[]): boolean =>
  comm === 'kvm' || comm.startsWith('qemu') || qemuThreadComm.test(comm) || vms.some((vm) => vm.vmid === vmid && vm.process?.pid === pid);

/**
 * The VM whose QEMU ran in `taskMemcg` (or below it), else the scope name, else the QEMU pid seen in the last
 * sample, else (ring read at start) the QEMU the pid names now.
 */
function attributeKill(taskMemcg: string | undefined, pid: number, { vms, startProcessVmids }: TallyContext): string {
  if (taskMemcg !== undefined) {
    const inScope = vms.find(({ process }) => {
      const scope = process?.cgroupPath;
      return scope !== undefined && scope !== '/' && (taskMemcg === scope || taskMemcg.startsWith(scope + '/'));
    });
    if (inScope) return inScope.vmid;
    const named = vmidFromCgroupPath(taskMemcg);
    if (named !== undefined) {
      if (vms.some((vm) => vm.vmid === named)) return named;
      // libvirt shortens long domain names in the scope name.
      const longer = vms.filter((vm) => vm.source === 'libvirt' && vm.vmid.startsWith(named));
      return longer.length === 1 ? longer[0]!.vmid : named;
    }
  }
  return vms.find((vm) => vm.process?.pid === pid)?.vmid ?? startProcessVmids?.get(pid) ?? '';
}

const killKey = ({ vmid, comm, constraint }: { vmid: string; comm: string; constraint: string }): string => `${vmid}\0${comm}\0${constraint}`;

/**
 * Counts what the kernel log says, each record once by its sequence number, however often the ring is
 * read, and across restarts when given the state of the last run. Counts only grow. Pairs each kill with
 * the summary of the same pid printed before it.
 */
export class KernelLogTally {
  private readonly sequences = new SequenceTracker();
  private records = 0;
  private overruns = 0;
  private parseErrors = 0;
  private readonly skipped = zeroCounts(skipReasons);
  private readonly sequenceBreaks = zeroCounts(sequenceBreakKinds);
  private readonly killCounts = new Map<string, OomKillCount>();
  private readonly lastKills = new Map<string, ObservedKill>();
  private readonly kernelEvents = zeroCounts(kernelEventKinds);
  private readonly summariesByPid = new Map<number, OomSummary>();
  private episode: OomEpisode = {};
  /** A summary whose tail the kernel logged as separate records (an interrupted pr_cont). */
  private openSummary: string | undefined;

  noteOverrun(): void {
    this.overruns++;
  }

  noteParseError(): void {
    this.parseErrors++;
  }

  /** The log is read from its start again: a step back in numbering from here on is a replay, not a new boot. */
  beginRead(): void {
    this.sequences.beginRead();
  }

  noteCutRecord(): TallyFinding {
    this.skipped.cut++;
    return { kind: 'skipped', reason: 'cut', sequence: this.sequences.current()?.sequence ?? -1 };
  }

  /** Carries on from a previous run's state, in the same boot. */
  restore({ facts, newest }: KernelLogState): void {
    if (newest) this.sequences.restore(newest);
    this.records = facts.records;
    this.overruns = facts.overruns;
    this.parseErrors = facts.parseErrors;
    Object.assign(this.skipped, facts.skipped);
    Object.assign(this.sequenceBreaks, facts.sequenceBreaks);
    Object.assign(this.kernelEvents, facts.kernelEvents);
    for (const count of facts.killCounts) this.killCounts.set(killKey(count), { ...count });
    for (const kill of facts.lastKills) this.lastKills.set(kill.vmid, { ...kill });
  }

  state(): KernelLogState {
    return { facts: this.facts(), newest: this.sequences.current() };
  }

  add(record: KmsgRecord, context: TallyContext): TallyFinding | undefined {
    const verdict = this.sequences.check(record);
    if (verdict === 'seen') return undefined;
    if (verdict === 'new-boot') {
      // A report of the old boot left unfinished does not pair with the new boot's kills.
      this.episode = {};
      this.openSummary = undefined;
      this.summariesByPid.clear();
    }
    this.records++;
    const finding = this.count(record, context);
    if (verdict === 'new') return finding;
    const kind = verdict === 'new-boot' ? 'new_boot' : 'outlier';
    this.sequenceBreaks[kind]++;
    return { kind: 'sequence-break', break: kind, sequence: record.sequence, finding };
  }

  private count(record: KmsgRecord, context: TallyContext): TallyFinding | undefined {
    const fromKernel = record.facility === 0;
    if (fromKernel) {
      // A fragment of a summary whose pr_cont pieces were logged as records of their own, maybe with others between.
      const summaryText = this.openSummary !== undefined && isFragment(record) ? this.openSummary + record.message : undefined;
      const line = summaryText === undefined ? parseOomLine(record.message) : parseOomSummary(summaryText);
      if (line) return this.oomLine(line, summaryText ?? record.message, record, context);
    }
    const event = classifyKernelEvent(record.message, fromKernel);
    if (event === undefined) return undefined;
    this.kernelEvents[event]++;
    return { kind: 'kernel-event', event };
  }

  facts(): KernelLogFacts {
    return {
      records: this.records,
      overruns: this.overruns,
      parseErrors: this.parseErrors,
      skipped: { ...this.skipped },
      sequenceBreaks: { ...this.sequenceBreaks },
      killCounts: [...this.killCounts.values()].map((count) => ({ ...count })),
      lastKills: [...this.lastKills.values()].map((kill) => ({ ...kill })),
      kernelEvents: { ...this.kernelEvents },
    };
  }

  private oomLine(line: OomLine, text: string, record: KmsgRecord, context: TallyContext): TallyFinding | undefined {
    switch (line.kind) {
      case 'invoked':
        this.episode = {};
        this.openSummary = undefined;
        return undefined;
      case 'summary':
        this.episode = { summary: line };
        this.openSummary = line.pid === undefined ? text : undefined;
        if (line.pid !== undefined) this.holdSummary(line.pid, line);
        return undefined;
      case 'memcg-context':
        this.episode = { ...this.episode, memcgContext: line, groupMemcg: undefined };
        return undefined;
      case 'chosen':
        this.episode.chosenReason = line.reason;
        return undefined;
      case 'group-kill':
        this.episode.groupMemcg = line.memcg;
        return undefined;
      case 'reaped':
        return undefined;
      case 'kill':
        return { kind: 'kill', kill: this.kill(line, record, context) };
    }
  }

  private holdSummary(pid: number, summary: OomSummary): void {
    this.summariesByPid.delete(pid);
    // Held until its kill line comes, maybe many log chunks later.
    this.summariesByPid.set(pid, withDetachedStrings(summary));
    if (this.summariesByPid.size > maxHeldSummaries) this.summariesByPid.delete(this.summariesByPid.keys().next().value!);
  }

  private kill(line: OomKill, record: KmsgRecord, context: TallyContext): ObservedKill {
    const { episode } = this;
    const unpairedSummary = episode.summary?.pid === undefined ? episode.summary : undefined;
    const summary = this.summariesByPid.get(line.pid) ?? unpairedSummary;
    this.summariesByPid.delete(line.pid);
    const taskMemcg = summary?.taskMemcg ?? episode.groupMemcg ?? episode.memcgContext?.taskMemcg;
    const constraint =
      summary?.constraint ?? (episode.memcgContext ? 'CONSTRAINT_MEMCG' : constraintFromReason(line.reason ?? episode.chosenReason));
    // Kept after the log chunk it came from is gone: its strings must not hold that chunk.
    const kill: ObservedKill = withDetachedStrings({
      vmid: attributeKill(taskMemcg, line.pid, context),
      pid: line.pid,
      comm: line.comm,
      constraint,
      timestampSeconds: context.bootTimeSeconds === undefined ? undefined : context.bootTimeSeconds + record.monotonicMicros / 1e6,
      rssBytes: (line.anonRssKiB + line.fileRssKiB + line.shmemRssKiB) * 1024,
      taskMemcg,
    });
    // The rest of an oom.group kill keeps the group's memcg; everything else was about this kill.
    this.episode = { groupMemcg: episode.groupMemcg };
    this.openSummary = undefined;
    const key = killKey(kill);
    const count = this.killCounts.get(key) ?? { vmid: kill.vmid, comm: kill.comm, constraint: kill.constraint, kills: 0 };
    count.kills++;
    this.killCounts.set(key, count);
    if (kill.vmid !== '' && isQemu(kill, context.vms)) this.lastKills.set(kill.vmid, kill);
    return kill;
  }
}

/** Follower handlers that feed `tally`; `found` hears what a record or an anomaly said. */
export function tallyHandlers(tally: KernelLogTally, context: () => TallyContext, found: (finding: TallyFinding | undefined) => void = () => undefined): KmsgHandlers {
  return {
    opened: () => tally.beginRead(),
    record: (record) => found(tally.add(record, context())),
    malformed: () => tally.noteParseError(),
    overrun: () => tally.noteOverrun(),
    cut: () => found(tally.noteCutRecord()),
  };
}
