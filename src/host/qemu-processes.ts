import { readdir } from 'node:fs/promises';
import { parseProcCgroup, vmScopePath } from '../parse/proc-cgroup.js';
import { isLiveState, parseProcStatus, type ProcStatus } from '../parse/proc-status.js';
import { parseQemuCmdline, type QemuCommandLine } from '../parse/qemu-cmdline.js';
import { errorMessage, fileTree, readOptionalFile, readOptionalText, type FileTree } from './fs.js';
import { procPath, sysPath, type HostPaths } from './paths.js';

/** What /proc says about one QEMU process. */
export interface QemuProcessInfo {
  pid: number;
  comm: string;
  cmdline: QemuCommandLine;
  status: ProcStatus;
  /** As /proc/<pid>/cgroup gives it: the v1 memory controller's path when there is one, else the unified path. */
  cgroupPath: string | undefined;
  /** The cgroup whose memory is reported: the VM's scope enclosing `cgroupPath`, when it runs in one. */
  cgroupMemoryPath: string | undefined;
  cgroupMemoryBytes: number | undefined;
  /** What could not be read or understood (a garbled status field, a cgroup file): the figures it gives are left out. */
  problems: string[];
}

/** The trees a process read goes through: procfs, and sysfs for its cgroup's memory. */
export interface ProcessTrees {
  proc: FileTree;
  sys: FileTree;
}

export const processTrees = async (paths: HostPaths): Promise<ProcessTrees> => {
  const [proc, sys] = await Promise.all([fileTree(paths.procfs), fileTree(paths.sysfs)]);
  return { proc, sys };
};

/** Numeric entries of procfs: every process (threads are not listed at the top level). */
export async function listPids(paths: HostPaths): Promise<number[]> {
  return (await readdir(procPath(paths)))
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .sort((a, b) => a - b);
}

/** The command name, or undefined when the process is gone. comm is the task's own field: reading it waits on nothing the process holds. */
export async function readComm(trees: ProcessTrees, paths: HostPaths, pid: number): Promise<string | undefined> {
  return (await readOptionalFile(trees.proc, procPath(paths, String(pid), 'comm')))?.trim();
}

/** A pid file's pid; undefined when the file is absent or holds no pid. */
export async function readPidFile(file: string): Promise<number | undefined> {
  const text = (await readOptionalText(file, 64 * 1024))?.trim();
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

/**
 * cgroup v1 memory controller: `<sysfs>/fs/cgroup/memory/<path>/memory.usage_in_bytes`;
 * v2: `<sysfs>/fs/cgroup/<path>/memory.current`. Undefined when the cgroup has no such file.
 */
async function readCgroupMemory(tree: FileTree, paths: HostPaths, cgroupPath: string, v1: boolean): Promise<number | undefined> {
  const file = v1 ? sysPath(paths, 'fs/cgroup/memory', cgroupPath, 'memory.usage_in_bytes') : sysPath(paths, 'fs/cgroup', cgroupPath, 'memory.current');
  const text = (await readOptionalFile(tree, file))?.trim();
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new Error(`${file}: not a byte count: ${JSON.stringify(text.slice(0, 40))}`);
  return Number(text);
}

/**
 * Reads one process if it is a live QEMU; undefined when it is not QEMU, is a zombie, or went away.
 * A status or cgroup that cannot be understood leaves its figures out and is named in `problems`: the
 * process still runs. Failures to read cmdline or status at all propagate.
 */
export async function readQemuProcess(trees: ProcessTrees, paths: HostPaths, pid: number, comm: string | undefined): Promise<QemuProcessInfo | undefined> {
  const dir = (file: string): string => procPath(paths, String(pid), file);
  // cmdline waits on the process's mmap lock, which a VM pinning its memory can hold for seconds, and cgroup on
  // the cgroup mutex: through the thread pool. status reads counters under no lock (fs/proc/array.c, task_mem).
  const [cmdlineText, cgroupText, statusText] = await Promise.all([
    readOptionalText(dir('cmdline')),
    readOptionalText(dir('cgroup')),
    readOptionalFile(trees.proc, dir('status')),
  ]);
  if (comm === undefined || cmdlineText === undefined || statusText === undefined) return undefined;
  const cmdline = parseQemuCmdline(cmdlineText);
  if (cmdline === undefined) return undefined;
  const status = parseProcStatus(statusText);
  if (!isLiveState(status.state)) return undefined;
  const problems = status.problems.map((problem) => `${dir('status')}: ${problem}`);
  const cgroups = cgroupText === undefined ? { unified: undefined, memoryV1: undefined } : parseProcCgroup(cgroupText);
  const cgroupPath = cgroups.memoryV1 ?? cgroups.unified;
  const cgroupMemoryPath = cgroupPath === undefined ? undefined : vmScopePath(cgroupPath);
  let cgroupMemoryBytes: number | undefined;
  try {
    cgroupMemoryBytes = cgroupMemoryPath === undefined ? undefined : await readCgroupMemory(trees.sys, paths, cgroupMemoryPath, cgroups.memoryV1 !== undefined);
  } catch (error) {
    problems.push(errorMessage(error));
  }
  return { pid, comm, cmdline, status, cgroupPath, cgroupMemoryPath, cgroupMemoryBytes, problems };
}
