/**
 * "Flat keyed" files, one `<key> <integer>` per line: /proc/vmstat, cgroup v2 `memory.events`, cgroup v1
 * `memory.oom_control`, and the `btime` line of /proc/stat. Lines of another shape (the `cpu` lines of
 * /proc/stat) are skipped.
 */
export function parseFlatKeyed(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(\S+) (-?\d+)$/.exec(line.trimEnd());
    if (match) values.set(match[1]!, Number(match[2]));
  }
  return values;
}
