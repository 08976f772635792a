import { existsSync, rmdirSync } from 'node:fs';

/**
 * Removes cgroup directories, innermost first. A cgroup stays busy for a moment after its last task
 * was killed (the task is still exiting), so EBUSY is retried for up to three seconds.
 */
export async function removeCgroupDirs(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    for (let attempt = 0; existsSync(dir); attempt++) {
      try {
        rmdirSync(dir);
      } catch (error) {
        const busy = error instanceof Error && 'code' in error && error.code === 'EBUSY';
        if (!busy || attempt >= 30) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}
