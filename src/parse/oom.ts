/**
 * The OOM killer's kernel log lines, kernels 4.19 to 6.x (mm/oom_kill.c, mm/memcontrol.c):
 *
 * - `<comm> invoked oom-killer: gfp_mask=…, order=…, oom_score_adj=…` opens a report (dump_header).
 * - 4.19 memcg only: `Task in <task memcg> killed as a result of limit of <oom memcg>`.
 * - 5.0+: `oom-kill:constraint=…,nodemask=…,cpuset=…,mems_allowed=…,{global_oom|oom_memcg=…},task_memcg=…,task=…,pid=…,uid=…`
 *   (dump_oom_summary; printed only when the report is not rate-limited).
 * - up to 5.2: `<reason>: Kill process N (comm) score S or sacrifice child`, then the kill line without reason.
 * - the kill: `[<reason>: ]Killed process N (comm) total-vm:…kB, anon-rss:…kB, file-rss:…kB, shmem-rss:…kB[, UID:… pgtables:…kB oom_score_adj:…]`,
 *   `<reason>` being `Out of memory`, `Memory cgroup out of memory` or `Out of memory (oom_kill_allocating_task)`.
 *   RHEL 7 kernels print `Killed process N (comm), UID u, total-vm:…`.
 * - `Tasks in <memcg> are going to be killed due to memory.oom.group set` before the rest of a group is killed.
 * - `oom_reaper: reaped process N (comm), now anon-rss:…kB, file-rss:…kB, shmem-rss:…kB` after a kill.
 */

export interface OomSummary {
  kind: 'summary';
  constraint: string;
  nodemask: string | undefined;
  cpuset: string | undefined;
  memsAllowed: string | undefined;
  /** Present for memcg OOMs: the cgroup whose limit was hit. */
  oomMemcg: string | undefined;
  /** `global_oom`: the whole machine ran out of memory. */
  globalOom: boolean;
  taskMemcg: string | undefined;
  comm: string | undefined;
  pid: number | undefined;
  uid: number | undefined;
}

export interface OomKill {
  kind: 'kill';
  /** `Out of memory`, `Memory cgroup out of memory`…; undefined on 4.19–5.2, where the preceding `Kill process` line carries it. */
  reason: string | undefined;
  pid: number;
  comm: string;
  totalVmKiB: number;
  anonRssKiB: number;
  fileRssKiB: number;
  shmemRssKiB: number;
  uid: number | undefined;
  pgtablesKiB: number | undefined;
  oomScoreAdj: number | undefined;
}

/** Up to 5.2: the process chosen; the kill line follows (for it, or for a child sacrificed instead). */
export interface OomChosen {
  kind: 'chosen';
  reason: string;
  pid: number;
  comm: string;
  score: number;
}

/** 4.19: the memcg context of a memcg OOM. */
export interface OomMemcgContext {
  kind: 'memcg-context';
  taskMemcg: string;
  oomMemcg: string;
}

export interface OomGroupKill {
  kind: 'group-kill';
  memcg: string;
}

export interface OomInvoked {
  kind: 'invoked';
  comm: string;
}

export interface OomReaped {
  kind: 'reaped';
  pid: number;
  comm: string;
}

export type OomLine = OomSummary | OomKill | OomChosen | OomMemcgContext | OomGroupKill | OomInvoked | OomReaped;

const summaryKeys = ['constraint', 'nodemask', 'cpuset', 'mems_allowed', 'oom_memcg', 'task_memcg', 'task', 'pid', 'uid'];
// Node lists (`mems_allowed=0-1,3`) contain commas, so split only where a known key or `global_oom` follows.
const summaryFieldSplit = new RegExp(`,(?=(?:${summaryKeys.join('|')})=|global_oom(?:,|$))`);

const optionalInteger = (text: string | undefined): number | undefined => (text !== undefined && /^-?\d+$/.test(text) ? Number(text) : undefined);

/** `oom-kill:constraint=…` → its fields; undefined when the text is not a summary. */
export function parseOomSummary(message: string): OomSummary | undefined {
  if (!message.startsWith('oom-kill:constraint=')) return undefined;
  const fields = new Map<string, string>();
  let globalOom = false;
  for (const field of message.slice('oom-kill:'.length).split(summaryFieldSplit)) {
    if (field === 'global_oom') {
      globalOom = true;
      continue;
    }
    const equals = field.indexOf('=');
    if (equals > 0) fields.set(field.slice(0, equals), field.slice(equals + 1));
  }
  return {
    kind: 'summary',
    constraint: fields.get('constraint')!,
    nodemask: fields.get('nodemask'),
    cpuset: fields.get('cpuset'),
    memsAllowed: fields.get('mems_allowed'),
    oomMemcg: fields.get('oom_memcg'),
    globalOom,
    taskMemcg: fields.get('task_memcg'),
    comm: fields.get('task'),
    pid: optionalInteger(fields.get('pid')),
    uid: optionalInteger(fields.get('uid')),
  };
}

