/**
 * The properties of one udev database record (`/run/udev/data/b<major>:<minor>`), the `E:KEY=value` lines
 * systemd-udevd writes (src/libsystemd/sd-device/device-private.c device_update_db). blkid's probe
 * results are here: `ID_FS_TYPE=zfs_member`, `ID_FS_LABEL=<pool>`, `linux_raid_member`, `LVM2_member`.
 */
export function parseUdevProperties(text: string): Map<string, string> {
  const properties = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('E:')) continue;
    const equals = line.indexOf('=');
    if (equals > 2) properties.set(line.slice(2, equals), line.slice(equals + 1));
  }
  return properties;
}
