import type { BoundedReads } from '../host/bounded-reads.js';
import { errorMessage } from '../host/fs.js';
import type { HostPaths } from '../host/paths.js';
import { listPids, processTrees, readComm, readQemuProcess, type QemuProcessInfo } from '../host/qemu-processes.js';
import { isQemuComm } from '../parse/qemu-cmdline.js';

/** comm files read at once (synchronously from procfs, between two turns of the event loop). */
const processesPerTurn = 256;

export interface FoundProcesses {
  processes: Map<number, QemuProcessInfo>;
  /** Processes whose files could not be read (or not in time): pid → why. */
  failed: Map<number, string>;
  errors: string[];
}

/**
 * Every live QEMU process, whatever started it: those whose comm is QEMU's (`kvm`, `qemu-system-x86`...)
 * and those a pid file names (their comm may differ). A process that vanishes mid-read is skipped; one whose
 * files hang costs its own deadline only.
 */
export async function findQemuProcesses(paths: HostPaths, pidFilePids: ReadonlySet<number>, reads: BoundedReads): Promise<FoundProcesses> {
  const errors: string[] = [];
  const failed = new Map<number, string>();
  const candidates: { pid: number; comm: string }[] = [];
  const trees = await processTrees(paths);
  const pids = await listPids(paths);
  for (let start = 0; start < pids.length; start += processesPerTurn) {
    if (start > 0) await new Promise((resolve) => setImmediate(resolve));
    const batch = pids.slice(start, start + processesPerTurn);
    const comms = await Promise.all(
      batch.map((pid) =>
        readComm(trees, paths, pid).then(
          (comm) => ({ pid, comm, error: undefined }),
          (error: unknown) => ({ pid, comm: undefined, error }),
        ),
      ),
    );
    for (const { pid, comm, error } of comms) {
      if (error !== undefined) errors.push(`process ${pid}: ${errorMessage(error)}`);
      else if (comm !== undefined && (isQemuComm(comm) || pidFilePids.has(pid))) candidates.push({ pid, comm });
    }
  }
  const read = await Promise.all(
    candidates.map(async ({ pid, comm }) => {
      try {
        return { pid, info: await reads.run(`process ${pid}`, () => readQemuProcess(trees, paths, pid, comm)) };
      } catch (error) {
        return { pid, error: `process ${pid}: ${errorMessage(error)}` };
      }
    }),
  );
  const processes = new Map<number, QemuProcessInfo>();
  for (const { pid, info, error } of read) {
    if (error !== undefined) {
      errors.push(error);
      failed.set(pid, error);
    } else if (info !== undefined) {
      errors.push(...info.problems);
      processes.set(pid, info);
    }
  }
  return { processes, failed, errors };
}
