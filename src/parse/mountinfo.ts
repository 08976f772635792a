/** One line of /proc/<pid>/mountinfo (proc(5)): what is mounted where, from which device. */
export interface Mount {
  /** `major:minor` of the mounted filesystem's st_dev; anonymous (major 0) for btrfs, ZFS, tmpfs. */
  majorMinor: string;
  mountPoint: string;
  fsType: string;
  /** The mount source, e.g. `/dev/sdb1` or `rpool/ROOT/pve-1`. */
  source: string;
}

/** Undoes the octal escapes the kernel writes for space, tab, newline and backslash in paths (`\040`). */
export const unescapeOctal = (field: string): string => field.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/**
 * Parses /proc/<pid>/mountinfo: `id parent major:minor root mountpoint options [optional fields...] - fstype source superoptions`.
 * The optional fields end at the lone `-` (fs/proc_namespace.c show_mountinfo). Lines that do not have that shape are returned
 * as errors, not skipped silently: a mount we cannot read is a holder we cannot see.
 */
export function parseMountinfo(text: string): { mounts: Mount[]; errors: string[] } {
  const mounts: Mount[] = [];
  const errors: string[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    const majorMinor = fields[2] ?? '';
    if (separator < 0 || fields.length < separator + 3 || !/^\d+:\d+$/.test(majorMinor)) {
      errors.push(`line ${index + 1}: not a mountinfo line: ${JSON.stringify(line.slice(0, 120))}`);
      continue;
    }
    mounts.push({ majorMinor, mountPoint: unescapeOctal(fields[4]!), fsType: fields[separator + 1]!, source: unescapeOctal(fields[separator + 2]!) });
  }
  return { mounts, errors };
}
