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
