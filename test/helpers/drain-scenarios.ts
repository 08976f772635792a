import { readFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { repoRoot } from './fixtures.js';

/**
 * Memory-drain scenarios for the promtool unit tests in alerts/tests/drain.yml, built from a real
 * scrape: the golden exposition of the fixed seed host (VM 101 running with its SATA controller).
 * Every scenario is that host under its own `instance`, all in one test, so the same VM ids sit on
 * many hosts in one Prometheus. Only MemAvailable moves (and, for the restart, the exporter itself).
 */

const sampleSeconds = 15;
const evaluationSeconds = 60;
/** Every scenario runs 5 hours: an hour of calm, then what it models. */
export const durationMinutes = 300;
const calmMinutes = 60;
const steps = (durationMinutes * 60) / sampleSeconds;

const goldenFile = path.join(repoRoot, 'test/golden/suprox-fixed.prom');
/** VM 103 (8 GiB, ballooning down to all of it) does not fit the fixed host: left out so that only memory moves. */
const leftOut = /vmid="103"|^vfio_collector_duration_seconds/;

interface ScrapedSeries {
  name: string;
  /** Label pairs as the exposition writes them, without braces; may be empty. */
  labels: string;
  value: number;
}

function scrapedSeries(): ScrapedSeries[] {
  return readFileSync(goldenFile, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#') && !leftOut.test(line))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not an exposition line: ${line}`);
      return { name: match[1]!, labels: match[2] ?? '', value: match[3] === '<timestamp>' ? 0 : Number(match[3]) };
    });
}

const scraped = scrapedSeries();
const scrapedValue = (name: string): number => scraped.find((series) => series.name === name && series.labels === '')!.value;

const gib = 1024 ** 3;
const reserveBytes = gib;
const availableBytes = scrapedValue('vfio_host_memory_available_bytes');
/** Headroom of the scraped host: MemAvailable + ARC above c_min − reserve. */
const headroomBytes =
  availableBytes + Math.max(0, scrapedValue('vfio_host_zfs_arc_size_bytes') - scrapedValue('vfio_host_zfs_arc_min_bytes')) - reserveBytes;
/** The kill of the seed incident, 1 day before the scenarios start (the test clock starts at 0). */
const killSecondsBeforeStart = 86_400;

export interface Scenario {
  instance: string;
  description: string;
  /** MemAvailable at a minute of the run. */
  availableAt: (minute: number) => number;
  /** Minutes with no scrape at all (the exporter restarting): `[from, to)`. */
  gap?: [number, number];
  /** For a leak: the minute headroom reaches zero, and the minute memory comes back. */
  leak?: { emptyMinutes: number; exhaustedAt: number; recoveredAt: number };
  /** Minimum lead of the first warning before exhaustion, in minutes. */
  warningLeadMinutes?: number;
}

/** A leak that empties the headroom in `emptyMinutes` after the calm hour, goes on 2 minutes past it, then memory comes back. */
const leak = (emptyMinutes: number, warningLeadMinutes: number): Scenario => {
  const exhaustedAt = calmMinutes + emptyMinutes;
  const recoveredAt = exhaustedAt + 3;
  const perMinute = headroomBytes / emptyMinutes;
  return {
    instance: `leak-${emptyMinutes}m:9847`,
    description: `a leak empties the headroom in ${emptyMinutes} minutes; memory comes back 3 minutes after`,
    availableAt: (minute) =>
      minute < calmMinutes || minute >= recoveredAt ? availableBytes : availableBytes - perMinute * Math.min(minute - calmMinutes, emptyMinutes + 2),
    leak: { emptyMinutes, exhaustedAt, recoveredAt },
    warningLeadMinutes,
  };
};

const swingPeriodMinutes = 30;
export const scenarios: Scenario[] = [
  leak(120, 30),
  leak(30, 10),
  leak(12, 4),
  {
    instance: 'swing:9847',
    description: 'a busy host: MemAvailable swings by a quarter of its level every half hour for 4 hours',
    // The phase from the sample index, so every period repeats the same values exactly.
    availableAt: (minute) =>
      minute < calmMinutes
        ? availableBytes
        : availableBytes * (1 + 0.25 * Math.sin((2 * Math.PI * (Math.round((minute - calmMinutes) * 4) % (swingPeriodMinutes * 4))) / (swingPeriodMinutes * 4))),
  },
  {
    instance: 'drop:9847',
    description: 'a one-off drop: half of MemAvailable taken within a minute, held 30 minutes, given back',
    availableAt: (minute) => (minute < 120 || minute >= 151 ? availableBytes : availableBytes * (1 - 0.5 * Math.min(1, minute - 120 + 0.25))),
  },
  {
    instance: 'steady-low:9847',
    description: 'steadily low but positive: 256 MiB of headroom all along',
    availableAt: () => availableBytes - headroomBytes + 256 * 1024 ** 2,
  },
  {
    instance: 'restart:9847',
    description: 'the exporter restarts: 3 minutes without a scrape, its counters start again from 0',
    availableAt: () => availableBytes,
    gap: [150, 153],
  },
];

