import { closeSync, openSync, promises as fs, readlinkSync, readSync } from 'node:fs';
import path from 'node:path';

/** Text files in sysfs/procfs are small; anything larger than this is not what we expect to read. */
export const maxTextFileBytes = 4 * 1024 * 1024;

export const errorCode = (error: unknown): string | undefined =>
  error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;

export const isMissing = (error: unknown): boolean => {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
};

export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Reads a whole text file, refusing files over `limit` bytes (a binary or runaway file must not fill memory). */
export async function readText(file: string, limit = maxTextFileBytes): Promise<string> {
  const handle = await fs.open(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    const buffer = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > limit) throw new Error(`${file}: larger than ${limit} bytes`);
      chunks.push(Buffer.from(buffer.subarray(0, bytesRead)));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** Reads a text file, or undefined when it does not exist. Other errors propagate. */
export async function readOptionalText(file: string, limit = maxTextFileBytes): Promise<string | undefined> {
  try {
    return await readText(file, limit);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Basename of a symlink's target, or undefined when the link does not exist. */
export async function readLinkBasename(link: string): Promise<string | undefined> {
  try {
    return path.basename(await fs.readlink(link));
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Directory entries sorted by name, or an empty list when the directory does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).sort();
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

/** A sysfs attribute is at most one page; 64 KiB covers every page size Linux uses. */
export const maxAttributeBytes = 64 * 1024;
const attributeBuffer = Buffer.allocUnsafe(maxAttributeBytes + 1);

/**
 * Reads a sysfs attribute synchronously. The kernel serves these from memory, so a blocking read
 * costs microseconds, where the same read through the thread pool costs ten times as much CPU —
 * on a host with thousands of devices that is most of a sample. Never use it on disk files or FUSE
 * mounts (/etc/pve), which can block.
 */
export function readAttributeSync(file: string): string {
  const fd = openSync(file, 'r');
  try {
    let total = 0;
    for (;;) {
      const bytesRead = readSync(fd, attributeBuffer, total, attributeBuffer.length - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxAttributeBytes) throw new Error(`${file}: larger than ${maxAttributeBytes} bytes`);
    }
    return attributeBuffer.toString('utf8', 0, total);
  } finally {
    closeSync(fd);
  }
}

/** readAttributeSync, or undefined when the attribute does not exist. */
export function readOptionalAttributeSync(file: string): string | undefined {
  try {
    return readAttributeSync(file);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Basename of a sysfs symlink's target, or undefined when the link does not exist (synchronous, as readAttributeSync). */
export function readLinkBasenameSync(link: string): string | undefined {
  try {
    return path.basename(readlinkSync(link));
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}
