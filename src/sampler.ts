import { performance } from 'node:perf_hooks';
import { errorMessage } from './host/fs.js';
import type { HostPaths } from './host/paths.js';
import type { Logger } from './log.js';
import type {
  AnyCollectorDefinition,
  CollectorDefinition,
  CollectorInstance,
  CollectorName,
  CollectorOutcome,
  CollectorSettings,
  FactsByCollector,
  Snapshot,
} from './collectors/types.js';
import { renderSnapshot, type BuildInfo } from './metrics/render.js';

interface ActiveCollector<Name extends CollectorName> {
  definition: CollectorDefinition<Name>;
  instance: CollectorInstance<FactsByCollector[Name]>;
  /** A run that outlived its timeout and has not settled yet (a hung read): no second run starts beside it. */
  stillRunning: Promise<unknown> | undefined;
  /** The errors of the last run: an error is logged when it appears and when it clears, not every sample. */
  lastErrors: ReadonlySet<string>;
}

type AnyActiveCollector = { [Name in CollectorName]: ActiveCollector<Name> }[CollectorName];

export interface SamplerOptions {
  collectors: readonly AnyCollectorDefinition[];
  paths: HostPaths;
  settings: CollectorSettings;
  log: Logger;
  build: BuildInfo;
  /** The host reserve set for this exporter, exported for the rules; undefined when the rules' setting applies. */
  hostReserveBytes: number | undefined;
  /** A collector that takes longer fails this sample; the others are not held up. */
  collectorTimeoutSeconds: number;
}

export interface Sample {
  snapshot: Snapshot;
  /**
   * The snapshot in the text exposition format, rendered when the sample was taken: the chunks a scrape
   * writes one after another. A collector whose facts did not change gives the same chunk as before.
   */
  body: readonly Buffer[];
  /** The same text as one string, decoded at each read (scrapes write `body`; nothing keeps a string of it). */
  readonly text: string;
}

export const makeSample = (snapshot: Snapshot, body: readonly Buffer[]): Sample => ({
  snapshot,
  body,
  get text() {
    return Buffer.concat(body).toString('utf8');
  },
});

const activate = <Name extends CollectorName>(
  definition: CollectorDefinition<Name>,
  settings: CollectorSettings,
  log: Logger,
): ActiveCollector<Name> => ({ definition, instance: definition.create(settings, log), stillRunning: undefined, lastErrors: new Set() });

/** Logs what changed in a collector's errors: new ones as errors, cleared ones as info, the rest at debug. */
function logErrorChanges(log: Logger, collector: string, before: ReadonlySet<string>, now: ReadonlySet<string>): void {
  for (const error of now) {
    if (before.has(error)) log.debug('collector problem persists', { collector, err: error });
    else log.error('collector problem', { collector, err: error });
  }
  for (const error of before) if (!now.has(error)) log.info('collector problem cleared', { collector, err: error });
}

/**
 * Runs one collector under a deadline. A read that hangs (a stuck FUSE mount such as a Proxmox
 * /etc/pve without quorum, a device that never answers) fails that collector, not the sample.
 */
