import { errorMessage } from '../host/fs.js';
import type { HostPaths } from '../host/paths.js';
import { listPids, readComm, readQemuProcess, type QemuProcessInfo } from '../host/qemu-processes.js';
import { isQemuComm } from '../parse/qemu-cmdline.js';

/**
 * Every live QEMU process, whatever started it: those whose comm is QEMU's (`kvm`, `qemu-system-x86`...)
 * and those a pid file names (their comm may differ). A process that vanishes mid-read is skipped.
 */
export async function findQemuProcesses(
  paths: HostPaths,
  pidFilePids: ReadonlySet<number>,
): Promise<{ processes: Map<number, QemuProcessInfo>; errors: string[] }> {
  const errors: string[] = [];
  const candidates: number[] = [];
  await Promise.all(
    (await listPids(paths)).map(async (pid) => {
      try {
        const comm = await readComm(paths, pid);
        if (comm !== undefined && (isQemuComm(comm) || pidFilePids.has(pid))) candidates.push(pid);
      } catch (error) {
        errors.push(`process ${pid}: ${errorMessage(error)}`);
      }
    }),
  );
  const processes = new Map<number, QemuProcessInfo>();
  for (const pid of candidates.sort((a, b) => a - b)) {
    try {
      const info = await readQemuProcess(paths, pid);
      if (info !== undefined) processes.set(pid, info);
    } catch (error) {
      errors.push(`process ${pid}: ${errorMessage(error)}`);
    }
  }
  return { processes, errors };
}
