import net from 'node:net';
import { afterEach } from 'vitest';

/**
 * A stand-in QMP server on a unix socket, for the failures a real QEMU is hard to make:
 * `hang` accepts and never speaks; `garbage` greets, then answers a command with invalid JSON;
 * `error` answers the command with a QMP error; `balloon` answers like QEMU, with events between.
 * Every behaviour that answers plays a QEMU older than 2.11: `query-memory-size-summary` is not found.
 */
export type QmpBehaviour = 'hang' | 'garbage' | 'error' | 'balloon';

export interface FakeQmp {
  /** Connections accepted so far. */
  connections: number;
  /** Commands received, in order. */
  commands: string[];
  /** Connections the client closed. */
  closedByClient: number;
}

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

const greeting = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 8}, "package": "pve-qemu-kvm_8.2.2-1"}, "capabilities": []}}\r\n';
const event = '{"timestamp": {"seconds": 1709031234, "microseconds": 5678}, "event": "BALLOON_CHANGE", "data": {"actual": 1073741824}}\r\n';

export async function fakeQmpServer(socketPath: string, behaviour: QmpBehaviour, actualBytes = 2147483648): Promise<FakeQmp> {
  const state: FakeQmp = { connections: 0, commands: [], closedByClient: 0 };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.push(socket);
    socket.on('end', () => state.closedByClient++);
    socket.on('error', () => undefined);
    if (behaviour === 'hang') return;
    socket.write(greeting);
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const { execute } = JSON.parse(buffered.slice(0, newline)) as { execute: string };
        buffered = buffered.slice(newline + 1);
        state.commands.push(execute);
        if (execute === 'qmp_capabilities') socket.write(event + '{"return": {}}\r\n');
        else if (execute === 'query-memory-size-summary' && behaviour !== 'garbage')
          socket.write('{"error": {"class": "CommandNotFound", "desc": "The command query-memory-size-summary has not been found"}}\r\n');
        else if (behaviour === 'garbage') socket.write('Segmentation fault (core dumped)\r\n');
        else if (behaviour === 'error') socket.write('{"error": {"class": "DeviceNotActive", "desc": "No balloon device has been activated"}}\r\n');
        else socket.write(event + `{"return": {"actual": ${actualBytes}}}\r\n`);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return state;
}
