/** `/proc/<pid>/status` fields the vm collector needs (proc(5)); sizes are printed in kB (KiB). */
export interface ProcStatus {
  /** First letter of `State:` (`R`, `S`, `D`, `Z`...). */
  state: string | undefined;
  rssBytes: number;
  /** VmLck: mlock()ed memory (VFIO type1 charged pinned pages here on older kernels). */
  lockedBytes: number;
  /** VmPin: pinned_vm (newer kernels and iommufd charge VFIO-pinned pages here). */
  pinnedBytes: number;
}

export function parseProcStatus(text: string): ProcStatus {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const kilobytes = (name: string): number => {
    const value = fields.get(name);
    if (value === undefined) return 0;
    const match = /^(\d+) kB$/.exec(value);
    if (!match) throw new Error(`${name}: not a size in kB: ${JSON.stringify(value)}`);
    return Number(match[1]) * 1024;
  };
  return {
    state: fields.get('State')?.charAt(0),
    rssBytes: kilobytes('VmRSS'),
    lockedBytes: kilobytes('VmLck'),
    pinnedBytes: kilobytes('VmPin'),
  };
}

/** A zombie (`Z`) or dead (`X`) task holds no memory and runs no guest. */
export const isLiveState = (state: string | undefined): boolean => state !== 'Z' && state !== 'X';
