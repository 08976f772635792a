import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { waitFor200 } from './http.js';
import { spawnTracked, stopChild } from './processes.js';

export type NodeExporter = { baseUrl: string; version: string; pid: number; stop(): Promise<void> } | { skipped: string };

const binaryNames = ['prometheus-node-exporter', 'node_exporter'];

const which = (name: string): string | undefined => {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
};

const findBinary = (): string | undefined => binaryNames.map(which).find((found) => found !== undefined);

/** A port free on loopback right now (node_exporter takes no port 0). */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

/**
 * Debian's prometheus-node-exporter with its default collectors on a free loopback port. Installed with
 * apt-get when missing and running as root; otherwise the comparison is skipped with the reason.
 */
export async function startNodeExporter(log: (line: string) => void): Promise<NodeExporter> {
  let binary = findBinary();
  if (!binary) {
    if (process.getuid?.() !== 0) return { skipped: 'prometheus-node-exporter is not installed and this is not root (apt-get install prometheus-node-exporter)' };
    log('installing prometheus-node-exporter with apt-get');
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus-node-exporter'], { stdio: 'ignore', env, timeout: 300_000 });
    } catch (error) {
      return { skipped: `apt-get install prometheus-node-exporter failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` };
    }
    binary = findBinary();
    if (!binary) return { skipped: 'prometheus-node-exporter installed but not on PATH' };
  }
  const version = /version (\S+)/.exec(execFileSync(binary, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))?.[1] ?? 'unknown';
  const port = await freePort();
  const child = spawnTracked(binary, [`--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitFor200(`${baseUrl}/metrics`, 30_000, () => child.exitCode === null);
  } catch (error) {
    await stopChild(child);
    return { skipped: `node_exporter did not start: ${error instanceof Error ? error.message : String(error)}` };
  }
  return { baseUrl, version, pid: child.pid!, stop: () => stopChild(child) };
}
