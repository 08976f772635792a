import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import net from 'node:net';
import { waitFor } from './alerting.js';
import { findBinary } from './fixtures.js';

export interface RunningQemu {
  pid: number;
  close(): Promise<void>;
}

/**
 * A real QEMU with a balloon device answering QMP on `qmpSocket`: no guest, no disk, CPUs stopped (-S),
 * so it costs a few MiB whatever `memoryMiB` says (guest RAM is mapped lazily). `memory` replaces the
 * whole `-m` value (`256,slots=2,maxmem=1G` for hotpluggable memory).
 */
export async function startQemu({ qmpSocket, memoryMiB, memory }: { qmpSocket: string; memoryMiB: number; memory?: string }): Promise<RunningQemu> {
  rmSync(qmpSocket, { force: true });
  const child = spawn(
    findBinary('qemu-system-x86_64'),
    [
      '-machine', 'q35', '-accel', 'tcg,tb-size=32', '-m', memory ?? String(memoryMiB),
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

export interface QmpCommand {
  execute: string;
  arguments?: Record<string, unknown>;
}

/** Runs commands over QMP with no code of the exporter; their `return` values in order, or the first QMP error. */
export function qmpCommands(socketPath: string, commands: QmpCommand[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    const results: unknown[] = [];
    const done = (error?: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(results);
    };
    const timer = setTimeout(() => done(new Error('QMP did not answer in 5s')), 5000);
    let buffered = '';
    let capabilitiesAcknowledged = false;
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const message = JSON.parse(buffered.slice(0, newline)) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
        buffered = buffered.slice(newline + 1);
        if (message.event !== undefined) continue;
        if (message.QMP) socket.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        else if (message.error) return done(new Error(message.error.desc));
        else if (!capabilitiesAcknowledged) capabilitiesAcknowledged = true;
        else results.push(message.return);
        if (message.QMP === undefined && results.length === commands.length) return done();
        if (message.QMP === undefined) socket.write(JSON.stringify(commands[results.length]) + '\n');
      }
    });
    socket.on('error', (error) => done(error));
  });
}
