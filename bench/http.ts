import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface Fetched {
  status: number;
  /** Empty with `discardBody`. */
  body: string;
  bytes: number;
  ms: number;
}

/** One GET, the whole body read, timed from request to last byte. `discardBody` only counts bytes (a load generator's own CPU counts too). */
export function get(url: string, options: { agent?: http.Agent; timeoutMs?: number; discardBody?: boolean; headers?: Record<string, string> } = {}): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const request = http.get(url, { agent: options.agent, headers: options.headers }, (response) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (!options.discardBody) chunks.push(chunk);
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), bytes, ms: performance.now() - started }));
      response.on('error', reject);
    });
    request.setTimeout(options.timeoutMs ?? 10_000, () => request.destroy(new Error(`GET ${url}: timed out`)));
    request.on('error', reject);
  });
}

/** Polls until `url` answers 200, for at most `timeoutMs`. */
export async function waitFor200(url: string, timeoutMs: number, alive: () => boolean = () => true, headers: Record<string, string> = {}): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = 'no answer';
  while (performance.now() < deadline) {
    if (!alive()) throw new Error(`${url}: the server exited (${last})`);
    try {
      const { status } = await get(url, { timeoutMs: 2000, headers });
      if (status === 200) return;
      last = `status ${status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url}: not ready within ${timeoutMs / 1000} s (${last})`);
}

/** Nearest-rank percentile of ascending values. */
export const percentile = (sorted: readonly number[], p: number): number => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
export const median = (values: readonly number[]): number => percentile([...values].sort((a, b) => a - b), 50);
