import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findBinary } from './fixtures.js';

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export type QueryAnswer = { status: 'success'; data: { resultType: string; result: Sample[] } } | { status: 'error'; errorType: string; error: string };

export interface RunningPrometheus {
  url: string;
  /** An instant query through the HTTP API, evaluated now or at `time` (seconds since the epoch). */
  query(expr: string, time?: number): Promise<QueryAnswer>;
  /** Samples of an instant query; throws on a query error. */
  samples(expr: string, time?: number): Promise<Sample[]>;
  /** Polls until `done` holds; throws with `what` after `timeoutMs`. */
  waitFor(what: string, done: () => Promise<boolean>, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface PrometheusOptions {
  /** `host:port` of each target of the one scrape job. */
  targets: string[];
  job: string;
  ruleFiles: string[];
  /** Scrape and rule evaluation interval. */
  intervalSeconds: number;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));

/** A real Prometheus (Debian's /usr/bin/prometheus) on loopback with its storage in a temporary directory. */
export async function startPrometheus(options: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-prometheus-'));
  const interval = `${options.intervalSeconds}s`;
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles,
    scrape_configs: [{ job_name: options.job, static_configs: [{ targets: options.targets }] }],
  };
  // JSON is YAML: no serializer needed.
  writeFileSync(path.join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    findBinary('prometheus'),
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const log: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => log.push(chunk.toString()));

  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited(child), sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited(child);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const query = async (expr: string, time?: number): Promise<QueryAnswer> => {
    const parameters = new URLSearchParams({ query: expr, ...(time === undefined ? {} : { time: String(time) }) });
    const response = await fetch(`${url}/api/v1/query?${parameters}`, { signal: AbortSignal.timeout(5000) });
    return (await response.json()) as QueryAnswer;
  };

  const waitFor = async (what: string, done: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${log.join('')}`);
      if (await done().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; prometheus said: ${log.join('').slice(-2000)}`);
      await sleep(200);
    }
  };

  try {
    await waitFor('prometheus to be ready', async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok, 20_000);
  } catch (error) {
    await close();
    throw error;
  }

  return {
    url,
    query,
    async samples(expr, time) {
      const answer = await query(expr, time);
      if (answer.status !== 'success') throw new Error(`${expr}: ${answer.errorType}: ${answer.error}`);
      return answer.data.result;
    },
    waitFor,
    close,
  };
}

/** The rule groups Prometheus loaded, with when each last ran. */
export async function ruleGroups(prometheus: RunningPrometheus): Promise<{ name: string; lastEvaluation: string }[]> {
  const response = await fetch(`${prometheus.url}/api/v1/rules`, { signal: AbortSignal.timeout(5000) });
  const body = (await response.json()) as { data: { groups: { name: string; lastEvaluation: string }[] } };
  return body.data.groups;
}
