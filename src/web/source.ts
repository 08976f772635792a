import { statSync } from 'node:fs';
import path from 'node:path';
import { errorMessage, readRegularFileSync } from '../host/fs.js';
import type { Logger } from '../log.js';
import { parseWebConfig, WebConfigError, type WebConfig } from './config.js';
import { loadTlsSettings, tlsFiles, type TlsSettings } from './tls.js';

export interface LoadedWebConfig {
  config: WebConfig;
  /** Undefined: plain HTTP. */
  tls: TlsSettings | undefined;
}

/** A config file is a few hundred bytes; refuse anything that could not be one. */
const maxConfigBytes = 1024 * 1024;

/** `refuseEmpty`: once running, an empty file is a write caught half-way far more often than a wish for no TLS and no auth. */
function load(file: string, refuseEmpty: boolean): LoadedWebConfig {
  let text: string;
  try {
    text = readRegularFileSync(file, maxConfigBytes);
  } catch (error) {
    throw new WebConfigError(errorMessage(error));
  }
  if (refuseEmpty && text.trim() === '') throw new WebConfigError('the file is empty');
  const config = parseWebConfig(text, path.dirname(file));
  return { config, tls: config.tls && loadTlsSettings(config.tls) };
}

/** Identity and change time of each file; a rewrite, a rename over it or a removal changes it. */
const fingerprint = (files: string[]): string =>
  files
    .map((file) => {
      try {
        const stat = statSync(file);
        return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');

/** The outcome of the last attempt to read the config again, as Prometheus reports its own config reloads. */
export interface WebConfigReloadState {
  successful: boolean;
  /** When the config in force was read, seconds since the epoch. */
  lastSuccessSeconds: number;
}

/**
 * The web config as exporter-toolkit uses it: read and checked at start (a bad file stops the
 * exporter), then read again for every request and every new TLS connection so that new users and
 * renewed certificates apply at once. Here "again" means: when the config file or a certificate,
 * key or CA file it names changed since the last read (one stat each), else the parsed result is reused.
 *
 * A file that goes bad while running (a syntax error, an unreadable certificate, a half-written, empty
 * file, TLS switched on or off, which needs a restart) does not take effect: the last good config stays
 * in force, the failure is logged once per change of the files and shown by `reloadState`. Falling back
 * to "no config" would switch basic auth off.
 */
export class WebConfigSource {
  private loaded: LoadedWebConfig;
  private files: string[];
  private stamp: string;
  private state: WebConfigReloadState;

  constructor(
    readonly file: string,
    private readonly log: Logger,
  ) {
    this.files = [file];
    this.stamp = fingerprint(this.files);
    this.loaded = this.read(false);
    this.state = { successful: true, lastSuccessSeconds: Date.now() / 1000 };
    this.adopt(this.loaded, this.stamp);
  }

  /** The config in force: the file's current content when it is good, else the last good one. */
  current(): LoadedWebConfig {
    const stamp = fingerprint(this.files);
    if (stamp !== this.stamp) this.reload(stamp);
    return this.loaded;
  }

  reloadState(): WebConfigReloadState {
    this.current();
    return this.state;
  }

  /** `stamp` is taken before reading, so a change made during the read is seen next time. */
  private reload(stamp: string): void {
    try {
      const loaded = this.read(true);
      if ((loaded.tls === undefined) !== (this.loaded.tls === undefined)) {
        throw new WebConfigError(`--web.config.file ${this.file}: switching TLS ${loaded.tls ? 'on' : 'off'} needs a restart`);
      }
      this.adopt(loaded, stamp);
      this.state = { successful: true, lastSuccessSeconds: Date.now() / 1000 };
    } catch (error) {
      // Not read again until one of the files changes once more.
      this.stamp = stamp;
      this.state = { ...this.state, successful: false };
      this.log.error('web config reload failed; keeping the last good config', { err: errorMessage(error) });
    }
  }

  private adopt(loaded: LoadedWebConfig, stamp: string): void {
    const files = this.filesOf(loaded);
    this.stamp = files.join('|') === this.files.join('|') ? stamp : fingerprint(files);
    this.files = files;
    this.loaded = loaded;
  }

  private filesOf(loaded: LoadedWebConfig): string[] {
    return [this.file, ...(loaded.config.tls ? tlsFiles(loaded.config.tls) : [])];
  }

  private read(refuseEmpty: boolean): LoadedWebConfig {
    try {
      return load(this.file, refuseEmpty);
    } catch (error) {
      throw new WebConfigError(`--web.config.file ${this.file}: ${errorMessage(error)}`);
    }
  }
}
