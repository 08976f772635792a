import { close, closeSync, open, openSync, promises as fs, read, readlinkSync, readSync } from 'node:fs';
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

const firstChunkBytes = 16 * 1024;
const chunkBytes = 64 * 1024;

/**
 * Reads a whole text file, refusing files over `limit` bytes (a binary or runaway file must not fill memory).
 * Callback fs calls, not FileHandle, and no read past a short one: a sample reads a thousand small
 * files, and every thread-pool round trip counts.
 */
export function readText(file: string, limit = maxTextFileBytes): Promise<string> {
  return new Promise((resolve, reject) => {
    open(file, 'r', (openError, fd) => {
      if (openError) return reject(openError);
      const chunks: Buffer[] = [];
      let total = 0;
      const finish = (error: Error | undefined): void =>
        close(fd, (closeError) => {
          if (error ?? closeError) reject(error ?? closeError);
          else resolve(Buffer.concat(chunks, total).toString('utf8'));
        });
      const readChunk = (): void => {
        const buffer = Buffer.allocUnsafe(total === 0 ? firstChunkBytes : chunkBytes);
        read(fd, buffer, 0, buffer.length, null, (readError, bytesRead) => {
          if (readError) return finish(readError);
          total += bytesRead;
          if (total > limit) return finish(new Error(`${file}: larger than ${limit} bytes`));
          chunks.push(buffer.subarray(0, bytesRead));
          // Regular files, procfs and sysfs return less than asked only at the end: no read to learn it.
          if (bytesRead < buffer.length) return finish(undefined);
          readChunk();
        });
      };
      readChunk();
    });
  });
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

/** Directory entries sorted by name, or an empty list when the directory does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).sort();
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}


/** A sysfs attribute is at most one page; 64 KiB covers every page size Linux uses. */
const maxKernelFileBytes = 64 * 1024;
const kernelFileBuffer = Buffer.allocUnsafe(maxKernelFileBytes + 1);

/**
 * Reads a small file the kernel generates from its own memory without waiting on anything — sysfs
 * attributes, cgroup files, /proc/<pid>/comm and status — synchronously: microseconds each, where the same read
 * through the thread pool costs ten times the CPU, most of a sample on a host with thousands of devices.
 * Never for disk files, FUSE mounts (/etc/pve) or /proc/<pid>/cmdline, whose read takes the process's
 * mmap lock and can wait as long as a VM pinning its memory holds it.
 */
export function readKernelFileSync(file: string): string {
  const fd = openSync(file, 'r');
  try {
    let total = 0;
    for (;;) {
      const wanted = kernelFileBuffer.length - total;
      const bytesRead = readSync(fd, kernelFileBuffer, total, wanted, null);
      total += bytesRead;
      if (total > maxKernelFileBytes) throw new Error(`${file}: larger than ${maxKernelFileBytes} bytes`);
      // These files (seq_file in the kernel, or regular files in a saved tree) return less than asked only at the end.
      if (bytesRead < wanted) break;
    }
    return kernelFileBuffer.toString('utf8', 0, total);
  } finally {
    closeSync(fd);
  }
}

/** readKernelFileSync, or undefined when the file does not exist. */
export function readOptionalKernelFileSync(file: string): string | undefined {
  try {
    return readKernelFileSync(file);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Basename of a sysfs symlink's target, or undefined when the link does not exist (synchronous, as readKernelFileSync). */
export function readLinkBasenameSync(link: string): string | undefined {
  try {
    return path.basename(readlinkSync(link));
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}
