import net from 'node:net';
import { errorCode, errorMessage } from './fs.js';

/**
 * One short QMP exchange (QEMU docs/interop/qmp-spec): read the greeting, `qmp_capabilities`, a few
 * commands one after the other, close. Asynchronous `{"event": ...}` lines may arrive at any time and are skipped. A QMP
 * chardev serves one client at a time, so the socket is held for as short as possible and a hard
 * deadline covers the whole exchange.
 */

/** One command's answer: its `return`, or its QMP error (an old QEMU lacks newer commands). */
export type QmpReply = { ok: true; value: unknown } | { ok: false; error: string };
/** The whole exchange: a reply per command, or why the exchange itself failed. */
export type QmpOutcome = { ok: true; replies: QmpReply[] } | { ok: false; error: string };

export interface QmpExchange {
  /** Settles by the deadline at the latest. */
  outcome: Promise<QmpOutcome>;
  /** Settles when the socket is fully closed: until then the exchange still holds the VM's monitor. */
  closed: Promise<void>;
}

/** A QMP line is a few hundred bytes; a peer that sends this much without a newline is not QMP. */
const maxBufferedBytes = 1024 * 1024;

const describeSocketError = (error: unknown): string => {
  const code = errorCode(error);
  if (code === 'ENOENT') return 'no QMP socket';
  if (code === 'ECONNREFUSED') return 'QMP socket refused the connection';
  return errorMessage(error);
};

export function qmpExchange(socketPath: string, commands: readonly string[], timeoutMs: number): QmpExchange {
  const socket = net.createConnection(socketPath);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const outcome = new Promise<QmpOutcome>((resolve) => {
    let stage: 'greeting' | 'capabilities' | 'command' = 'greeting';
    const replies: QmpReply[] = [];
    let buffered = '';
    let settled = false;
    const finish = (result: QmpOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const fail = (error: string): void => finish({ ok: false, error });
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs / 1000}s`), timeoutMs);
    const send = (execute: string): void => {
      socket.write(JSON.stringify({ execute }) + '\n');
    };

    const handle = (message: unknown): void => {
      if (typeof message !== 'object' || message === null || Array.isArray(message)) return fail('QMP sent a non-object');
      if ('event' in message) return;
      if (stage === 'greeting') {
        if (!('QMP' in message)) return fail('no QMP greeting');
        stage = 'capabilities';
        return send('qmp_capabilities');
      }
      if ('error' in message) {
        const error = message.error as { class?: unknown; desc?: unknown } | null;
        const description = `QMP error ${String(error?.class ?? 'unknown')}: ${String(error?.desc ?? '')}`.trim();
        if (stage === 'capabilities') return fail(description);
        replies.push({ ok: false, error: description });
      } else if (!('return' in message)) return fail('unexpected QMP message');
      else if (stage === 'capabilities') stage = 'command';
      else replies.push({ ok: true, value: message.return });
      const next = commands[replies.length];
      if (next === undefined) finish({ ok: true, replies });
      else send(next);
    };

    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > maxBufferedBytes) return fail('QMP sent an over-long line');
      let newline: number;
      while (!settled && (newline = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line === '') continue;
        let message: unknown;
        try {
          message = JSON.parse(line);
        } catch {
          return fail(`invalid JSON from QMP: ${JSON.stringify(line.slice(0, 80))}`);
        }
        handle(message);
      }
    });
    socket.on('error', (error) => fail(describeSocketError(error)));
    socket.on('close', () => fail('QMP closed the connection before answering'));
  });
  return { outcome, closed };
}

/**
 * `query-memory-size-summary` (QEMU qapi/machine.json `MemoryInfo`) → base + plugged memory, bytes;
 * `plugged-memory` is absent on a machine without hotpluggable memory.
 */
export function memorySizeSummaryBytes(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null || !('base-memory' in value)) return undefined;
  const base = value['base-memory'];
  const plugged = 'plugged-memory' in value ? value['plugged-memory'] : 0;
  return typeof base === 'number' && typeof plugged === 'number' && Number.isFinite(base + plugged) ? base + plugged : undefined;
}

/** `query-balloon` → `{"actual": <bytes>}`. */
export function balloonActualBytes(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null || !('actual' in value)) return undefined;
  return typeof value.actual === 'number' && Number.isFinite(value.actual) ? value.actual : undefined;
}
