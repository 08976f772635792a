import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { UsageError, type Config } from '../cli/flags.js';
import { errorMessage, fileErrorMessage, isMissing, readText } from '../host/fs.js';
import { replaceFileSafely, textWriter } from '../host/private-file.js';
import { defaultMixinConfig, parseMixinConfig, type MixinConfig } from './config.js';
import { generateMixin } from './generate.js';

/** Whether `dir` must be made; throws when it is something else than a directory of its own (a link to elsewhere). */
async function missingDirectory(dir: string): Promise<boolean> {
  try {
    const stat = await lstat(dir);
    if (!stat.isDirectory()) throw new Error(`${dir}: not a directory${stat.isSymbolicLink() ? ' (a symbolic link)' : ''}`);
    return false;
  } catch (error) {
    if (isMissing(error)) return true;
    throw error;
  }
}

/**
 * `vfio-exporter mixin`: the rules and dashboards for the settings of --config, written under --out as in
 * the repository (alerts/vfio.rules.yml, grafana/*.json). Each file is replaced whole or not at all, and
 * readable by all (0644): rules and dashboards hold no secret.
 */
export async function runMixin(config: Config, write: (text: string) => void): Promise<void> {
  if (config.mixinOutDir === undefined) throw new UsageError('mixin: --out is required (the directory to write the rules and dashboards into)');
  let settings: MixinConfig = { ...defaultMixinConfig };
  if (config.mixinConfigFile !== undefined) {
    const file = config.mixinConfigFile;
    const text = await readText(file).catch((error: unknown) => {
      throw new Error(fileErrorMessage(file, error));
    });
    try {
      settings = parseMixinConfig(text);
    } catch (error) {
      throw new UsageError(`${file}: ${errorMessage(error)}`);
    }
  }
  const files = generateMixin(settings);
  const out = config.mixinOutDir;
  await mkdir(out, { recursive: true, mode: 0o755 });
  // Every directory checked before one is made or a file written: a refused one leaves nothing behind.
  const dirs = [...new Set([...files.keys()].map((relative) => path.dirname(path.join(out, relative))))];
  const missing = [];
  for (const dir of dirs) if (await missingDirectory(dir)) missing.push(dir);
  for (const dir of missing) await mkdir(dir, { mode: 0o755 });
  for (const [relative, text] of files) {
    const target = path.join(out, relative);
    await replaceFileSafely(target, textWriter(text), 0o644);
    write(`wrote ${target}\n`);
  }
}