/** Counters the host keeps across an exporter restart (the exporter carries OOM kills over). */
const keptAcrossRestart = /^vfio_oom_/;

/** promtool's expanding notation: runs of equal values as `vxN`, missing samples as `_`. */
function compact(values: (number | undefined)[]): string {
  const parts: string[] = [];
  for (let index = 0; index < values.length; ) {
    let end = index + 1;
    while (end < values.length && values[end] === values[index]) end++;
    const value = values[index];
    const token = value === undefined ? '_' : String(value);
    parts.push(end - index === 1 ? token : `${token}x${end - index - 1}`);
    index = end;
  }
  return parts.join(' ');
}

function inputSeries(scenario: Scenario): { series: string; values: string }[] {
  const minutes = Array.from({ length: steps + 1 }, (_, step) => (step * sampleSeconds) / 60);
  const inGap = (minute: number): boolean => scenario.gap !== undefined && minute >= scenario.gap[0] && minute < scenario.gap[1];
  const restarted = (minute: number): boolean => scenario.gap !== undefined && minute >= scenario.gap[1];
  const valuesOf = (series: ScrapedSeries): (number | undefined)[] =>
    minutes.map((minute) => {
      if (inGap(minute)) return undefined;
      if (series.name === 'vfio_host_memory_available_bytes') return Math.round(scenario.availableAt(minute));
      if (series.name === 'vfio_last_sample_timestamp_seconds') return minute * 60;
      if (series.name === 'vfio_vm_last_oom_kill_timestamp_seconds') return -killSecondsBeforeStart;
      if (series.name.endsWith('_total') && !keptAcrossRestart.test(series.name) && restarted(minute)) return 0;
      return series.value;
    });
  const labelsOf = (series: ScrapedSeries): string => [`instance="${scenario.instance}"`, 'job="vfio"', series.labels].filter(Boolean).join(',');
  return [
    { series: `up{instance="${scenario.instance}",job="vfio"}`, values: compact(minutes.map((minute) => (inGap(minute) ? 0 : 1))) },
    ...scraped.map((series) => ({ series: `${series.name}{${labelsOf(series)}}`, values: compact(valuesOf(series)) })),
  ];
}

const duration = (minutes: number): string => (minutes % 60 === 0 ? `${minutes / 60}h` : `${minutes}m`);
const alertsOf = (instance: string, matchers = ''): string => `ALERTS{alertstate="firing",instance="${instance}"${matchers}}`;
const fires = (expr: string, minute: number) => ({ expr: `group(${expr})`, eval_time: duration(minute), exp_samples: [{ labels: '{}', value: 1 }] });
const silent = (expr: string, minute: number) => ({ expr, eval_time: duration(minute), exp_samples: [] });

function expectations(scenario: Scenario) {
  const { instance, leak: drain, warningLeadMinutes } = scenario;
  if (!drain || warningLeadMinutes === undefined) return [silent(`count_over_time(${alertsOf(instance)}[${duration(durationMinutes)}])`, durationMinutes)];
  return [
    silent(`count_over_time(${alertsOf(instance)}[${duration(calmMinutes)}])`, calmMinutes),
    fires(alertsOf(instance, ',severity="warning"'), drain.exhaustedAt - warningLeadMinutes),
    fires(alertsOf(instance, ',severity="critical"'), drain.exhaustedAt - 1),
    silent(`ALERTS{instance="${instance}"}`, drain.recoveredAt + 10),
  ];
}

/** The text of alerts/tests/drain.yml. */
export function drainTests(): string {
  const header = [
    '# Generated by test/helpers/drain-scenarios.ts from the scrape test/golden/suprox-fixed.prom;',
    '# UPDATE_GOLDEN=1 npx vitest run test/alerts-drain.test.ts rewrites it. Do not edit by hand.',
    '#',
    ...scenarios.map((scenario) => `# ${scenario.instance.padEnd(16)} ${scenario.description}`),
    '#',
    `# Headroom of the scraped host: ${(headroomBytes / gib).toFixed(2)} GiB. Leaks: the first warning at least the`,
    '# given minutes before headroom is gone, the page before it is gone, both resolved 10 minutes after',
    '# memory came back. The others: no alert firing at any time.',
    '',
  ].join('\n');
  const body = {
    rule_files: ['../vfio.rules.yml'],
    evaluation_interval: `${evaluationSeconds}s`,
    group_eval_order: ['vfio.recording', 'vfio.starts', 'vfio.alerts'],
    tests: [
      {
        name: 'fast and slow drains, and busy but healthy hosts',
        interval: `${sampleSeconds}s`,
        input_series: scenarios.flatMap(inputSeries),
        promql_expr_test: scenarios.flatMap(expectations),
      },
    ],
  };
  return header + stringify(body, { lineWidth: 0, flowCollectionPadding: false });
}
