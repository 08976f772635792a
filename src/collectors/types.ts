import type { HostPaths } from '../host/paths.js';
import type { Logger } from '../log.js';
import type { MetricSink } from '../metrics/sink.js';

/**
 * The facts each collector contributes to a snapshot, keyed by collector name.
 * Each collector module adds its own entry by declaration merging, so adding a
 * collector touches its own file and the list in `index.ts` only.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface FactsByCollector {}

export type CollectorName = keyof FactsByCollector;

/** Settings of individual collectors that come from flags (e.g. a QMP deadline). Extended by collectors. */
export interface CollectorSettings {
  /** Interval between samples; collectors that follow a stream use it to size their work. */
  sampleIntervalSeconds: number;
  /** Hard deadline for one QMP exchange. */
  qmpTimeoutSeconds: number;
  /** Deadline of one VM's file read (config, pid file, /proc/<pid>): a read that hangs costs that VM, not the collector. */
  vmReadTimeoutSeconds: number;
}

export interface Snapshot {
  /** Wall-clock time the sample started, ms since the epoch. */
  takenAtMs: number;
  outcomes: CollectorOutcome[];
  facts: Partial<FactsByCollector>;
}

export interface CollectorOutcome {
  name: CollectorName;
  success: boolean;
  durationSeconds: number;
  /** Why success is false: a thrown error or the problems the collector reported. */
  errors: string[];
}

export interface CollectContext {
  paths: HostPaths;
  log: Logger;
  settings: CollectorSettings;
  /** The previous snapshot, for collectors that correlate with what was last seen (e.g. OOM kill → QEMU pid). */
  previous: Snapshot | undefined;
}

/**
 * What one run of a collector found. `errors` are problems that did not stop it (one unreadable
 * device among many): the facts are still rendered, but the collector reports success 0.
 */
export interface Collected<Facts> {
  facts: Facts;
  errors: string[];
}

export interface CollectorInstance<Facts> {
  collect(context: CollectContext): Promise<Collected<Facts>>;
  /** Releases what the collector holds between samples (open files, followers). */
  close?(): Promise<void>;
}

export interface CollectorDefinition<Name extends CollectorName> {
  name: Name;
  description: string;
  defaultEnabled: boolean;
  create(settings: CollectorSettings, log: Logger): CollectorInstance<FactsByCollector[Name]>;
  render(facts: FactsByCollector[Name], sink: MetricSink): void;
}

export type AnyCollectorDefinition = { [Name in CollectorName]: CollectorDefinition<Name> }[CollectorName];
