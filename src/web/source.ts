import { statSync } from 'node:fs';
import path from 'node:path';
import { errorMessage, readRegularFileSync } from '../host/fs.js';
import { parseWebConfig, WebConfigError, type WebConfig } from './config.js';
import { loadTlsSettings, tlsFiles, type TlsSettings } from './tls.js';

export interface LoadedWebConfig {
  config: WebConfig;
  /** Undefined: plain HTTP. */
  tls: TlsSettings | undefined;
}

/** A config file is a few hundred bytes; refuse anything that could not be one. */
const maxConfigBytes = 1024 * 1024;

function load(file: string): LoadedWebConfig {
  let text: string;
  try {
    text = readRegularFileSync(file, maxConfigBytes);
  } catch (error) {
    throw new WebConfigError(errorMessage(error));
  }
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

/**
 * The web config as exporter-toolkit uses it: read and checked at start (a bad file stops the
 * exporter), then read again for every request and every new TLS connection so that new users and
 * renewed certificates apply at once. Here "again" means: when the config file or a certificate,
 * key or CA file it names changed since the last read (one stat each), else the parsed result is reused.
 */
export class WebConfigSource {
  private loaded: LoadedWebConfig;
  private files: string[];
  private stamp: string;

  constructor(readonly file: string) {
    this.files = [file];
    this.stamp = '';
    this.loaded = this.reload(fingerprint(this.files));
  }

  /** The config now in the file. Throws a WebConfigError when the file went bad since it was last read. */
  current(): LoadedWebConfig {
    const stamp = fingerprint(this.files);
    return stamp === this.stamp ? this.loaded : this.reload(stamp);
  }

  /** `stamp` is taken before reading, so a change made during the read is seen next time. */
  private reload(stamp: string): LoadedWebConfig {
    const loaded = this.read();
    const files = this.filesOf(loaded);
    this.stamp = files.join('|') === this.files.join('|') ? stamp : fingerprint(files);
    this.files = files;
    this.loaded = loaded;
    return loaded;
  }

  private filesOf(loaded: LoadedWebConfig): string[] {
    return [this.file, ...(loaded.config.tls ? tlsFiles(loaded.config.tls) : [])];
  }

  private read(): LoadedWebConfig {
    try {
      return load(this.file);
    } catch (error) {
      throw new WebConfigError(`--web.config.file ${this.file}: ${errorMessage(error)}`);
    }
  }
}
