import { errorMessage } from '../host/fs.js';
import { parse } from 'yaml';
import { parseByteSize } from '../parse/bytes.js';
import { parseDuration } from '../parse/duration.js';

/** What a user can tailor in the generated rules and dashboards; every field has a default (`defaultMixinConfig`). */
export interface MixinConfig {
  /** Label matchers of the exporter's scrape targets in `up{…}`, for the alerts on a missing exporter. */
  exporterSelector: string;
  /** Labels besides instance and job that tell hosts apart across a fleet (e.g. cluster, node), outermost first. */
  fleetLabels: string[];
  /** Where docs/runbooks.md is published: every runbook_url is this + "#<alert name in lower case>". */
  runbookBaseUrl: string;
  /** Memory the host itself keeps (kernel, Proxmox daemons, page cache it cannot do without). */
  hostReserveBytes: number;
  /** How far ahead predicted exhaustion warns. */
  memoryExhaustionHorizonSeconds: number;
  /** Fast drain: time to exhaustion, on the 5-minute trend, that warns... */
  memoryDrainWarningSeconds: number;
  /** ...and that pages. */
  memoryDrainCriticalSeconds: number;
  /** Share of time all tasks stall on memory (PSI "full") that is too much. */
  memoryPressureFullRatio: number;
  /** Age of the exporter's last sample that means it is stuck. */
  sampleStaleSeconds: number;
}

export const defaultMixinConfig: Readonly<MixinConfig> = Object.freeze({
  exporterSelector: 'job=~".*vfio.*"',
  fleetLabels: [],
  runbookBaseUrl: 'docs/runbooks.md',
  hostReserveBytes: 1024 ** 3,
  memoryExhaustionHorizonSeconds: 3600,
  memoryDrainWarningSeconds: 780,
  memoryDrainCriticalSeconds: 300,
  memoryPressureFullRatio: 0.05,
  sampleStaleSeconds: 300,
});

/** The labels that identify one host's series: the fleet labels, then instance and job. */
export const hostLabels = (config: MixinConfig): string => [...config.fleetLabels, 'instance', 'job'].join(', ');

/** `text` as a PromQL string literal (Go's escapes, which JSON's are a subset of). */
export const promqlString = (text: string): string => JSON.stringify(text);

/** The exporter's targets in words, for annotations: `job=~".*vfio.*"` reads "a job whose name contains "vfio"". */
export function describeSelector(selector: string): string {
  const contains = /^job=~"\.\*([\w-]+)\.\*"$/.exec(selector);
  if (contains) return `a job whose name contains "${contains[1]}"`;
  const exact = /^job="([\w-]+)"$/.exec(selector);
  if (exact) return `the job "${exact[1]}"`;
  return `a target matching {${selector}}`;
}

const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const matcher = String.raw`\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*`;
/** Comma-separated label matchers, as between the braces of a PromQL selector. */
const matchers = new RegExp(`^${matcher}(?:,${matcher})*$`);

/** The keys of a config file, what each sets, and how its value reads. */
const fields: Record<string, (value: unknown, config: MixinConfig) => void> = {
  exporter_selector: (value, config) => {
    const text = textOf(value);
    if (!matchers.test(text)) throw new Error(`expected label matchers such as job="pve-hosts", got ${JSON.stringify(text)}`);
    config.exporterSelector = text.trim();
  },
  fleet_labels: (value, config) => {
    if (!Array.isArray(value)) throw new Error('expected a list of label names');
    const labels = value.map(textOf);
    const bad = labels.filter((label) => !labelName.test(label) || label === 'instance' || label === 'job' || label.startsWith('__'));
    if (bad.length > 0) throw new Error(`not a label name besides instance and job: ${bad.join(', ')}`);
    if (new Set(labels).size !== labels.length) throw new Error('a label is listed twice');
    config.fleetLabels = labels;
  },
  runbook_base_url: (value, config) => {
    config.runbookBaseUrl = textOf(value);
  },
  host_reserve: (value, config) => {
    config.hostReserveBytes = parseByteSize(textOf(value));
  },
  memory_exhaustion_horizon: (value, config) => {
    config.memoryExhaustionHorizonSeconds = positive(parseDuration(textOf(value)));
  },
  memory_drain_warning: (value, config) => {
    config.memoryDrainWarningSeconds = positive(parseDuration(textOf(value)));
  },
  memory_drain_critical: (value, config) => {
    config.memoryDrainCriticalSeconds = positive(parseDuration(textOf(value)));
  },
  memory_pressure_full_ratio: (value, config) => {
    if (typeof value !== 'number' || !(value > 0 && value < 1)) throw new Error(`expected a number between 0 and 1, got ${JSON.stringify(value)}`);
    config.memoryPressureFullRatio = value;
  },
  sample_stale: (value, config) => {
    config.sampleStaleSeconds = positive(parseDuration(textOf(value)));
  },
};

function textOf(value: unknown): string {
  if (typeof value === 'string' && value.trim() !== '') return value;
  if (typeof value === 'number') return String(value);
  throw new Error(`expected a text, got ${JSON.stringify(value)}`);
}

function positive(seconds: number): number {
  if (seconds <= 0) throw new Error('must be positive');
  return seconds;
}

/** A config file (YAML, every key optional) over the defaults. Throws naming the key at fault. */
export function parseMixinConfig(text: string): MixinConfig {
  const document: unknown = parse(text);
  const config: MixinConfig = { ...defaultMixinConfig, fleetLabels: [...defaultMixinConfig.fleetLabels] };
  if (document === null || document === undefined) return config;
  if (typeof document !== 'object' || Array.isArray(document)) throw new Error('expected a mapping of settings');
  for (const [key, value] of Object.entries(document)) {
    const field = fields[key];
    if (!field) throw new Error(`unknown setting ${key} (known: ${Object.keys(fields).join(', ')})`);
    try {
      field(value, config);
    } catch (error) {
      throw new Error(`${key}: ${errorMessage(error)}`);
    }
  }
  if (config.memoryDrainCriticalSeconds > config.memoryDrainWarningSeconds) throw new Error('memory_drain_critical: must not exceed memory_drain_warning');
  return config;
}
