import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on every mainstream build). */
export const clockTicksPerSecond = (): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
};

/** utime + stime of a process in ticks: fields 14 and 15 of /proc/<pid>/stat, counted after the `(comm)` field, which may hold spaces. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** A process's resident set, bytes: VmRSS and its peak VmHWM; RssAnon (heap, stacks) and RssFile (pages of the binary and other mapped files). */
export interface ResidentSet {
  rss: number;
  peak: number;
  anon: number;
  file: number;
}

/** The resident set of a process from /proc/<pid>/status. */
export function residentBytes(pid: number): ResidentSet {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kB = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kB('VmRSS'), peak: kB('VmHWM'), anon: kB('RssAnon'), file: kB('RssFile') };
}
