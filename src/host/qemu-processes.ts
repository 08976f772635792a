import { readdir } from 'node:fs/promises';
import { parseProcCgroup, vmScopePath } from '../parse/proc-cgroup.js';
import { isLiveState, parseProcStatus, type ProcStatus } from '../parse/proc-status.js';
import { parseQemuCmdline, type QemuCommandLine } from '../parse/qemu-cmdline.js';
import { readOptionalText } from './fs.js';
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
}

/** Numeric entries of procfs: every process (threads are not listed at the top level). */
export async function listPids(paths: HostPaths): Promise<number[]> {
  return (await readdir(procPath(paths)))
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .sort((a, b) => a - b);
}

/** The command name, or undefined when the process is gone. */
export async function readComm(paths: HostPaths, pid: number): Promise<string | undefined> {
  return (await readOptionalText(procPath(paths, String(pid), 'comm')))?.trim();
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
async function readCgroupMemory(paths: HostPaths, cgroupPath: string, v1: boolean): Promise<number | undefined> {
  const file = v1 ? sysPath(paths, 'fs/cgroup/memory', cgroupPath, 'memory.usage_in_bytes') : sysPath(paths, 'fs/cgroup', cgroupPath, 'memory.current');
  const text = (await readOptionalText(file))?.trim();
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new Error(`${file}: not a byte count: ${JSON.stringify(text.slice(0, 40))}`);
  return Number(text);
}

/**
 * Reads one process if it is a live QEMU; undefined when it is not QEMU, is a zombie, or went away.
 * Other read failures propagate.
 */
export async function readQemuProcess(paths: HostPaths, pid: number): Promise<QemuProcessInfo | undefined> {
  const dir = (file: string): string => procPath(paths, String(pid), file);
  const [comm, cmdlineText, statusText, cgroupText] = await Promise.all([
    readComm(paths, pid),
    readOptionalText(dir('cmdline')),
    readOptionalText(dir('status')),
    readOptionalText(dir('cgroup')),
  ]);
  if (comm === undefined || cmdlineText === undefined || statusText === undefined) return undefined;
  const cmdline = parseQemuCmdline(cmdlineText);
  if (cmdline === undefined) return undefined;
  const status = parseProcStatus(statusText);
  if (!isLiveState(status.state)) return undefined;
  const cgroups = cgroupText === undefined ? { unified: undefined, memoryV1: undefined } : parseProcCgroup(cgroupText);
  const cgroupPath = cgroups.memoryV1 ?? cgroups.unified;
  const cgroupMemoryPath = cgroupPath === undefined ? undefined : vmScopePath(cgroupPath);
  const cgroupMemoryBytes = cgroupMemoryPath === undefined ? undefined : await readCgroupMemory(paths, cgroupMemoryPath, cgroups.memoryV1 !== undefined);
  return { pid, comm, cmdline, status, cgroupPath, cgroupMemoryPath, cgroupMemoryBytes };
}
