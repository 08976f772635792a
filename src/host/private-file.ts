import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Replaces `file` with what `write` puts into it, safely where others can write (the exporter and `capture`
 * run as root): a new file beside it, created exclusively (O_EXCL) without following a link (O_NOFOLLOW),
 * mode 0600 (or `mode`, for what others may read), flushed to disk, renamed over `file`, and the directory
 * synced so the rename lasts. A link planted at `file` is replaced, never written through; a file there is
 * replaced and its mode not kept; a failure leaves `file` as it was.
 */
export async function replaceFileSafely(file: string, write: (stream: NodeJS.WritableStream) => Promise<void>, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const temporary = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    // The stream flushes (fsync) and closes the file when it ends.
    await write(handle.createWriteStream({ flush: true }));
    await rename(temporary, file);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  const directory = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/** A writer for replaceFileSafely that puts `text` in the file. */
export const textWriter = (text: string) => (stream: NodeJS.WritableStream): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.once('close', () => resolve());
    stream.end(text);
  });
