import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { errorCode } from './fs.js';

/** The kernel ring holds at most a few MiB (log_buf_len); more than this is not a kernel log. */
export const maxKmsgDumpBytes = 32 * 1024 * 1024;

/**
 * Every record the kernel ring buffer still holds, as /dev/kmsg hands them out: one record per read,
 * concatenated — the format `--path.kmsg` accepts as a saved dump. Opening /dev/kmsg starts at the
 * oldest record; non-blocking reads end with EAGAIN at the newest instead of waiting for more. A
 * reader overtaken by the ring gets EPIPE once and goes on from the oldest record left. A saved dump
 * (a regular file) is copied up to its end.
 */
export async function readKmsgDump(file: string, limit = maxKmsgDumpBytes): Promise<Buffer> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    // A read needs room for one whole record (a smaller buffer fails with EINVAL); records are under 8 KiB.
    const buffer = Buffer.alloc(64 * 1024);
    while (total < limit) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, 0, buffer.length, null));
      } catch (error) {
        if (errorCode(error) === 'EPIPE') continue;
        if (errorCode(error) === 'EAGAIN') break;
        throw error;
      }
      if (bytesRead === 0) break;
      chunks.push(Buffer.from(buffer.subarray(0, Math.min(bytesRead, limit - total))));
      total += bytesRead;
    }
    return Buffer.concat(chunks);
  } finally {
    await handle.close();
  }
}
