import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import path from 'node:path';
import { afterEach } from 'vitest';
import { repoRoot } from './fixtures.js';

export interface ExporterProcess {
  child: ChildProcess;
  port: number;
  /** stderr so far: the exporter's log lines. */
  log(): string;
}

const running: ChildProcess[] = [];

afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL');
});

/** Runs `src/main.ts serve` on 127.0.0.1 with an ephemeral port and waits (bounded) for it to listen. */
export async function startExporterProcess(flags: string[], options: SpawnOptions = {}, timeoutMs = 20_000): Promise<ExporterProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/main.ts'), 'serve', '--web.listen-address=127.0.0.1:0', '--state.file=', ...flags], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
    ...options,
  });
  running.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`exporter did not listen within ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
    const check = (): void => {
      const match = /msg=listening address=\S+:(\d+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exporter exited with ${code}:\n${stderr}`));
    });
  });
  return { child, port, log: () => stderr };
}

export async function scrape(port: number, telemetryPath = '/metrics'): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}${telemetryPath}`, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`scrape: HTTP ${response.status}`);
  return response.text();
}

/** Waits (bounded) until the first sample is taken. */
export async function waitReady(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const response = await fetch(`http://127.0.0.1:${port}/-/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (response?.ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`exporter on port ${port} not ready within ${timeoutMs} ms`);
}
