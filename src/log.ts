export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'logfmt' | 'json';
export type LogFields = Record<string, string | number | boolean | undefined>;

export const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
export const logFormats: readonly LogFormat[] = ['logfmt', 'json'];

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const logfmtValue = (value: string | number | boolean): string => {
  const text = String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
};

/** One line per event on stderr, in the style of the Prometheus Go exporters (go-kit logfmt or JSON). */
export function createLogger(
  level: LogLevel,
  format: LogFormat,
  write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Logger {
  const threshold = logLevels.indexOf(level);
  const emit = (eventLevel: LogLevel, msg: string, fields: LogFields = {}): void => {
    if (logLevels.indexOf(eventLevel) < threshold) return;
    const record: Record<string, string | number | boolean> = { ts: new Date().toISOString(), level: eventLevel, msg };
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) record[key] = value;
    write(
      format === 'json'
        ? JSON.stringify(record)
        : Object.entries(record)
            .map(([key, value]) => `${key}=${logfmtValue(value)}`)
            .join(' '),
    );
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
