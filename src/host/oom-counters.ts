import path from 'node:path';
import { parseFlatKeyed } from '../parse/flat-keyed.js';
import { readOptionalText, readText } from './fs.js';
import { procPath, sysPath, type HostPaths } from './paths.js';

/** /proc/vmstat `oom_kill`: every OOM kill since boot; undefined before kernel 4.13, which lacks the counter. */
export async function readVmstatOomKills(paths: HostPaths): Promise<number | undefined> {
  return parseFlatKeyed(await readText(procPath(paths, 'vmstat'))).get('oom_kill');
}

/**
 * Wall-clock boot time, seconds since the epoch: /proc/stat `btime`, which the kernel truncates to whole
 * seconds, refined to /proc/uptime's centiseconds when the two agree (kernel log timestamps are µs since
 * boot, so a whole-second boot time would put every event up to a second early).
 */
export async function readBootTimeSeconds(paths: HostPaths, nowMs = Date.now()): Promise<number | undefined> {
  const btime = parseFlatKeyed(await readText(procPath(paths, 'stat'))).get('btime');
  if (btime === undefined) return undefined;
  const uptime = Number((await readOptionalText(procPath(paths, 'uptime')))?.split(' ')[0]);
  const refined = nowMs / 1000 - uptime;
  return Number.isFinite(refined) && refined >= btime - 0.05 && refined < btime + 1.05 ? refined : btime;
}

/**
 * OOM kills inside one cgroup while it exists, or undefined when it is gone or not a memory cgroup:
 * cgroup v2 `memory.events` `oom_kill` (pure v2 hosts, or the `unified` mount of a hybrid one), else the
 * v1 memory controller's `memory.oom_control` `oom_kill` (kernel 4.13+).
 */
export async function readCgroupOomKills(paths: HostPaths, cgroupPath: string): Promise<number | undefined> {
  const candidates = [
    sysPath(paths, 'fs/cgroup', cgroupPath, 'memory.events'),
    sysPath(paths, 'fs/cgroup/unified', cgroupPath, 'memory.events'),
    sysPath(paths, 'fs/cgroup/memory', cgroupPath, 'memory.oom_control'),
  ];
  for (const file of candidates.map((candidate) => path.normalize(candidate))) {
    const text = await readOptionalText(file);
    const kills = text === undefined ? undefined : parseFlatKeyed(text).get('oom_kill');
    if (kills !== undefined) return kills;
  }
  return undefined;
}

/**
 * This boot's random id (/proc/sys/kernel/random/boot_id, a UUID the kernel draws at boot), or undefined
 * when the file is missing or holds something else.
 */
export async function readBootId(paths: HostPaths): Promise<string | undefined> {
  const text = (await readOptionalText(procPath(paths, 'sys/kernel/random/boot_id')))?.trim();
  return text !== undefined && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(text) ? text : undefined;
}
