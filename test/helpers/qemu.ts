import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { waitFor } from './alerting.js';
import { findBinary } from './fixtures.js';

export interface RunningQemu {
  pid: number;
  close(): Promise<void>;
}

/**
 * A real QEMU with a balloon device answering QMP on `qmpSocket`: no guest, no disk, CPUs stopped (-S),
 * so it costs a few MiB whatever `memoryMiB` says (guest RAM is mapped lazily).
 */
export async function startQemu({ qmpSocket, memoryMiB }: { qmpSocket: string; memoryMiB: number }): Promise<RunningQemu> {
  rmSync(qmpSocket, { force: true });
  const child = spawn(
    findBinary('qemu-system-x86_64'),
    [
      '-machine', 'q35', '-accel', 'tcg,tb-size=32', '-m', String(memoryMiB),
      '-device', 'virtio-balloon-pci,id=balloon0',
      '-qmp', `unix:${qmpSocket},server=on,wait=off`,
      '-display', 'none', '-nodefaults', '-S',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(qmpSocket, { force: true });
  };
  try {
    await waitFor(`QEMU to open its QMP socket ${qmpSocket}`, 10_000, () => {
      if (child.exitCode !== null) throw new Error(`QEMU exited with ${child.exitCode}: ${stderr.join('')}`);
      return existsSync(qmpSocket) ? true : undefined;
    });
  } catch (error) {
    await close();
    throw error;
  }
  return { pid: child.pid!, close };
}
