/** Pure parsers for /proc/meminfo, ZFS arcstats and PSI. */

/** `/proc/meminfo`: `MemTotal:       32614000 kB` → bytes; `HugePages_Total:  0` stays a count. */
export function parseMeminfo(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([\w()]+):\s+(\d+)(?: (kB))?\s*$/.exec(line);
    if (match) values.set(match[1]!, Number(match[2]) * (match[3] ? 1024 : 1));
  }
  return values;
}

/** `/proc/spl/kstat/zfs/arcstats`: two header lines, then `name type data` rows. */
export function parseArcstats(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n').slice(2)) {
    const match = /^(\w+)\s+\d+\s+(\d+)\s*$/.exec(line);
    if (match) values.set(match[1]!, Number(match[2]));
  }
  return values;
}

export interface PressureTotals {
  someSeconds: number;
  /** Absent on kernels that only report `some` for this resource. */
  fullSeconds: number | undefined;
}

/** `/proc/pressure/memory`: `some avg10=0.00 avg60=0.00 avg300=0.00 total=123` (µs) and a `full` line. */
export function parsePressure(text: string): PressureTotals {
  const totals = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(some|full) .*\btotal=(\d+)\s*$/.exec(line);
    if (match) totals.set(match[1]!, Number(match[2]) / 1e6);
  }
  const someSeconds = totals.get('some');
  if (someSeconds === undefined) throw new Error('pressure: no "some ... total=" line');
  return { someSeconds, fullSeconds: totals.get('full') };
}
