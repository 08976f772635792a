import { stat } from 'node:fs/promises';
import type { Config } from '../cli/flags.js';
import { UsageError } from '../cli/flags.js';
import { gatherHostFiles } from '../host/capture-files.js';
import { errorMessage } from '../host/fs.js';
import { readKmsgDump } from '../host/kmsg-dump.js';
import type { Logger } from '../log.js';
import { stripSecrets, writeBundle } from './bundle.js';

export interface CaptureSummary {
  output: string;
  files: number;
  redactedValues: number;
  kmsgBytes: number | undefined;
  bytes: number;
  problems: string[];
}

/** `vfio-exporter capture <out.tar.gz>`: a support bundle of everything the collectors read, secrets stripped. */
export async function runCapture(config: Config, log: Logger): Promise<CaptureSummary> {
  const [output, ...extra] = config.args;
  if (output === undefined || extra.length > 0) throw new UsageError('capture: expected one output file, e.g. vfio-exporter capture support.tar.gz');
  const gathered = await gatherHostFiles(config.paths);
  const problems = [...gathered.problems];
  let kmsg: Buffer | undefined;
  try {
    kmsg = await readKmsgDump(config.paths.kmsg);
  } catch (error) {
    problems.push(`${config.paths.kmsg}: ${errorMessage(error)}`);
  }
  const { entries, redactedValues } = stripSecrets(gathered.entries);
  await writeBundle(output, entries, kmsg);
  for (const problem of problems) log.warn('not captured', { reason: problem });
  const summary = {
    output,
    files: entries.filter((entry) => entry.kind !== 'dir').length,
    redactedValues,
    kmsgBytes: kmsg?.length,
    bytes: (await stat(output)).size,
    problems,
  };
  log.info('support bundle written', {
    file: output,
    files: summary.files,
    redacted_values: redactedValues,
    kmsg_bytes: kmsg?.length ?? 'unreadable',
    bytes: summary.bytes,
  });
  return summary;
}