// The comm is up to 15 arbitrary bytes, parentheses included: take everything up to the `)` before the numbers.
// RHEL 6/7 put the UID before or after the comm (`Killed process N, UID u, (comm)`, `Killed process N (comm), UID u,`).
const killPattern =
  /^(?:(?<reason>.+?): )?Killed process (?<pid>\d+),? (?:UID (?<uidBefore>\d+), )?\((?<comm>.*)\)(?:, UID (?<uidAfter>\d+))?,? total-vm:(?<totalVm>\d+)kB, anon-rss:(?<anonRss>\d+)kB, file-rss:(?<fileRss>\d+)kB(?:, shmem-rss:(?<shmemRss>\d+)kB)?(?<rest>.*)$/;
const chosenPattern = /^(.+?): Kill process (\d+) \((.*)\) score (\d+) or sacrifice child$/;
const memcgContextPattern = /^Task in (.+) killed as a result of limit of (.+)$/;
const groupKillPattern = /^Tasks in (.+) are going to be killed due to memory\.oom\.group set$/;
const invokedPattern = /^(.*) invoked oom-killer: /;
const reapedPattern = /^oom_reaper: reaped process (\d+) \((.*)\), now anon-rss:/;

function parseKill(groups: Record<string, string | undefined>): OomKill {
  const rest = groups['rest'] ?? '';
  return {
    kind: 'kill',
    reason: groups['reason'],
    pid: Number(groups['pid']),
    comm: groups['comm']!,
    totalVmKiB: Number(groups['totalVm']),
    anonRssKiB: Number(groups['anonRss']),
    fileRssKiB: Number(groups['fileRss']),
    shmemRssKiB: Number(groups['shmemRss'] ?? 0),
    uid: optionalInteger(groups['uidBefore'] ?? groups['uidAfter'] ?? /\bUID:(\d+)/.exec(rest)?.[1]),
    pgtablesKiB: optionalInteger(/\bpgtables:(\d+)kB/.exec(rest)?.[1]),
    oomScoreAdj: optionalInteger(/\boom_score_adj:(-?\d+)/.exec(rest)?.[1]),
  };
}

/** Classifies one kernel message as an OOM killer line, or undefined. */
export function parseOomLine(message: string): OomLine | undefined {
  // Cheap gates first: nearly every record is something else.
  if (message.startsWith('oom')) {
    if (message.startsWith('oom-kill:')) return parseOomSummary(message);
    const reaped = reapedPattern.exec(message);
    return reaped ? { kind: 'reaped', pid: Number(reaped[1]), comm: reaped[2]! } : undefined;
  }
  if (message.startsWith('Task')) {
    const context = memcgContextPattern.exec(message);
    if (context) return { kind: 'memcg-context', taskMemcg: context[1]!, oomMemcg: context[2]! };
    const group = groupKillPattern.exec(message);
    return group ? { kind: 'group-kill', memcg: group[1]! } : undefined;
  }
  if (message.includes('Kill')) {
    const groups = killPattern.exec(message)?.groups;
    if (groups) return parseKill(groups);
    const chosen = chosenPattern.exec(message);
    return chosen ? { kind: 'chosen', reason: chosen[1]!, pid: Number(chosen[2]), comm: chosen[3]!, score: Number(chosen[4]) } : undefined;
  }
  if (message.includes(' invoked oom-killer: ')) {
    const invoked = invokedPattern.exec(message);
    return invoked ? { kind: 'invoked', comm: invoked[1]! } : undefined;
  }
  return undefined;
}

/** The constraint a kill reason implies when no summary was printed (4.19, or a rate-limited report). */
export const constraintFromReason = (reason: string | undefined): string =>
  reason?.startsWith('Memory cgroup out of memory') ? 'CONSTRAINT_MEMCG' : '';

/** Decodes systemd's unit-name escapes (`\x2d` is `-`), as `systemd-escape --unescape` does. */
export const unescapeSystemdName = (name: string): string =>
  name.replace(/\\x([0-9a-fA-F]{2})/g, (_escape, hex: string) => String.fromCharCode(parseInt(hex, 16)));

const proxmoxScope = /(?:^|\/)qemu\.slice\/([^/]+)\.scope(?:\/|$)/;
// libvirt with systemd: machine.slice/machine-qemu\x2d<id>\x2d<name>.scope (the name may be shortened by libvirt).
const libvirtMachineScope = /(?:^|\/)machine-qemu\\x2d\d+\\x2d([^/]+)\.scope(?:\/|$)/;
// libvirt without systemd: /machine/qemu-<id>-<name>.libvirt-qemu or, before libvirt 1.3, /machine/<name>.libvirt-qemu.
const libvirtLegacy = /(?:^|\/)machine\/(?:qemu-\d+-)?([^/]+)\.libvirt-qemu(?:\/|$)/;

/** The VM a cgroup path belongs to, from the scope names Proxmox and libvirt use; undefined otherwise. */
export function vmidFromCgroupPath(cgroupPath: string): string | undefined {
  const proxmox = proxmoxScope.exec(cgroupPath);
  if (proxmox) return unescapeSystemdName(proxmox[1]!);
  const machine = libvirtMachineScope.exec(cgroupPath);
  if (machine) return unescapeSystemdName(machine[1]!);
  return libvirtLegacy.exec(cgroupPath)?.[1];
}
