import { constants } from 'node:fs';
import { lstat, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { isMissing } from './fs.js';
import { replaceFileSafely, textWriter } from './private-file.js';

/** The exporter's state is a few KiB; a larger file is not one it wrote. */
const maxStateFileBytes = 1024 * 1024;

/**
 * The state file's text, or undefined when there is none. A symlink at the path is refused (O_NOFOLLOW
 * fails with ELOOP), and so is anything but a regular file (a FIFO would block).
 */
export async function readStateFile(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new Error(`${file}: not a regular file`);
    if (stats.size > maxStateFileBytes) throw new Error(`${file}: larger than ${maxStateFileBytes} bytes`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Creates the state file's directory (0700) when missing, and checks the one that exists: a real
 * directory, not a symlink, that no other user may write to (who could otherwise swap the file).
 */
async function checkStateDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stats = await lstat(dir);
  if (!stats.isDirectory()) throw new Error(`${dir}: not a directory (a symlink is refused)`);
  if ((stats.mode & 0o022) !== 0) throw new Error(`${dir}: writable by group or others; the state directory must not be`);
}

/**
 * Replaces `file` with `text` so that a crash leaves the old or the new content, never a mix or nothing
 * (replaceFileSafely: 0600, no link followed, fsynced, renamed, the directory synced), in a directory
 * checked first.
 */
export async function writeStateFile(file: string, text: string): Promise<void> {
  await checkStateDirectory(path.dirname(file));
  await replaceFileSafely(file, textWriter(text));
}
