import { constants, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { KmsgDumpParser, parseKmsgRecord, type KmsgRecord } from '../parse/kmsg.js';
import { errorCode, errorMessage } from './fs.js';

export interface KmsgHandlers {
  record(record: KmsgRecord): void;
  /** Text that is not a record (a garbled line of a dump, a device read that does not parse). */
  malformed(text: string): void;
  /** The reader fell behind the ring buffer and records were lost (EPIPE). */
  overrun(): void;
}

/**
 * One read() of /dev/kmsg returns exactly one record and fails with EINVAL when the buffer cannot hold it.
 * Records are at most a few KiB (CONSOLE_EXT_LOG_MAX is 8 KiB); this leaves room for any kernel.
 */
const recordBufferBytes = 64 * 1024;
/** Records read before yielding to the event loop while replaying a large ring. */
const recordsPerTurn = 512;
const textChunkBytes = 1024 * 1024;

type TextSource = { kind: 'text'; handle: FileHandle; parser: KmsgDumpParser; decoder: StringDecoder; buffer: Buffer };
type Source = { kind: 'device'; handle: FileHandle } | TextSource;

/**
 * Follows the kernel log at `file`: the /dev/kmsg character device (the ring buffer is replayed from its
 * oldest record at open, then new records as they come), or text in the same format — a saved dump, a
 * file being appended to, a FIFO.
 *
 * The fd is opened O_NONBLOCK and read only when asked (`poll`, or the timer of `startPolling`): a read
 * with nothing new returns EAGAIN at once. A blocking read of /dev/kmsg would instead hold a libuv
 * thread-pool thread until the kernel logs something, starving every other fs call of the process.
 */
export class KmsgFollower {
  private source: Source | undefined;
  private draining: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly recordBuffer = Buffer.alloc(recordBufferBytes);

  constructor(
    private readonly file: string,
    private readonly handlers: KmsgHandlers,
  ) {}

  /** Reads everything available now; a call while a read is running joins it. Opens (again) after a failure. */
  poll(): Promise<void> {
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  /** Polls in the background too, so a burst between two samples does not overrun the ring. */
  startPolling(intervalMs: number, onError: (error: unknown) => void): void {
    this.timer ??= setInterval(() => void this.poll().catch(onError), intervalMs).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.draining?.catch(() => undefined);
    await this.closeSource();
  }

  private async drain(): Promise<void> {
    try {
      const source = (this.source ??= await this.openSource());
      if (source.kind === 'device') await this.drainDevice(source.handle);
      else await this.drainText(source);
    } catch (error) {
      await this.closeSource();
      throw new Error(`${this.file}: ${errorMessage(error)}${permissionHint(error)}`);
    }
  }

  private async openSource(): Promise<Source> {
    const handle = await open(this.file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const stat = await handle.stat();
      if (stat.isCharacterDevice()) return { kind: 'device', handle };
      if (stat.isFile() || stat.isFIFO()) {
        const parser = new KmsgDumpParser({ record: this.handlers.record, malformed: this.handlers.malformed });
        return { kind: 'text', handle, parser, decoder: new StringDecoder('utf8'), buffer: Buffer.allocUnsafe(textChunkBytes) };
      }
      throw new Error(stat.isDirectory() ? 'EISDIR: is a directory, not the kernel log' : 'not a character device, file or FIFO');
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  private async closeSource(): Promise<void> {
    const source = this.source;
    this.source = undefined;
    await source?.handle.close().catch(() => undefined);
  }

  /** Non-blocking reads on the event loop thread: each returns one record or fails at once with EAGAIN. */
  private async drainDevice(handle: FileHandle): Promise<void> {
    for (;;) {
      for (let count = 0; count < recordsPerTurn; count++) {
        let bytesRead: number;
        try {
          bytesRead = readSync(handle.fd, this.recordBuffer, 0, this.recordBuffer.length, null);
        } catch (error) {
          const code = errorCode(error);
          if (code === 'EAGAIN') return;
          // The ring overwrote records we had not read; the next read returns the oldest one still held.
          if (code === 'EPIPE') {
            this.handlers.overrun();
            continue;
          }
          throw error;
        }
        if (bytesRead === 0) return;
        const text = this.recordBuffer.toString('utf8', 0, bytesRead);
        const record = parseKmsgRecord(text);
        if (record) this.handlers.record(record);
        else this.handlers.malformed(text);
      }
      await nextTurn();
    }
  }

  private async drainText({ handle, parser, decoder, buffer }: TextSource): Promise<void> {
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, 0, buffer.length, null));
      } catch (error) {
        if (errorCode(error) === 'EAGAIN') break;
        throw error;
      }
      // End of file, or a FIFO with no writer: what comes later is read at the next poll.
      if (bytesRead === 0) break;
      parser.push(decoder.write(buffer.subarray(0, bytesRead)));
    }
    parser.flush();
  }
}

const permissionHint = (error: unknown): string => {
  const code = errorCode(error);
  return code === 'EACCES' || code === 'EPERM' ? ' (reading the kernel log needs root or CAP_SYSLOG)' : '';
};
