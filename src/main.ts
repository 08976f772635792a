#!/usr/bin/env node
import './threadpool.js';
import { parseFlags, UsageError, type Config } from './cli/flags.js';
import { errorMessage } from './host/fs.js';
import { createLogger } from './log.js';
import { checkSampleInterval } from './sampler.js';
import { buildInfo } from './version.js';

/** How long SIGTERM/SIGINT waits for the running sample and open connections before the process exits regardless. */
const shutdownGraceMs = 3000;

const fail = (message: string, code: number): number => {
  process.stderr.write(`vfio-exporter: ${message}\n`);
  return code;
};

async function main(): Promise<number | undefined> {
  let config: Config;
  try {
    const result = parseFlags(process.argv.slice(2), process.env);
    if (result.kind === 'help') {
      process.stdout.write(result.text + '\n');
      return 0;
    }
    if (result.kind === 'version') {
      process.stdout.write(`vfio-exporter ${buildInfo.version} (revision ${buildInfo.revision}, node ${buildInfo.nodejs})\n`);
      return 0;
    }
    config = result.config;
    checkSampleInterval(config.sampleIntervalSeconds);
  } catch (error) {
    return fail(errorMessage(error), 2);
  }
  const log = createLogger(config.logLevel, config.logFormat);
  // Each command loads only its own code: serving never holds the capture bundler, check and capture never the web stack.
  switch (config.command) {
    case 'serve': {
      const { startExporter } = await import('./exporter.js');
      const exporter = await startExporter(config, log);
      const shutdown = (signal: string): void => {
        log.info('shutting down', { signal });
        // A sample still waiting on a hung read (up to --sample.timeout) must not hold the shutdown.
        setTimeout(() => {
          log.warn('shutdown did not finish in time; exiting anyway', { signal, grace_seconds: shutdownGraceMs / 1000 });
          process.exit(0);
        }, shutdownGraceMs).unref();
        void exporter.close().then(() => process.exit(0));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
      return undefined;
    }
    case 'check': {
      const { runCheck } = await import('./check/command.js');
      return runCheck(config, log, (text) => process.stdout.write(text));
    }
    case 'capture':
      try {
        const { runCapture } = await import('./capture/run.js');
        await runCapture(config, log);
        return 0;
      } catch (error) {
        return fail(errorMessage(error), error instanceof UsageError ? 2 : 1);
      }
    case 'mixin':
      try {
        const { runMixin } = await import('./mixin/command.js');
        await runMixin(config, (text) => process.stdout.write(text));
        return 0;
      } catch (error) {
        return fail(errorMessage(error), error instanceof UsageError ? 2 : 1);
      }
    default:
      return fail(`command ${config.command} is not available in this build`, 2);
  }
}

main().then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = fail(errorMessage(error), 1);
  },
);
