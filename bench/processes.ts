import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * Every child process and temp directory the benchmark makes, so that all of them go away on the way
 * out: normal end, a thrown error, Ctrl-C.
 */
const children = new Set<ChildProcess>();
const directories = new Set<string>();

export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function trackDirectory(dir: string): string {
  directories.add(dir);
  return dir;
}

const running = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (!running(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function cleanUp(): Promise<void> {
  await Promise.all([...children].map((child) => stopChild(child)));
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
  directories.clear();
}

/** Cleans up on SIGINT/SIGTERM too, then exits with the conventional status. */
export function cleanUpOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}, cleaning up\n`);
      void cleanUp().finally(() => process.exit(130));
    });
}

/** Rejects after `ms` with `what` in the message: every wait in the benchmark is bounded. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a benchmark script in a fresh Node process (`node <nodeFlags> --import tsx <script> <args>`) and
 * parses the JSON it prints as its last line. A fresh process keeps the measured heap and CPU its own.
 */
export async function runJsonChild<T>(script: string, args: readonly string[], options: { nodeFlags?: readonly string[]; timeoutMs: number }): Promise<T> {
  const child = spawnTracked(process.execPath, [...(options.nodeFlags ?? []), '--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    output += chunk;
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const code = await withTimeout(exit, options.timeoutMs, script);
    if (code !== 0) throw new Error(`${script} exited with ${code}`);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  const last = output.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as T;
}
