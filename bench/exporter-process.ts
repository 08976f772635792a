import { existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../test/helpers/fixtures.js';
import { waitFor200 } from './http.js';
import { spawnTracked, stopChild } from './processes.js';

export interface ExporterProcess {
  pid: number;
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** Log lines at level error so far. */
  errorLines(): string[];
  stop(): Promise<void>;
}

export const builtMain = path.join(repoRoot, 'dist/src/main.js');

/**
 * Runs the built exporter (`dist/src/main.js`, what `npm start` runs; or `executable`, the single executable)
 * in a child process of its own on a free loopback port, and waits until it has taken its first sample
 * (`/-/ready`, asked with `readyHeaders`).
 */
export async function startExporterProcess(
  flags: readonly string[],
  { readyTimeoutMs = 120_000, executable, readyHeaders = {} }: { readyTimeoutMs?: number; executable?: string; readyHeaders?: Record<string, string> } = {},
): Promise<ExporterProcess> {
  const [command, ...args] = executable === undefined ? [process.execPath, builtMain] : [executable];
  if (!existsSync(args[0] ?? command!)) throw new Error(`${args[0] ?? command} is missing: run npm run build (npm run package for the single executable)`);
  const child = spawnTracked(command!, [...args, ...flags, '--web.listen-address=127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  const port = new Promise<number>((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buffered += chunk;
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        const listening = / msg=listening .*address=[^ ]*:(\d+)/.exec(line);
        if (listening) resolve(Number(listening[1]));
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`exporter exited (${code ?? signal}) before listening:\n${lines.slice(-10).join('\n')}`)));
  });
  try {
    const baseUrl = `http://127.0.0.1:${await port}`;
    await waitFor200(`${baseUrl}/-/ready`, readyTimeoutMs, () => child.exitCode === null, readyHeaders);
    return { pid: child.pid!, baseUrl, errorLines: () => lines.filter((line) => line.includes('level=error')), stop: () => stopChild(child) };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}
