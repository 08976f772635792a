/**
 * QMP servers for the synthetic host's running VMs, in a child process of their own so the exporter's
 * measured CPU is its own. They speak the protocol as QEMU does (docs/interop/qmp-spec): a greeting,
 * capabilities negotiation, `query-balloon`, `query-status` and `query-memory-size-summary`, one client at a time per socket (others wait, as on a chardev).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { QmpEndpoint } from './synthetic/host.js';

const greeting = JSON.stringify({
  QMP: { version: { qemu: { micro: 5, minor: 1, major: 8 }, package: 'pve-qemu-kvm_8.1.5-6' }, capabilities: ['oob'] },
});

function answer(command: unknown, negotiated: boolean, endpoint: QmpEndpoint): { reply: unknown; negotiated: boolean } {
  const execute = typeof command === 'object' && command !== null && 'execute' in command ? String(command.execute) : undefined;
  const error = (errorClass: string, desc: string): unknown => ({ error: { class: errorClass, desc } });
  if (execute === 'qmp_capabilities') return negotiated ? { reply: error('CommandNotFound', "Capabilities negotiation is already complete, command ignored"), negotiated } : { reply: { return: {} }, negotiated: true };
  if (!negotiated) return { reply: error('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'"), negotiated };
  if (execute === 'query-status') return { reply: { return: { status: 'running', singlestep: false, running: true } }, negotiated };
  // No hotpluggable memory on these VMs: QEMU then leaves plugged-memory out.
  if (execute === 'query-memory-size-summary') return { reply: { return: { 'base-memory': endpoint.memoryBytes } }, negotiated };
  if (execute === 'query-balloon')
    return {
      reply: endpoint.balloonActualBytes === undefined ? error('DeviceNotActive', 'No balloon device has been activated') : { return: { actual: endpoint.balloonActualBytes } },
      negotiated,
    };
  return { reply: error('CommandNotFound', `The command ${execute ?? '(none)'} has not been found`), negotiated };
}

function serveOne(socket: net.Socket, endpoint: QmpEndpoint): void {
  let negotiated = false;
  let buffered = '';
  socket.setEncoding('utf8');
  socket.write(greeting + '\r\n');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line === '') continue;
      let command: unknown;
      try {
        command = JSON.parse(line);
      } catch {
        socket.write(JSON.stringify({ error: { class: 'GenericError', desc: 'JSON parse error' } }) + '\r\n');
        continue;
      }
      const result = answer(command, negotiated, endpoint);
      negotiated = result.negotiated;
      socket.write(JSON.stringify(result.reply) + '\r\n');
    }
  });
  socket.on('error', () => socket.destroy());
}

/** A chardev socket serves one client; the next waits until it leaves. */
function listen(endpoint: QmpEndpoint): Promise<net.Server> {
  const waiting: net.Socket[] = [];
  let busy = false;
  const next = (): void => {
    const socket = waiting.shift();
    if (!socket) {
      busy = false;
      return;
    }
    busy = true;
    socket.once('close', next);
    serveOne(socket, endpoint);
  };
  const server = net.createServer((socket) => {
    waiting.push(socket);
    if (!busy) next();
  });
  rmSync(endpoint.socket, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(endpoint.socket, () => resolve(server));
  });
}

export interface QmpServers {
  pid: number;
  close(): Promise<void>;
}

/** Starts the servers in a child process; it exits when this process goes away (IPC disconnect). */
export async function startQmpServers(endpoints: readonly QmpEndpoint[], timeoutMs = 20_000): Promise<QmpServers> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`QMP servers not ready within ${timeoutMs} ms`)), timeoutMs);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`QMP servers exited with ${code}`));
      });
      child.send(endpoints);
    });
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    pid: child.pid!,
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.once('message', (endpoints: QmpEndpoint[]) => {
    void Promise.all(endpoints.map(listen)).then(
      () => process.send!('ready'),
      (error: unknown) => {
        process.stderr.write(`qmp-servers: ${String(error)}\n`);
        process.exit(1);
      },
    );
  });
  process.once('disconnect', () => process.exit(0));
}
