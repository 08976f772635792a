import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { rulesAtGlobalInterval, startDaemon, tempDir } from './alerting.js';
import { freePort } from './ports.js';

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

type QueryAnswer = { status: 'success'; data: { result: Sample[] } } | { status: 'error'; errorType: string; error: string };

export interface RunningPrometheus {
  url: string;
  /** Samples of an instant query, evaluated now or at `time` (seconds since the epoch); throws on a query error. */
  samples(expr: string, time?: number): Promise<Sample[]>;
  /** When each loaded rule group last ran. */
  ruleEvaluations(): Promise<Date[]>;
  /** `name: error` of every rule whose last evaluation failed (many-to-many matches, for one). */
  ruleErrors(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** `host:port` of each target of the one scrape job. */
  targets: string[];
  job: string;
  /** Labels Prometheus adds to every series of the targets (as a fleet's `cluster`, `node`). */
  targetLabels?: Record<string, string>;
  ruleFiles: string[];
  /** Scrape and rule evaluation interval, of every rule group (their own intervals are dropped). */
  intervalSeconds: number;
}

/** A real Prometheus (Debian's /usr/bin/prometheus) on loopback, its storage in a temporary directory. */
export async function startPrometheus(options: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = tempDir('vfio-prometheus-');
  const interval = `${options.intervalSeconds}s`;
  const ruleFiles = options.ruleFiles.map((file, index) => {
    const copy = path.join(dir.dir, `rules-${index}.yml`);
    writeFileSync(copy, rulesAtGlobalInterval(readFileSync(file, 'utf8')));
    return copy;
  });
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: ruleFiles,
    scrape_configs: [{ job_name: options.job, static_configs: [{ targets: options.targets, labels: options.targetLabels ?? {} }] }],
  };
  const configFile = path.join(dir.dir, 'prometheus.yml');
  // JSON is YAML.
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const port = await freePort();
  const daemon = await startDaemon(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir.dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    port,
  ).catch((error: unknown) => {
    dir.remove();
    throw error;
  });
  const api = async <T>(endpoint: string): Promise<T> => (await (await fetch(`${daemon.url}/api/v1/${endpoint}`, { signal: AbortSignal.timeout(5000) })).json()) as T;
  return {
    url: daemon.url,
    async samples(expr, time) {
      const parameters = new URLSearchParams({ query: expr, ...(time === undefined ? {} : { time: String(time) }) });
      const answer = await api<QueryAnswer>(`query?${parameters}`);
      if (answer.status !== 'success') throw new Error(`${expr}: ${answer.errorType}: ${answer.error}`);
      return answer.data.result;
    },
    async ruleEvaluations() {
      const answer = await api<{ data: { groups: { lastEvaluation: string }[] } }>('rules');
      return answer.data.groups.map((group) => new Date(group.lastEvaluation));
    },
    async ruleErrors() {
      const answer = await api<{ data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } }>('rules');
      return answer.data.groups.flatMap((group) => group.rules.filter((rule) => rule.health === 'err').map((rule) => `${rule.name}: ${rule.lastError ?? ''}`));
    },
    async stop() {
      await daemon.stop();
      dir.remove();
    },
  };
}