async function runCollector<Name extends CollectorName>(
  active: ActiveCollector<Name>,
  context: Parameters<CollectorInstance<unknown>['collect']>[0],
  facts: Partial<FactsByCollector>,
  timeoutSeconds: number,
): Promise<CollectorOutcome> {
  const { definition, instance } = active;
  const started = performance.now();
  let errors: string[];
  if (active.stillRunning) {
    errors = [`previous run still has not finished after timing out; skipped`];
  } else {
    const run = instance.collect(context);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutSeconds}s`)), timeoutSeconds * 1000);
    });
    try {
      const collected = await Promise.race([run, deadline]);
      facts[definition.name] = collected.facts;
      errors = collected.errors;
    } catch (error) {
      errors = [errorMessage(error)];
      active.stillRunning = run;
      void run.catch(() => undefined).finally(() => {
        active.stillRunning = undefined;
      });
    } finally {
      clearTimeout(timer);
    }
  }
  const durationSeconds = (performance.now() - started) / 1000;
  const errorSet = new Set(errors);
  logErrorChanges(context.log, definition.name, active.lastErrors, errorSet);
  active.lastErrors = errorSet;
  return { name: definition.name, success: errors.length === 0, durationSeconds, errors };
}

/**
 * Takes snapshots: every enabled collector runs concurrently, each timed and failing alone.
 * The latest sample is replaced atomically, so a scrape during a sample gets the previous one.
 */
export class Sampler {
  private readonly active: AnyActiveCollector[];
  private latestSample: Sample | undefined;
  private running: Promise<Sample> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: SamplerOptions) {
    this.active = options.collectors.map((definition) => activate(definition as CollectorDefinition<CollectorName>, options.settings, options.log) as AnyActiveCollector);
  }

  get latest(): Sample | undefined {
    return this.latestSample;
  }

  /** Takes one sample; a call while one is running joins it instead of starting another. */
  sample(): Promise<Sample> {
    this.running ??= this.takeSample().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async takeSample(): Promise<Sample> {
    const takenAtMs = Date.now();
    const facts: Partial<FactsByCollector> = {};
    const context = { paths: this.options.paths, log: this.options.log, settings: this.options.settings, previous: this.latestSample?.snapshot };
    const outcomes = await Promise.all(
      this.active.map((collector) => runCollector(collector as ActiveCollector<CollectorName>, context, facts, this.options.collectorTimeoutSeconds)),
    );
    const snapshot: Snapshot = { takenAtMs, outcomes, facts };
    const sample = makeSample(snapshot, renderSnapshot(snapshot, this.options.collectors, this.options.build, this.options.hostReserveBytes));
    this.latestSample = sample;
    return sample;
  }

  /**
   * Samples now and then every `intervalSeconds`, on multiples of the interval since the epoch (every 15 s at
   * :00, :15, :30 and :45), as a cron schedule would; a tick that finds a sample still running is skipped.
   */
  start(intervalSeconds: number): void {
    checkSampleInterval(intervalSeconds);
    const sampleLogged = (): void => {
      void this.sample().catch((error: unknown) => this.options.log.error('sample failed', { err: errorMessage(error) }));
    };
    const schedule = (): void => {
      this.timer = setTimeout(() => {
        schedule();
        if (this.running) {
          this.options.log.warn('previous sample still running; skipping this tick');
          return;
        }
        sampleLogged();
      }, msUntilNextTick(intervalSeconds, Date.now()));
    };
    sampleLogged();
    schedule();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
    await Promise.all(this.active.map((collector) => collector.instance.close?.()));
  }
}

/** Throws unless the interval divides a minute (1s..60s) or an hour (1m..60m) evenly, so that ticks fall on the same seconds of every hour. */
export function checkSampleInterval(seconds: number): void {
  const dividesMinute = Number.isInteger(seconds) && seconds >= 1 && seconds <= 60 && 60 % seconds === 0;
  const minutes = seconds / 60;
  const dividesHour = Number.isInteger(minutes) && minutes >= 1 && minutes <= 60 && 60 % minutes === 0;
  if (!dividesMinute && !dividesHour) throw new Error(`interval ${seconds}s must divide a minute (1s..60s) or an hour (1m..60m) evenly`);
}

/**
 * Time from `nowMs` to the tick after the nearest multiple of the interval. A timer that fires a little
 * early or late (the wall clock and the timer's monotonic clock drift apart) still waits a whole interval
 * for the next tick; a start more than half an interval before a multiple waits for that multiple.
 */
export function msUntilNextTick(intervalSeconds: number, nowMs: number): number {
  const intervalMs = intervalSeconds * 1000;
  return (Math.floor((nowMs + intervalMs / 2) / intervalMs) + 1) * intervalMs - nowMs;
}
