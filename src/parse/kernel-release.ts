/**
 * Whether a kernel release string (`6.8.12-4-pve`, `/proc/sys/kernel/osrelease`) is at least `major.minor`;
 * undefined when it does not start with a version.
 */
export function kernelAtLeast(release: string, major: number, minor: number): boolean | undefined {
  const match = /^(\d+)\.(\d+)/.exec(release.trim());
  if (!match) return undefined;
  const [releaseMajor, releaseMinor] = [Number(match[1]), Number(match[2])];
  return releaseMajor > major || (releaseMajor === major && releaseMinor >= minor);
}
