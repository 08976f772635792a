/**
 * /dev/kmsg records (Documentation/ABI/testing/dev-kmsg):
 *
 *   <prio>,<seq>,<usec since boot>,<flags>[,<more>...];<message>\n
 *    KEY=value\n            (optional continuation lines, each starting with a space)
 *
 * The kernel escapes bytes below 0x20, at or above 0x7f, and the backslash itself as `\xNN`
 * (kernel/printk/printk.c, msg_add_ext_text), so a record is plain ASCII and a literal `\` arrives as `\x5c`.
 */

export interface KmsgRecord {
  /** Syslog severity, 0 (emerg) … 7 (debug). */
  level: number;
  /** Syslog facility: 0 is the kernel; writes from user space to /dev/kmsg never carry 0. */
  facility: number;
  sequence: number;
  /** Time of the record on the kernel's monotonic clock, µs since boot. */
  monotonicMicros: number;
  /** `-` a whole record; older kernels mark pr_cont fragments with `c` (continued by the next) and `+` (continues the previous). */
  flags: string;
  /** The message with the kernel's `\xNN` escapes decoded. */
  message: string;
  /** Continuation lines (`SUBSYSTEM=pci`, `DEVICE=+pci:0000:00:17.0`). */
  properties: Record<string, string>;
}

/** A non-negative decimal integer, or -1. Faster than a regex on the hot path. */
function parseDecimal(text: string, start: number, end: number): number {
  if (end <= start || end - start > 16) return -1;
  let value = 0;
  for (let index = start; index < end; index++) {
    const digit = text.charCodeAt(index) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** Decodes the kernel's `\xNN` escapes; bytes that do not form UTF-8 become U+FFFD. */
export function unescapeKmsgText(text: string): string {
  if (!text.includes('\\x')) return text;
  const parts: Buffer[] = [];
  let literalStart = 0;
  for (let index = text.indexOf('\\x'); index !== -1; index = text.indexOf('\\x', index)) {
    const hex = text.slice(index + 2, index + 4);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
      index += 2;
      continue;
    }
    parts.push(Buffer.from(text.slice(literalStart, index), 'utf8'), Buffer.of(parseInt(hex, 16)));
    index += 4;
    literalStart = index;
  }
  parts.push(Buffer.from(text.slice(literalStart), 'utf8'));
  return Buffer.concat(parts).toString('utf8');
}

/** Parses the first line of a record (without its newline); undefined when it is not a record header. */
export function parseKmsgHeaderLine(line: string): KmsgRecord | undefined {
  const semicolon = line.indexOf(';');
  if (semicolon === -1) return undefined;
  const comma1 = line.indexOf(',');
  const comma2 = line.indexOf(',', comma1 + 1);
  const comma3 = line.indexOf(',', comma2 + 1);
  if (comma1 === -1 || comma2 === -1 || comma3 === -1 || comma3 > semicolon) return undefined;
  const prefix = parseDecimal(line, 0, comma1);
  const sequence = parseDecimal(line, comma1 + 1, comma2);
  const monotonicMicros = parseDecimal(line, comma2 + 1, comma3);
  // Newer kernels may append fields after the flags (`,caller=T123`).
  const comma4 = line.indexOf(',', comma3 + 1);
  const flagsEnd = comma4 !== -1 && comma4 < semicolon ? comma4 : semicolon;
  if (prefix < 0 || sequence < 0 || monotonicMicros < 0 || flagsEnd === comma3 + 1) return undefined;
  return {
    level: prefix & 7,
    facility: prefix >> 3,
    sequence,
    monotonicMicros,
    flags: line.slice(comma3 + 1, flagsEnd),
    message: unescapeKmsgText(line.slice(semicolon + 1)),
    properties: noProperties,
  };
}

/** Shared by the many records without continuation lines, so they cost no allocation; replaced on the first one. */
const noProperties: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** Adds a continuation line (` KEY=value`) to its record. */
export function addKmsgProperty(record: KmsgRecord, line: string): void {
  const equals = line.indexOf('=');
  if (equals <= 1) return;
  if (record.properties === noProperties) record.properties = {};
  record.properties[line.slice(1, equals)] = unescapeKmsgText(line.slice(equals + 1));
}

/** One read() of /dev/kmsg: exactly one record, its header line then its continuation lines. */
export function parseKmsgRecord(text: string): KmsgRecord | undefined {
  const lines = text.split('\n');
  const record = parseKmsgHeaderLine(lines[0]!);
  if (!record) return undefined;
  for (const line of lines.slice(1)) if (line.startsWith(' ')) addKmsgProperty(record, line);
  return record;
}

export interface KmsgDumpHandlers {
  record(record: KmsgRecord): void;
  /** A line that is neither a record header nor a continuation line (an overlong one cut to `maxKmsgLineLength`). */
  malformed(line: string): void;
}

/**
 * A /dev/kmsg line is at most CONSOLE_EXT_LOG_MAX (8 KiB, kernel/printk/printk.c); a longer one is not a
 * record, and text without newlines (a binary file) must not be held whole.
 */
export const maxKmsgLineLength = 64 * 1024;

/**
 * Splits text in the /dev/kmsg format (`cat /dev/kmsg` output, a FIFO, a file being appended to) into
 * records. Text may arrive in pieces cut anywhere: an unfinished last line is kept until its newline
 * comes, and a record is handed on once the next record starts (its continuation lines are complete) or
 * at `flush()`.
 */
export class KmsgDumpParser {
  private partialLine = '';
  /** The line being read is over the limit: reported once, the rest of it dropped up to its newline. */
  private discarding = false;
  private pending: KmsgRecord | undefined;

  constructor(private readonly handlers: KmsgDumpHandlers) {}

  push(text: string): void {
    let end = text.indexOf('\n');
    if (end === -1) {
      this.holdPartial(text);
      return;
    }
    this.holdPartial(text.slice(0, end));
    if (this.discarding) this.discarding = false;
    else this.line(this.partialLine);
    let start = end + 1;
    while ((end = text.indexOf('\n', start)) !== -1) {
      this.line(text.slice(start, end));
      start = end + 1;
    }
    this.partialLine = '';
    this.holdPartial(text.slice(start));
  }

  /** Drops an unfinished last line (a dump that was cut or replaced); true when there was one. */
  dropPartial(): boolean {
    const dropped = this.partialLine !== '' || this.discarding;
    this.partialLine = '';
    this.discarding = false;
    return dropped;
  }

  private holdPartial(text: string): void {
    if (this.discarding) return;
    this.partialLine += text;
    if (this.partialLine.length <= maxKmsgLineLength) return;
    this.flush();
    this.handlers.malformed(this.partialLine.slice(0, maxKmsgLineLength));
    this.partialLine = '';
    this.discarding = true;
  }

  /** Hands on the record still waiting for continuation lines; an unfinished last line stays held. */
  flush(): void {
    if (this.pending) this.handlers.record(this.pending);
    this.pending = undefined;
  }

  private line(line: string): void {
    if (line.charCodeAt(0) === 32) {
      if (this.pending) addKmsgProperty(this.pending, line);
      return;
    }
    if (line === '') return;
    if (line.length > maxKmsgLineLength) {
      this.flush();
      this.handlers.malformed(line.slice(0, maxKmsgLineLength));
      return;
    }
    const record = parseKmsgHeaderLine(line);
    this.flush();
    if (record) this.pending = record;
    else this.handlers.malformed(line);
  }
}
