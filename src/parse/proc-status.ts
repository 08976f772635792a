/** `/proc/<pid>/status` fields the vm collector needs (proc(5)); sizes are printed in kB (KiB). */
export interface ProcStatus {
  /** First letter of `State:` (`R`, `S`, `D`, `Z`...); undefined when the line is missing or garbled. */
  state: string | undefined;
  /** Undefined when VmRSS is missing or does not parse: no figure rather than a made-up 0. */
  rssBytes: number | undefined;
  /** VmLck: mlock()ed memory (VFIO type1 charged pinned pages here on older kernels). */
  lockedBytes: number | undefined;
  /** VmPin: pinned_vm (newer kernels and iommufd charge VFIO-pinned pages here). */
  pinnedBytes: number | undefined;
  /** Fields that are missing or do not parse. */
  problems: string[];
}

/** The memory fields every user-space task has (fs/proc/task_mmu.c, task_mem). */
const memoryFields = { rssBytes: 'VmRSS', lockedBytes: 'VmLck', pinnedBytes: 'VmPin' } as const;

export function parseProcStatus(text: string): ProcStatus {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const problems: string[] = [];
  const kilobytes = (name: string): number | undefined => {
    const value = fields.get(name);
    const match = value === undefined ? null : /^(\d+) kB$/.exec(value);
    if (match) return Number(match[1]) * 1024;
    problems.push(value === undefined ? `${name}: missing` : `${name}: not a size in kB: ${JSON.stringify(value.slice(0, 40))}`);
    return undefined;
  };
  const state = /^[A-Za-z]/.exec(fields.get('State') ?? '')?.[0];
  if (state === undefined) problems.push(`State: ${fields.has('State') ? `garbled: ${JSON.stringify(fields.get('State')!.slice(0, 40))}` : 'missing'}`);
  return {
    state,
    rssBytes: kilobytes(memoryFields.rssBytes),
    lockedBytes: kilobytes(memoryFields.lockedBytes),
    pinnedBytes: kilobytes(memoryFields.pinnedBytes),
    problems,
  };
}

/** A zombie (`Z`) or dead (`X`) task holds no memory and runs no guest; an unreadable state says nothing against a live process. */
export const isLiveState = (state: string | undefined): boolean => state !== 'Z' && state !== 'X';
