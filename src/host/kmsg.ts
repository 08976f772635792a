import { constants, readSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { KmsgDumpParser, maxKmsgLineLength, parseKmsgRecord, type KmsgRecord } from '../parse/kmsg.js';
import { errorCode, errorMessage } from './fs.js';
import { maxKmsgDumpBytes } from './kmsg-dump.js';

export interface KmsgHandlers {
  /** The log is about to be read from its start: opened, reopened after an error, a dump truncated or replaced. */
  opened(): void;
  record(record: KmsgRecord): void;
  /** Text that is not a record (a garbled line of a dump, a device read that does not parse). */
  malformed(text: string): void;
  /** The reader fell behind the ring buffer and records were lost (EPIPE). */
  overrun(): void;
  /** A dump was truncated or replaced while its last record was still unfinished: that record is lost. */
  cut(): void;
}

/** How much one poll reads at most; the rest is read at the next poll. */
export interface KmsgReadLimits {
  bytes: number;
  records: number;
}

/**
 * A whole kernel ring in one poll, so the first sample counts every kill it holds: log_buf_len is at most
 * 32 MiB (CONFIG_LOG_BUF_SHIFT ≤ 25), holding at most 1 Mi records (kernel/printk/printk.c, PRB_AVGBITS 5).
 * More is not a kernel log (`/dev/zero`) or a saved dump larger than any ring, read on at the next poll.
 */
export const defaultKmsgReadLimits: KmsgReadLimits = { bytes: maxKmsgDumpBytes, records: 1024 * 1024 };

/**
 * One read() of /dev/kmsg returns exactly one record and fails with EINVAL when the buffer cannot hold it.
 * Records are at most a few KiB (CONSOLE_EXT_LOG_MAX is 8 KiB); this leaves room for any kernel.
 */
const recordBufferBytes = 64 * 1024;
/** Records, and bytes, read before yielding to the event loop while replaying a large ring. */
const recordsPerTurn = 512;
const bytesPerTurn = 1024 * 1024;
const textChunkBytes = 1024 * 1024;

type TextSource = {
  kind: 'text';
  handle: FileHandle;
  /** A regular file, which may be truncated or replaced (log rotation); not a FIFO. */
  regular: boolean;
  /** Bytes read so far: a file now shorter was truncated. */
  position: number;
  parser: KmsgDumpParser;
  decoder: StringDecoder;
};

/** Bytes and records left to read in the current poll. */
interface Budget {
  bytes: number;
  records: number;
}

type Source = { kind: 'device'; handle: FileHandle } | TextSource;

/**
 * Follows the kernel log at `file`: the /dev/kmsg character device (the ring buffer is replayed from its
 * oldest record at open, then new records as they come), or text in the same format — a saved dump, a
 * file being appended to, a FIFO.
 *
 * The fd is opened O_NONBLOCK and read only when asked (`poll`, or the timer of `startPolling`): a read
 * with nothing new returns EAGAIN at once. A blocking read of /dev/kmsg would instead hold a libuv
 * thread-pool thread until the kernel logs something, starving every other fs call of the process.
 * One poll reads at most `limits`, so an endless source costs a bounded share of a core.
 */
export class KmsgFollower {
  private source: Source | undefined;
  private draining: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private caughtUp = false;
  private readonly recordBuffer = Buffer.alloc(recordBufferBytes);
  private readonly textBuffer = Buffer.allocUnsafe(textChunkBytes);

  constructor(
    private readonly file: string,
    private readonly handlers: KmsgHandlers,
    private readonly limits: KmsgReadLimits = defaultKmsgReadLimits,
  ) {}

  /**
   * Reads what is available now, up to the limits; true when it read to the end of the log. A call while a
   * read is running joins it. Opens (again) after a failure.
   */
  poll(): Promise<boolean> {
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  /**
   * Polls in the background too, so a burst between two samples does not overrun the ring; only while the
   * log has been read to its end: a source that is not, is read on at the caller's polls alone.
   */
  startPolling(intervalMs: number, onError: (error: unknown) => void): void {
    this.timer ??= setInterval(() => {
      if (this.caughtUp) void this.poll().catch(onError);
    }, intervalMs).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.draining?.catch(() => undefined);
    await this.closeSource();
  }

  private async drain(): Promise<boolean> {
    this.caughtUp = false;
    const budget: Budget = { ...this.limits };
    try {
      // A file rotated or truncated is read again at most once a poll, however often it is swapped.
      for (let reopened = false; ; reopened = true) {
        const source = (this.source ??= await this.openSource());
        if (source.kind === 'device') {
          this.caughtUp = await this.drainDevice(source.handle, budget);
          return this.caughtUp;
        }
        const atEnd = await this.drainText(source, budget);
        if (!atEnd || reopened || !(await this.replacedOrTruncated(source))) {
          this.caughtUp = atEnd;
          return atEnd;
        }
        // Rotated away or truncated: its records are read, read the file now at the path from its start.
        await this.closeSource();
        if (source.parser.dropPartial()) this.handlers.cut();
      }
    } catch (error) {
      await this.closeSource();
      throw new Error(`${this.file}: ${errorMessage(error)}${permissionHint(error)}`);
    }
  }

  private async openSource(): Promise<Source> {
    const handle = await open(this.file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const stats = await handle.stat();
      let source: Source;
      if (stats.isCharacterDevice()) source = { kind: 'device', handle };
      else if (stats.isFile() || stats.isFIFO()) {
        const parser = new KmsgDumpParser({ record: this.handlers.record, malformed: this.handlers.malformed });
        source = { kind: 'text', handle, regular: stats.isFile(), position: 0, parser, decoder: new StringDecoder('utf8') };
      } else throw new Error(stats.isDirectory() ? 'EISDIR: is a directory, not the kernel log' : 'not a character device, file or FIFO');
      this.handlers.opened();
      return source;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** A regular file read to its end that the path no longer names (rotated), or that is now shorter (truncated). */
  private async replacedOrTruncated(source: TextSource): Promise<boolean> {
    if (!source.regular) return false;
    const [atPath, open] = await Promise.all([stat(this.file).catch(() => undefined), source.handle.stat()]);
    if (atPath === undefined) return false;
    return atPath.ino !== open.ino || atPath.dev !== open.dev || open.size < source.position;
  }

  private async closeSource(): Promise<void> {
    const source = this.source;
    this.source = undefined;
    await source?.handle.close().catch(() => undefined);
  }

  /**
   * Non-blocking reads on the event loop thread: each returns one record or fails at once with EAGAIN.
   * True at EAGAIN (the newest record read), false when the budget ran out first.
   */
  private async drainDevice(handle: FileHandle, budget: Budget): Promise<boolean> {
    for (;;) {
      const turnEndsAt = budget.bytes - bytesPerTurn;
      for (let count = 0; count < recordsPerTurn && budget.bytes > turnEndsAt; count++) {
        if (budget.bytes <= 0 || budget.records <= 0) return false;
        let bytesRead: number;
        try {
          bytesRead = readSync(handle.fd, this.recordBuffer, 0, this.recordBuffer.length, null);
        } catch (error) {
          const code = errorCode(error);
          if (code === 'EAGAIN') return true;
          // The ring overwrote records we had not read; the next read returns the oldest one still held.
          if (code === 'EPIPE') {
            budget.records--;
            this.handlers.overrun();
            continue;
          }
          throw error;
        }
        if (bytesRead === 0) return true;
        budget.bytes -= bytesRead;
        budget.records--;
        const text = this.recordBuffer.toString('utf8', 0, bytesRead);
        const record = parseKmsgRecord(text);
        if (record) this.handlers.record(record);
        else this.handlers.malformed(text.slice(0, maxKmsgLineLength));
      }
      await nextTurn();
    }
  }

  /**
   * True at the end of the file (or of what a FIFO holds now), false when the budget ran out first; then the
   * last record stays held, its continuation lines may be in the next chunk.
   */
  private async drainText(source: TextSource, budget: Budget): Promise<boolean> {
    const { handle, parser, decoder } = source;
    for (;;) {
      if (budget.bytes <= 0 || budget.records <= 0) return false;
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(this.textBuffer, 0, Math.min(this.textBuffer.length, budget.bytes), null));
      } catch (error) {
        if (errorCode(error) !== 'EAGAIN') throw error;
        bytesRead = 0;
      }
      // End of file, or a FIFO with no writer (or nothing written yet): what comes later is read at the next poll.
      if (bytesRead === 0) {
        parser.flush();
        return true;
      }
      source.position += bytesRead;
      budget.bytes -= bytesRead;
      const chunk = this.textBuffer.subarray(0, bytesRead);
      budget.records -= countNewlines(chunk);
      parser.push(decoder.write(chunk));
    }
  }
}

const newline = 0x0a;

/** Lines in a chunk: a record is at least one, so this bounds the records a chunk held. */
function countNewlines(chunk: Buffer): number {
  let count = 0;
  for (let index = chunk.indexOf(newline); index !== -1; index = chunk.indexOf(newline, index + 1)) count++;
  return count;
}

const permissionHint = (error: unknown): string => {
  const code = errorCode(error);
  return code === 'EACCES' || code === 'EPERM' ? ' (reading the kernel log needs root or CAP_SYSLOG)' : '';
};
