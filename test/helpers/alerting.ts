import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { findBinary, repoRoot } from './fixtures.js';
import { freePort } from './ports.js';

export const rulesFile = path.join(repoRoot, 'alerts/vfio.rules.yml');
export const alertmanagerFile = path.join(repoRoot, 'alerts/alertmanager.yml');

/**
 * Rule file text with every group at Prometheus' global evaluation_interval: a test's Prometheus evaluates
 * seconds apart, where some groups ask for minutes. With `holdSeconds`, every `for:` that long too, so a run
 * measures the pipeline, not the waiting.
 */
export function rulesAtGlobalInterval(text: string, holdSeconds?: number): string {
  const everyGroup = text.replace(/^ {4}interval: .+\n/gm, '');
  return holdSeconds === undefined ? everyGroup : everyGroup.replace(/^(\s+for: ).+$/gm, `$1${holdSeconds}s`);
}

/** Polls until `probe` returns a value, or fails after `timeoutMs` saying what it waited for. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface TempDir {
  dir: string;
  remove(): void;
}

export function tempDir(prefix: string): TempDir {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** The body Alertmanager's webhook receiver posts. */
export interface WebhookNotification {
  receiver: string;
  status: 'firing' | 'resolved';
  groupLabels: Record<string, string>;
  alerts: WebhookAlert[];
}

export interface ReceivedNotification {
  path: string;
  receivedAtMs: number;
  body: WebhookNotification;
}

export interface Webhook {
  port: number;
  received: ReceivedNotification[];
  close(): Promise<void>;
}

/** An HTTP server standing in for the pager and the ticket queue: it records every notification. */
export async function startWebhook(): Promise<Webhook> {
  const received: ReceivedNotification[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ path: request.url ?? '', receivedAtMs: Date.now(), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookNotification });
      response.end();
    });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface Daemon {
  url: string;
  /** What it wrote so far, for the message of a failed wait. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts a Prometheus-style daemon listening on `port` and waits for its `/-/ready`. */
export async function startDaemon(binary: string, args: string[], port: number): Promise<Daemon> {
  const child = spawn(findBinary(binary), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const daemon: Daemon = {
    url,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
  try {
    await waitFor(`${binary} to be ready`, 20_000, async () => {
      if (child.exitCode !== null) throw new Error(`${binary} exited with ${child.exitCode}:\n${output}`);
      const ready = await fetch(`${url}/-/ready`).then((response) => response.ok, () => false);
      return ready ? true : undefined;
    });
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  return daemon;
}

/** The shipped Alertmanager config with its receivers pointed at `webhookPort` and its waits shortened. */
export function alertmanagerConfigFor(webhookPort: number, waitSeconds: number): string {
  const config = parse(readFileSync(alertmanagerFile, 'utf8')) as {
    route: Record<string, unknown>;
    receivers: { webhook_configs?: { url: string }[] }[];
  };
  config.route['group_wait'] = `${waitSeconds}s`;
  config.route['group_interval'] = `${waitSeconds}s`;
  for (const receiver of config.receivers)
    for (const webhook of receiver.webhook_configs ?? [])
      webhook.url = webhook.url.replace(/^http:\/\/127\.0\.0\.1:\d+/, `http://127.0.0.1:${webhookPort}`);
  return stringify(config);
}

export async function startAlertmanager(dir: string, webhookPort: number): Promise<Daemon> {
  const configFile = path.join(dir, 'alertmanager.yml');
  writeFileSync(configFile, alertmanagerConfigFor(webhookPort, 1));
  const port = await freePort();
  return startDaemon(
    'prometheus-alertmanager',
    [
      `--config.file=${configFile}`,
      `--storage.path=${path.join(dir, 'alertmanager-data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // No gossip: a single instance, and no port to collide with.
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    port,
  );
}
