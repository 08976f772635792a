/**
 * The fleet benchmark: `npm run bench:fleet [-- --hosts 10,100,1000] [--mix fleet|harsh]`. Serves N hosts'
 * exporter output (bench/fleet/hosts.ts) as N scrape targets to a real Prometheus that evaluates
 * alerts/vfio.rules.yml (every group every 15 s), then reads each rule group's own
 * `prometheus_rule_group_last_duration_seconds` over six evaluations (worst, median, best) and states it
 * against the group's interval in the rule file, counts the series the recording rules add, checks that the
 * start alert names exactly the VMs that cannot start and no rule fails, lists the slowest rules (the rules
 * API's per-rule `evaluationTime`, with their alerts), and times every dashboard query (grafana/*.json,
 * variables at "All", or ten hosts where a dashboard offers no All) as Grafana asks it: instant targets at one
 * instant, the others over the last hour.
 * Method and results: docs/performance.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseDuration } from '../../src/parse/duration.js';
import { rulesAtGlobalInterval, rulesFile, startDaemon, tempDir, waitFor, type Daemon } from '../../test/helpers/alerting.js';
import { repoRoot } from '../../test/helpers/fixtures.js';
import { loadDashboards, queries, regexValue, substitute, type Dashboard } from '../../test/helpers/grafana.js';
import { ruleGroups } from '../../test/helpers/rules.js';
import { freePort } from '../../test/helpers/ports.js';
import { describeMachine } from '../machine.js';
import { atMost, context, formatTable, ms, percent, type Row } from '../table.js';
import { fleetHost, fleetMixes, type FleetHost, type FleetMix } from './hosts.js';

// --rules: another rule file to measure against the same fleet, e.g. the last release's.
// --mix harsh: two hosts in three with standing alerts, whose annotations every evaluation renders again.
const { values: options } = parseArgs({
  options: { hosts: { type: 'string', default: '10,100,1000' }, rules: { type: 'string', default: rulesFile }, mix: { type: 'string', default: 'fleet' } },
});
if (!Object.hasOwn(fleetMixes, options.mix)) throw new Error(`--mix: one of ${Object.keys(fleetMixes).join(', ')}, not ${options.mix}`);
const mix = options.mix as FleetMix;
const fleetSizes = options.hosts.split(',').map(Number);

// One evaluation costs the same whatever the interval; 15s lets several land in a short run, so every
// group is evaluated that often here. Each group's cost is stated against its own interval in the rule
// file (groups without one: the 1 minute the rules are written for), and their sum as a share of a minute.
const intervalSeconds = 15;
const budgetSeconds = 60;
const rulesText = readFileSync(options.rules, 'utf8');
const groupIntervals = new Map(ruleGroups(rulesText).map((group) => [group.name, group.interval ?? `${budgetSeconds}s`]));
const evaluationsToWatch = 6;
const slowestRulesShown = 8;

const progress = (line: string): void => {
  process.stderr.write(`bench:fleet: ${line}\n`);
};
const sleep = (milliseconds: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, milliseconds));

interface Answer<T> {
  status: string;
  error?: string;
  data: T;
}
type Vector = { metric: Record<string, string>; value: [number, string] }[];

async function api<T>(prometheus: Daemon, endpoint: string, parameters: Record<string, string> = {}): Promise<T> {
  const response = await fetch(`${prometheus.url}/api/v1/${endpoint}?${new URLSearchParams(parameters)}`, { signal: AbortSignal.timeout(60_000) });
  const answer = (await response.json()) as Answer<T>;
  if (answer.status !== 'success') throw new Error(`${endpoint} ${JSON.stringify(parameters)}: ${answer.error ?? response.status}`);
  return answer.data;
}
const instant = (prometheus: Daemon, query: string): Promise<Vector> =>
  api<{ result: Vector }>(prometheus, 'query', { query }).then((data) => data.result);

/** Serves every host's body at `/hosts/<index>/metrics` from one port. */
async function serveFleet(hosts: readonly FleetHost[]): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    const host = hosts[Number(/^\/hosts\/(\d+)\/metrics$/.exec(request.url ?? '')?.[1] ?? -1)];
    if (!host) return void response.writeHead(404).end();
    // A live exporter's last sample is always fresh; a stale one would page.
    response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(host.body.replace('<timestamp>', String(Date.now() / 1000)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface Measured {
  hosts: number;
  scrapedSeries: number;
  /** Each group's worst, median and best evaluation of those watched: the best is the least disturbed by other work. */
  groups: { name: string; seconds: number; medianSeconds: number; bestSeconds: number }[];
  recordedSeries: number;
  ruleErrors: string[];
  startAlertHosts: string;
  /** Hosts whose alerts, by name, are not exactly their fixture's. */
  hostsAlertedWrongly: string[];
  /** The slowest query of each dashboard, as Grafana asks it. */
  slowestPerDashboard: { where: string; milliseconds: number }[];
  /** The slowest instant target asked as a range over the hour instead, as this benchmark once did. */
  slowestInstantAsRange: { where: string; milliseconds: number };
  queries: number;
  queryErrors: string[];
  slowestRules: string[];
  alertCounts: string;
  prometheusResidentBytes: number;
  loadAverage: string;
}

interface Rule {
  name: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
  evaluationTime: number;
  alerts?: unknown[];
}

/**
 * The hosts a dashboard is looked at with: every host where its host variable offers All, else the first
 * `hostsPicked`, as Grafana writes several values of a variable into a regex.
 */
const hostsPicked = 10;
const hostsChosen = (dashboard: Dashboard, hosts: readonly FleetHost[]): Record<string, string> =>
  dashboard.templating.list.find((variable) => variable.name === 'instance')?.includeAll
    ? {}
    : { instance: `(${hosts.slice(0, hostsPicked).map((host) => regexValue(host.instance)).join('|')})` };

const slower = <T extends { milliseconds: number }>(a: T, b: T): T => (b.milliseconds > a.milliseconds ? b : a);
const none = { where: '', milliseconds: 0 };

async function measure(size: number): Promise<Measured> {
  const hosts = Array.from({ length: size }, (_unused, index) => fleetHost(index, mix));
  const fleet = await serveFleet(hosts);
  const dir = tempDir('vfio-fleet-');
  const rulesCopy = path.join(dir.dir, 'rules.yml');
  writeFileSync(rulesCopy, rulesAtGlobalInterval(rulesText));
  const config = {
    global: { scrape_interval: `${intervalSeconds}s`, scrape_timeout: '10s', evaluation_interval: `${intervalSeconds}s` },
    rule_files: [rulesCopy],
    scrape_configs: [
      {
        job_name: 'vfio',
        static_configs: hosts.map((host, index) => ({
          targets: [`127.0.0.1:${fleet.port}`],
          labels: { instance: host.instance, cluster: host.cluster, __metrics_path__: `/hosts/${index}/metrics` },
        })),
      },
    ],
  };
  const configFile = path.join(dir.dir, 'prometheus.yml');
  writeFileSync(configFile, JSON.stringify(config));
  const port = await freePort();
  const prometheus = await startDaemon(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir.dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    port,
  );
  try {
    const started = Date.now();
    await waitFor(`all ${size} targets scraped`, 120_000, async () => {
      const targets = await api<{ activeTargets: { health: string; lastError: string }[] }>(prometheus, 'targets');
      const failed = targets.activeTargets.find((target) => target.lastError);
      if (failed) throw new Error(`a scrape failed: ${failed.lastError}`);
      return targets.activeTargets.filter((target) => target.health === 'up').length === size ? true : undefined;
    });
    const allUpAt = Date.now() / 1000;
    progress(`${size} hosts: all targets up after ${((Date.now() - started) / 1000).toFixed(0)} s; watching ${evaluationsToWatch} evaluations`);
    // A few evaluations of each group, its own figure, once every target has data.
    // Prometheus' own /metrics (it does not scrape itself here): each group's last duration.
    const durations = new Map<string, number[]>();
    let ownMetrics = '';
    for (let round = 0; round < evaluationsToWatch; round++) {
      await sleep(intervalSeconds * 1000);
      ownMetrics = await (await fetch(`${prometheus.url}/metrics`)).text();
      const startedAt = new Map(
        [...ownMetrics.matchAll(/^prometheus_rule_group_last_evaluation_timestamp_seconds\{rule_group="[^"]*;([^"]+)"\} (\S+)$/gm)].map(([, name, at]) => [name!, Number(at)]),
      );
      for (const [, name, seconds] of ownMetrics.matchAll(/^prometheus_rule_group_last_duration_seconds\{rule_group="[^"]*;([^"]+)"\} (\S+)$/gm)) {
        // An evaluation that started before every target had been scraped ran on part of the fleet.
        if ((startedAt.get(name!) ?? 0) < allUpAt) continue;
        durations.set(name!, [...(durations.get(name!) ?? []), Number(seconds)]);
      }
    }
    // One figure per rule, not per group: the group's rules run one after the other, annotations included.
    const rules = await api<{ groups: { name: string; rules: Rule[] }[] }>(prometheus, 'rules');
    const slowestRules = rules.groups
      .flatMap((group) => group.rules.map((rule) => ({ group: group.name, ...rule })))
      .sort((a, b) => b.evaluationTime - a.evaluationTime)
      .slice(0, slowestRulesShown)
      .map((rule) => `${rule.name} (${rule.group}${rule.type === 'alerting' ? `, ${rule.alerts?.length ?? 0} alerts` : ''}) ${ms(rule.evaluationTime * 1000)}`);
    const ruleErrors = rules.groups.flatMap((group) => group.rules.filter((rule) => rule.health === 'err').map((rule) => `${rule.name}: ${rule.lastError ?? ''}`));
    const [recorded] = await instant(prometheus, 'count({__name__=~"vfio:.+"})');
    const [scraped] = await instant(prometheus, 'sum(scrape_samples_scraped{job="vfio"})');

    // Pending or firing: the rules' `for:` outlasts the run. Expected: exactly the VMs each fixture cannot start.
    const alerted = new Set((await instant(prometheus, 'ALERTS{alertname="VfioPassthroughVMStartWouldOOM"}')).map((sample) => `${sample.metric['instance']}/${sample.metric['vmid']}`));
    const expected = new Set(hosts.flatMap((host) => host.startAlertVms.map((vmid) => `${host.instance}/${vmid}`)));
    const wrong = [...alerted].filter((key) => !expected.has(key));
    const missed = [...expected].filter((key) => !alerted.has(key));
    const startAlertHosts = `${alerted.size - wrong.length} of ${expected.size} expected${wrong.length ? `, WRONG: ${wrong.slice(0, 3).join(' ')}` : ''}${missed.length ? `, missed ${missed.length}` : ''}`;

    // Every alert on the hosts it belongs to: a join that mixed hosts up would move alerts between them.
    const alertNamesOf = new Map<string, string[]>();
    const alertsByName = new Map<string, number>();
    for (const { metric, value } of await instant(prometheus, 'count by (instance, alertname) (ALERTS)')) {
      alertNamesOf.set(metric['instance']!, [...(alertNamesOf.get(metric['instance']!) ?? []), metric['alertname']!].sort());
      alertsByName.set(metric['alertname']!, (alertsByName.get(metric['alertname']!) ?? 0) + Number(value[1]));
    }
    const hostsAlertedWrongly = hosts.flatMap((host) => {
      const raised = alertNamesOf.get(host.instance) ?? [];
      return raised.join() === [...host.alerts].sort().join() ? [] : [`${host.instance} (${host.fixture}): ${raised.join(' ') || 'none'}`];
    });
    const alertCounts = [...alertsByName]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, alerts]) => `${name} ${alerts}`)
      .join(', ');
    const slowestPerDashboard: Measured['slowestPerDashboard'] = [];
    let slowestInstantAsRange = none;
    let count = 0;
    const queryErrors: string[] = [];
    const end = Math.floor(Date.now() / 1000);
    const timed = async (where: string, endpoint: string, parameters: Record<string, string>): Promise<{ where: string; milliseconds: number }> => {
      const before = performance.now();
      await api(prometheus, endpoint, parameters).catch((error: unknown) => queryErrors.push(`${where}: ${String(error).slice(-200)}`));
      count++;
      return { where, milliseconds: performance.now() - before };
    };
    const overTheHour = { start: String(end - 3600), end: String(end), step: '60' };
    for (const { dashboard } of loadDashboards(path.join(repoRoot, 'grafana'))) {
      let slowest = none;
      const selected = hostsChosen(dashboard, hosts);
      for (const query of queries(dashboard)) {
        if (!query.expr) continue;
        const expr = substitute(query.expr, dashboard, selected);
        const where = `${dashboard.uid}: ${query.where}`;
        if (query.target?.instant) {
          slowest = slower(slowest, await timed(where, 'query', { query: expr, time: String(end) }));
          slowestInstantAsRange = slower(slowestInstantAsRange, await timed(where, 'query_range', { query: expr, ...overTheHour }));
        } else slowest = slower(slowest, await timed(where, 'query_range', { query: expr, ...overTheHour }));
      }
      slowestPerDashboard.push(slowest);
    }
    const residentBytes = Number(/^process_resident_memory_bytes (\S+)$/m.exec(ownMetrics)?.[1] ?? 0);
    return {
      hosts: size,
      scrapedSeries: Number(scraped?.value[1] ?? 0),
      groups: [...durations]
        .map(([name, seconds]) => {
          const sorted = [...seconds].sort((a, b) => a - b);
          return { name, seconds: sorted.at(-1)!, medianSeconds: sorted[Math.floor(sorted.length / 2)]!, bestSeconds: sorted[0]! };
        })
        .sort((a, b) => a.name.localeCompare(b.name)),
      recordedSeries: Number(recorded?.value[1] ?? 0),
      ruleErrors,
      startAlertHosts,
      hostsAlertedWrongly,
      slowestPerDashboard,
      slowestInstantAsRange,
      queries: count,
      queryErrors,
      slowestRules,
      alertCounts,
      prometheusResidentBytes: residentBytes,
      loadAverage: describeMachine().loadAverage,
    };
  } finally {
    await prometheus.stop();
    await fleet.close();
    dir.remove();
  }
}

const rows: Row[] = [];
for (const size of fleetSizes) {
  progress(`${size} hosts: starting`);
  const result = await measure(size);
  // Seconds of evaluation per minute: each group's evaluation as often as its interval has it run.
  const perMinute = (cost: (group: Measured['groups'][number]) => number): number =>
    result.groups.reduce((sum, group) => sum + (cost(group) * budgetSeconds) / parseDuration(groupIntervals.get(group.name) ?? `${budgetSeconds}s`), 0);
  const all = perMinute((group) => group.seconds);
  const allMedian = perMinute((group) => group.medianSeconds);
  const allBest = perMinute((group) => group.bestSeconds);
  rows.push(context(`${size} hosts: series scraped`, result.scrapedSeries.toLocaleString('en-US')));
  for (const group of result.groups) {
    const interval = groupIntervals.get(group.name) ?? `${budgetSeconds}s`;
    const share = percent((group.seconds / parseDuration(interval)) * 100);
    rows.push(
      context(`${size} hosts: ${group.name} evaluation, worst, median (best)`, `${ms(group.seconds * 1000)}, ${ms(group.medianSeconds * 1000)} (${ms(group.bestSeconds * 1000)}), worst ${share} of its ${interval}`),
    );
  }
  // The median evaluation of each group is what the rules cost; the worst adds each group's one most disturbed
  // evaluation (garbage collection, a scrape of every target at the same moment), which seldom coincide.
  rows.push(atMost(`${size} hosts: all vfio groups, evaluation time per minute, median evaluations`, (allMedian / budgetSeconds) * 100, 2, percent));
  rows.push(context(`${size} hosts: all vfio groups, evaluation time per minute, worst (best) evaluations`, `${percent((all / budgetSeconds) * 100)} (${percent((allBest / budgetSeconds) * 100)})`));
  result.slowestRules.forEach((rule, rank) => rows.push(context(`${size} hosts: slowest rules, last evaluation: ${rank + 1}`, rule)));
  rows.push(context(`${size} hosts: alerts pending or firing`, result.alertCounts));
  rows.push(context(`${size} hosts: series the recording rules add`, result.recordedSeries.toLocaleString('en-US')));
  rows.push(atMost(`${size} hosts: rules failing to evaluate`, result.ruleErrors.length, 1, (value) => String(value)));
  rows.push(context(`${size} hosts: VfioPassthroughVMStartWouldOOM on the VMs that cannot start`, result.startAlertHosts));
  rows.push(atMost(`${size} hosts: hosts whose alerts are not exactly their own`, result.hostsAlertedWrongly.length, 1, (value) => String(value)));
  for (const slowest of result.slowestPerDashboard) rows.push(atMost(`${size} hosts: slowest dashboard query: ${slowest.where}`, slowest.milliseconds, 1000, ms));
  rows.push(context(`${size} hosts: ${result.queries} queries; slowest instant target asked over 1h at a 1m step instead: ${result.slowestInstantAsRange.where}`, ms(result.slowestInstantAsRange.milliseconds)));
  rows.push(context(`${size} hosts: Prometheus resident memory; load average`, `${(result.prometheusResidentBytes / 1024 ** 2).toFixed(0)} MiB; ${result.loadAverage}`));
  rows.push(atMost(`${size} hosts: dashboard queries failing`, result.queryErrors.length, 1, (value) => String(value)));
  for (const error of [...result.ruleErrors, ...result.queryErrors, ...result.hostsAlertedWrongly.slice(0, 5)]) progress(`error: ${error}`);
}
const machine = describeMachine();
console.log(`${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.kernel}, Prometheus evaluating ${path.relative(repoRoot, path.resolve(options.rules))} every ${intervalSeconds}s, fleet mix "${mix}"`);
console.log(formatTable(rows));
