import { close, closeSync, constants, fstat, fstatSync, open, openSync, promises as fs, read, readdirSync, readFileSync, readlinkSync, readSync, realpathSync, statSync } from 'node:fs';

/** Text files in sysfs/procfs are small; anything larger than this is not what we expect to read. */
export const maxTextFileBytes = 4 * 1024 * 1024;

export const errorCode = (error: unknown): string | undefined =>
  error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;

export const isMissing = (error: unknown): boolean => {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
};

export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** `<file>: <why>`, without naming the file twice when the message already starts with it. */
export const fileErrorMessage = (file: string, error: unknown): string => {
  const message = errorMessage(error);
  return message.startsWith(`${file}: `) ? message : `${file}: ${message}`;
};

const firstChunkBytes = 16 * 1024;
const chunkBytes = 64 * 1024;

/**
 * Opened without waiting: a FIFO or a device in a `--path.*` tree would otherwise block open() or read()
 * until a writer appears. O_NONBLOCK changes nothing for regular files, procfs and sysfs.
 */
const openFlags = constants.O_RDONLY | constants.O_NONBLOCK;

const notRegular = (file: string): Error => Object.assign(new Error(`${file}: not a regular file`), { code: 'EFTYPE' });

/**
 * Reads a whole text file, refusing files over `limit` bytes (a binary or runaway file must not fill memory)
 * and anything but a regular file. Callback fs calls, not FileHandle, and no read past a short one: a
 * sample reads a thousand small files, and every thread-pool round trip counts.
 */
export function readText(file: string, limit = maxTextFileBytes): Promise<string> {
  return new Promise((resolve, reject) => {
    open(file, openFlags, (openError, fd) => {
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
      fstat(fd, (statError, stat) => {
        if (statError ?? !stat.isFile()) return finish(statError ?? notRegular(file));
        readChunk();
      });
    });
  });
}

/**
 * Reads a small regular file synchronously, for files read before or outside a sample (the web config and the
 * certificates it names): a FIFO or device is refused at once instead of blocking the event loop.
 */
export function readRegularFileSync(file: string, limit: number): string {
  const fd = openSync(file, openFlags);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw notRegular(file);
    if (stat.size > limit) throw new Error(`${file}: larger than ${limit} bytes`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
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

/** readSync, with a directory or a FIFO someone holds open for writing refused as what they are. */
function readSyncOf(file: string, fd: number, buffer: Buffer, offset: number, length: number): number {
  try {
    return readSync(fd, buffer, offset, length, null);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'EISDIR' || code === 'EAGAIN') throw notRegular(file);
    throw error;
  }
}

/**
 * Reads a small file the kernel generates from its own memory without waiting on anything — sysfs
 * attributes, cgroup files, /proc/<pid>/comm and status — synchronously: microseconds each, where the same read
 * through the thread pool costs ten times the CPU, most of a sample on a host with thousands of devices.
 * Only under a memory filesystem (fileTree); never for disk files, FUSE mounts (/etc/pve) or /proc/<pid>/cmdline,
 * whose read takes the process's mmap lock and can wait as long as a VM pinning its memory holds it.
 */
function readKernelFileSync(file: string): string {
  const fd = openSync(file, openFlags);
  try {
    let total = 0;
    for (;;) {
      const wanted = kernelFileBuffer.length - total;
      const bytesRead = readSyncOf(file, fd, kernelFileBuffer, total, wanted);
      total += bytesRead;
      if (total > maxKernelFileBytes) throw new Error(`${file}: larger than ${maxKernelFileBytes} bytes`);
      // These files (seq_file in the kernel, or regular files in a saved tree) return less than asked only at the end.
      if (bytesRead < wanted) break;
    }
    // sysfs and procfs hold only regular files, so no fstat per read: a directory fails its read, a device
    // runs past the limit, and a FIFO without a writer reads as empty, the one case left to tell apart.
    if (total === 0 && !fstatSync(fd).isFile()) throw notRegular(file);
    return kernelFileBuffer.toString('utf8', 0, total);
  } finally {
    closeSync(fd);
  }
}

/**
 * Magic numbers (statfs(2), include/uapi/linux/magic.h) of filesystems that answer from memory: a read waits
 * on no disk, server or other process. sysfs and procfs are what --path.sysfs/--path.procfs are in production;
 * tmpfs and ramfs hold saved trees (a capture unpacked, the benchmark's synthetic host).
 */
const memoryFilesystems = new Set([0x62656572 /* sysfs */, 0x9fa0 /* procfs */, 0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

/** Small files under one root: an attribute, a /proc/<pid> file, a link, a directory's identity. */
export interface FileTree {
  /** Reads answer from memory and run synchronously (see readKernelFileSync); else through the thread pool. */
  readonly inMemory: boolean;
  /** A kernel-sized text file (at most 64 KiB), regular files only. */
  read(file: string): Promise<string>;
  /** The target of a symbolic link, as stored. */
  readLink(link: string): Promise<string>;
  realpath(file: string): Promise<string>;
  /** Inode number of what `file` resolves to. */
  inode(file: string): Promise<number>;
  /** Names in a directory, unsorted. */
  list(dir: string): Promise<string[]>;
}

const memoryTree: FileTree = {
  inMemory: true,
  read: async (file) => readKernelFileSync(file),
  readLink: async (link) => readlinkSync(link),
  realpath: async (file) => realpathSync.native(file),
  inode: async (file) => statSync(file).ino,
  list: async (dir) => readdirSync(dir),
};

const threadPoolTree: FileTree = {
  inMemory: false,
  read: (file) => readText(file, maxKernelFileBytes),
  readLink: (link) => fs.readlink(link),
  realpath: (file) => fs.realpath(file),
  inode: async (file) => (await fs.stat(file)).ino,
  list: (dir) => fs.readdir(dir),
};

const treesByRoot = new Map<string, Promise<FileTree>>();

/**
 * How to read under `root`: synchronously when the root is a memory filesystem (checked once per root), else
 * through the thread pool, where a file that blocks (a FUSE or NFS mount in a copied tree, a bind mount) holds
 * one thread, not the event loop. A root that cannot be examined gets the thread pool; its reads report why.
 */
export function fileTree(root: string): Promise<FileTree> {
  let tree = treesByRoot.get(root);
  if (tree === undefined) {
    tree = fs.statfs(root).then(
      ({ type }) => (memoryFilesystems.has(type) ? memoryTree : threadPoolTree),
      () => {
        treesByRoot.delete(root);
        return threadPoolTree;
      },
    );
    treesByRoot.set(root, tree);
  }
  return tree;
}

/** Reads a file of `tree`, or undefined when it does not exist. Other errors propagate. */
export async function readOptionalFile(tree: FileTree, file: string): Promise<string | undefined> {
  try {
    return await tree.read(file);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}
