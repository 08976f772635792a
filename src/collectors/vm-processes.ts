import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { errorMessage } from '../host/fs.js';
import type { HostPaths } from '../host/paths.js';
import { listPids, readComm, readQemuProcess, type QemuProcessInfo } from '../host/qemu-processes.js';
import { isQemuComm } from '../parse/qemu-cmdline.js';

const processesPerTurn = 256;

/**
 * Every live QEMU process, whatever started it: those whose comm is QEMU's (`kvm`, `qemu-system-x86`...)
 * and those a pid file names (their comm may differ). A process that vanishes mid-read is skipped.
 */
export async function findQemuProcesses(
  paths: HostPaths,
  pidFilePids: ReadonlySet<number>,
): Promise<{ processes: Map<number, QemuProcessInfo>; errors: string[] }> {
  const errors: string[] = [];
  const candidates: { pid: number; comm: string }[] = [];
  const pids = await listPids(paths);
  for (let index = 0; index < pids.length; index++) {
    // comm is read synchronously (it waits on nothing); the event loop gets a turn between batches.
    if (index > 0 && index % processesPerTurn === 0) await yieldToEventLoop();
    const pid = pids[index]!;
    try {
      const comm = readComm(paths, pid);
      if (comm !== undefined && (isQemuComm(comm) || pidFilePids.has(pid))) candidates.push({ pid, comm });
    } catch (error) {
      errors.push(`process ${pid}: ${errorMessage(error)}`);
    }
  }
  const read = await Promise.all(
    candidates.map(async ({ pid, comm }) => {
      try {
        return { pid, info: await readQemuProcess(paths, pid, comm) };
      } catch (error) {
        return { pid, error: `process ${pid}: ${errorMessage(error)}` };
      }
    }),
  );
  const processes = new Map<number, QemuProcessInfo>();
  for (const { pid, info, error } of read) {
    if (error !== undefined) errors.push(error);
    else if (info !== undefined) processes.set(pid, info);
  }
  return { processes, errors };
}
