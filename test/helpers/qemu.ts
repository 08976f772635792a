import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
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
  const deadline = Date.now() + 10_000;
  while (!existsSync(qmpSocket)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await close();
      throw new Error(`QEMU did not open its QMP socket ${qmpSocket}: ${stderr.join('')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { pid: child.pid!, close };
}
