import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Debian's python3-fusepy (scripts/install-test-deps.sh) and a kernel that lets this user mount FUSE. */
export const fuseAvailable = existsSync('/dev/fuse') && existsSync('/usr/lib/python3/dist-packages/fusepy.py') && process.getuid?.() === 0;

export interface HangingMount {
  /** A directory where every file opens and then never answers a read, as a hung pmxcfs or network mount. */
  dir: string;
  /** Paths whose reads the filesystem holds, in order, as it was asked. */
  reads: string[];
  /** Kills the filesystem: every read it holds fails at once, and the mount goes. */
  close(): Promise<void>;
}

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'hanging-fs.py');

/** Mounts the hanging FUSE filesystem of hanging-fs.py on a new directory. */
export async function hangingMount(): Promise<HangingMount> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-hanging-'));
  const child = spawn('/usr/bin/python3', [script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const reads: string[] = [];
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') resolve();
        else if (line.startsWith('read ')) reads.push(line.slice('read '.length));
      }
    });
    child.once('exit', (code) => reject(new Error(`hanging-fs.py exited with ${code} before mounting`)));
  });
  return {
    dir,
    reads,
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // SIGKILL: the kernel then aborts the connection and fails every read held (ENOTCONN).
      child.kill('SIGKILL');
      await exited;
      spawn('umount', ['-l', dir], { stdio: 'ignore' }).once('exit', () => rmSync(dir, { recursive: true, force: true }));
    },
  };
}
