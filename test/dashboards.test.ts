import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboardLab, type DashboardLab, type LabHost } from './helpers/dashboard-lab.js';
import { findBinary, repoRoot } from './helpers/fixtures.js';
import {
  allPanels, loadDashboards, mergeTables, organizeOf, queries, queryPanels, regexValue, shownMetrics, substitute, unfiltered, unitOf, valueColumn,
  type Dashboard, type Panel, type Row, type Target,
} from './helpers/grafana.js';
import { rulesFile, tempDir } from './helpers/alerting.js';
import type { RunningPrometheus, Sample } from './helpers/prometheus.js';
import { promtoolTestRules } from './helpers/rules.js';

const grafanaDir = path.join(repoRoot, 'grafana');
const dashboards = loadDashboards(grafanaDir);
const datasourceRef = { type: 'prometheus', uid: '${datasource}' };
const byteUnits = new Set(['bytes', 'decbytes', 'kbytes', 'mbytes', 'gbytes', 'tbytes', 'deckbytes', 'decmbytes', 'decgbytes']);
const timeUnits = new Set(['s', 'ms', 'µs', 'ns', 'm', 'h', 'd', 'dtdurations', 'dtdurationms', 'dateTimeAsIso', 'dateTimeAsLocal', 'dateTimeFromNow']);

/** Every object under `value` that has a `datasource` key, with where it is. */
function datasourceRefs(value: unknown, at = '$'): { at: string; ref: unknown }[] {
  if (Array.isArray(value)) return value.flatMap((item, index) => datasourceRefs(item, `${at}[${index}]`));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, child]) => [
    ...(key === 'datasource' ? [{ at: `${at}.datasource`, ref: child }] : []),
    ...datasourceRefs(child, `${at}.${key}`),
  ]);
}

/** What a query's values are, judged by the metric names it shows: bytes, time, or neither. */
function unitKind(expr: string): 'bytes' | 'time' | undefined {
  const names = shownMetrics(expr);
  if (names.some((name) => name.endsWith('_bytes'))) return 'bytes';
  if (names.some((name) => /_seconds(_total)?$|timestamp/.test(name))) return 'time';
  return undefined;
}

const overlaps = (a: Panel, b: Panel): boolean => {
  const [p, q] = [a.gridPos as Record<string, number>, b.gridPos as Record<string, number>];
  return p.x! < q.x! + q.w! && q.x! < p.x! + p.w! && p.y! < q.y! + q.h! && q.y! < p.y! + p.h!;
};

describe.each(dashboards)('dashboard $file', ({ dashboard }) => {
  it('has a unique id for every panel, including those inside collapsed rows', () => {
    const ids = allPanels(dashboard).map((panel) => panel.id);
    expect(ids.every((id) => Number.isInteger(id))).toBe(true);
    expect(ids.length).toBe(new Set(ids).size);
  });

  it('is on a current schema and uses only current panel types', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    const types = new Set(allPanels(dashboard).map((panel) => panel.type));
    expect([...types].filter((type) => !['row', 'timeseries', 'stat', 'gauge', 'table', 'bargauge', 'state-timeline'].includes(type))).toEqual([]);
  });

  it('has a Prometheus datasource variable and a multi-value instance variable, with All only on the fleet dashboard', () => {
    const variables = dashboard.templating.list;
    expect(variables.find((variable) => variable.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    // The overview lists every device of the hosts it shows: All would select every device of a fleet.
    const fleetWide = dashboard.uid === 'vfio-fleet';
    expect(variables.find((variable) => variable.name === 'instance')).toMatchObject({ type: 'query', multi: true, includeAll: fleetWide });
  });

  it('queries every panel, target, annotation and variable through ${datasource} and hard-codes no datasource uid', () => {
    for (const panel of queryPanels(dashboard)) {
      expect(panel.datasource, panel.title).toEqual(datasourceRef);
      expect(panel.targets?.length, `${panel.title} has no query`).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource, `${panel.title} › ${target.refId}`).toEqual(datasourceRef);
    }
    for (const annotation of dashboard.annotations.list) expect(annotation.datasource, annotation.name).toEqual(datasourceRef);
    const refs = datasourceRefs(dashboard);
    expect(refs.length).toBeGreaterThan(queryPanels(dashboard).length);
    expect(refs.filter(({ ref }) => JSON.stringify(ref) !== JSON.stringify(datasourceRef))).toEqual([]);
    expect(JSON.stringify(dashboard)).not.toMatch(/DS_[A-Z]|__inputs/);
  });

  it('places every panel on the 24-column grid, none overlapping', () => {
    for (const panel of allPanels(dashboard)) {
      const { x, y, w, h } = panel.gridPos;
      expect([x, y, w, h].every((value) => typeof value === 'number' && Number.isInteger(value)), `${panel.title}: ${JSON.stringify(panel.gridPos)}`).toBe(true);
      expect((x as number) >= 0 && (w as number) > 0 && (h as number) > 0 && (x as number) + (w as number) <= 24, panel.title).toBe(true);
    }
    const clashes = (panels: Panel[]): string[] =>
      panels.flatMap((a, index) => panels.slice(index + 1).filter((b) => overlaps(a, b)).map((b) => `${a.title} / ${b.title}`));
    expect(clashes(dashboard.panels)).toEqual([]);
    for (const row of dashboard.panels.filter((panel) => panel.collapsed)) {
      expect(clashes(row.panels ?? []), row.title).toEqual([]);
      for (const panel of row.panels ?? []) expect(panel.gridPos.y as number, panel.title).toBeGreaterThan(row.gridPos.y as number);
    }
  });

  it('shows byte series in a byte unit and seconds or timestamps in a time unit', () => {
    const wrong: string[] = [];
    for (const panel of queryPanels(dashboard)) {
      for (const target of panel.targets ?? []) {
        const kind = unitKind(target.expr ?? '');
        const unit = unitOf(panel, target);
        if (kind === undefined || unit === 'hidden') continue;
        // A rate of a seconds counter (PSI stall time) is a share of time.
        const ratio = /\brate\(/.test(target.expr ?? '') && unit === 'percentunit';
        const fits = kind === 'bytes' ? byteUnits.has(unit ?? '') : timeUnits.has(unit ?? '') || ratio;
        if (!fits) wrong.push(`${panel.title} › ${target.refId}: ${kind} shown as ${unit}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('names only columns a table can show and hides every other field by name', () => {
    for (const panel of queryPanels(dashboard).filter((candidate) => candidate.type === 'table')) {
      const organize = organizeOf(panel);
      expect(organize, panel.title).toBeDefined();
      const multi = (panel.targets ?? []).length > 1;
      expect(panel.transformations?.some((transformation) => transformation.id === 'merge'), panel.title).toBe(multi);
      for (const target of panel.targets ?? []) expect(target, `${panel.title} › ${target.refId}`).toMatchObject({ format: 'table', instant: true });
    }
  });
});

describe('the unit check', () => {
  it('judges a query by the metrics it shows, not by those it counts or filters by', () => {
    expect(unitKind('sum by (instance) (vfio_vm_memory_rss_bytes)')).toBe('bytes');
    expect(unitKind('count(vfio:vm_start_headroom_bytes < 0) or vector(0)')).toBeUndefined();
    expect(unitKind('vfio_vm_info and on (instance, vmid) vfio_vm_last_oom_kill_timestamp_seconds')).toBeUndefined();
    expect(unitKind('max by (instance, vmid) (vfio_vm_last_oom_kill_timestamp_seconds{vmid=~".*"}) * 1000')).toBe('time');
    expect(unitKind('(a_bytes and on (x) b_seconds) or c_seconds')).toBe('bytes');
  });
});

describe('PromQL of the dashboards', () => {
  it('parses: promtool accepts a recording rule for every expression', () => {
    const rules = dashboards.flatMap(({ dashboard }) => queries(dashboard).map((query) => substitute(query.expr, dashboard)));
    const dir = tempDir('vfio-dashboards-');
    try {
      const file = path.join(dir.dir, 'dashboards.rules.yml');
      const records = rules.map((expr, index) => ({ record: `dashboard:expression_${index}:check`, expr }));
      writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboards', rules: records }] }, null, 2));
      const result = spawnSync(findBinary('promtool'), ['check', 'rules', file], { encoding: 'utf8' });
      expect(result.stdout + result.stderr).toContain(`SUCCESS: ${rules.length} rules found`);
      expect(result.status).toBe(0);
    } finally {
      dir.remove();
    }
  });

  it('counts the assigned devices of non-viable IOMMU groups, each once, on both dashboards, and nothing before the rules have run', () => {
    // pve1: group 7 is not viable (03:00.2 stays on igb) and holds two assigned functions, one of them in two VMs'
    // configs; group 8 is viable. pve2: nothing wrong.
    const device = (host: string, address: string, group: string) => ({ series: `vfio_pci_device_info{instance="${host}",job="vfio",pci_address="${address}",iommu_group="${group}"}`, values: '1x5' });
    const assigned = (host: string, vmid: string, address: string) => ({ series: `vfio_vm_pci_device_info{instance="${host}",job="vfio",vmid="${vmid}",pci_address="${address}",slot="hostpci0"}`, values: '1x5' });
    const viable = (host: string, group: string, value: number) => ({ series: `vfio_iommu_group_viable{instance="${host}",job="vfio",iommu_group="${group}"}`, values: `${value}x5` });
    const everyHost = (name: string) => ['pve1', 'pve2'].map((host) => ({ series: `${name}{instance="${host}",job="vfio"}`, values: '1x5' }));
    const inputSeries = [
      device('pve1', '0000:03:00.0', '7'), device('pve1', '0000:03:00.1', '7'), device('pve1', '0000:03:00.2', '7'), device('pve1', '0000:04:00.0', '8'),
      assigned('pve1', '100', '0000:03:00.0'), assigned('pve1', '100', '0000:03:00.1'), assigned('pve1', '101', '0000:03:00.1'), assigned('pve1', '102', '0000:04:00.0'),
      viable('pve1', '7', 0), viable('pve1', '8', 1),
      device('pve2', '0000:03:00.0', '7'), assigned('pve2', '100', '0000:03:00.0'), viable('pve2', '7', 1),
      ...everyHost('vfio_exporter_build_info'), ...everyHost('vfio_iommu_enabled'),
    ];
    const expected = [{ labels: '{instance="pve1"}', value: 2 }, { labels: '{instance="pve2"}', value: 0 }];
    const panels = [
      { uid: 'vfio-fleet', title: 'Assigned devices in non-viable IOMMU groups, per host' },
      { uid: 'vfio-overview', title: 'Assigned devices in non-viable IOMMU groups' },
    ];
    // Without the rules' vfio:pci_device_passthrough_info (not loaded, or not evaluated yet) the panels know nothing,
    // and show no value rather than a 0 that reads as healthy.
    const unitTest = (ruleFiles: string[], samples: typeof expected) => ({
      rule_files: ruleFiles,
      tests: [{
        interval: '1m',
        input_series: inputSeries,
        promql_expr_test: panels.map(({ uid, title }) => {
          const dashboard = dashboardByUid(uid);
          return { expr: substitute(panelNamed(dashboard, title).targets![0]!.expr!, dashboard), eval_time: '2m', exp_samples: samples };
        }),
      }],
    });
    expect(promtoolTestRules(JSON.stringify(unitTest([rulesFile], expected))).output).toContain('SUCCESS');
    expect(promtoolTestRules(JSON.stringify(unitTest([], []))).output).toContain('SUCCESS');
  });

  it('substitutes variables the way Grafana does and rejects unknown ones', () => {
    const overview = dashboards.find(({ dashboard }) => dashboard.uid === 'vfio-overview')!.dashboard;
    expect(substitute('rate(x{instance=~"$instance", vmid=~"${vmid}"}[$__rate_interval])', overview)).toBe('rate(x{instance=~".*", vmid=~".*"}[1m])');
    expect(() => substitute('x{job="$nosuch"}', overview)).toThrow(/nosuch/);
  });
});

describe('provisioning', () => {
  const provider = parseYaml(readFileSync(path.join(grafanaDir, 'provisioning/dashboards/vfio.yml'), 'utf8')) as {
    apiVersion: number;
    providers: { type: string; folder: string; options: { path: string } }[];
  };
  const datasources = parseYaml(readFileSync(path.join(grafanaDir, 'provisioning/datasources/prometheus.yml'), 'utf8')) as {
    apiVersion: number;
    datasources: { type: string; uid: string; url: string }[];
  };

  it('loads the dashboards from a directory into a folder', () => {
    expect(provider.apiVersion).toBe(1);
    expect(provider.providers[0]).toMatchObject({ type: 'file', folder: expect.stringMatching(/\S/), options: { path: expect.stringMatching(/^\//) } });
  });

  it('offers an example Prometheus datasource whose uid no dashboard depends on', () => {
    const [datasource] = datasources.datasources;
    expect(datasource).toMatchObject({ type: 'prometheus', uid: expect.stringMatching(/\S/), url: expect.stringMatching(/^http/) });
    for (const { file } of dashboards) expect(readFileSync(path.join(grafanaDir, file), 'utf8'), file).not.toContain(datasource!.uid);
  });
});

describe('README', () => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Dashboards\n');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));

  it('lists every panel of every dashboard, in bold, in its Dashboards section', () => {
    expect(start).toBeGreaterThan(0);
    const titles = dashboards.flatMap(({ dashboard }) => queryPanels(dashboard).map((panel) => panel.title));
    expect(titles.filter((title) => !section.includes(`**${title}**`))).toEqual([]);
  });
});

// ---- Against a real Prometheus scraping the exporter on the seed host, and on a second host ----

const job = 'vfio';
const allQueries = dashboards.flatMap(({ file, dashboard }) => queries(dashboard).map((query) => [`${file} › ${query.where}`, { ...query, dashboard }] as const));
const tables = dashboards.flatMap(({ file, dashboard }) =>
  queryPanels(dashboard)
    .filter((panel) => panel.type === 'table')
    .map((panel) => [`${file} › ${panel.title}`, { panel, dashboard }] as const),
);
const dashboardByUid = (uid: string): Dashboard => dashboards.find(({ dashboard }) => dashboard.uid === uid)!.dashboard;
const panelNamed = (dashboard: Dashboard, title: string): Panel => queryPanels(dashboard).find((panel) => panel.title === title)!;

describe('through a real Prometheus scraping the seed host (suprox) and the same host after its fix (suprox-fixed)', () => {
  const hosts: Partial<Record<'seed' | 'fixed', LabHost>> = {};
  let lab: DashboardLab | undefined;
  let prometheus: RunningPrometheus | undefined;
  const onSeed = (): Record<string, string> => ({ instance: regexValue(hosts.seed!.instance) });

  /** One table query's result at `time`, framed as Grafana does: one row per series, every label a column. */
  async function frame(panel: Panel, target: Target, dashboard: Dashboard, time: number): Promise<Row[]> {
    const samples: Sample[] = await prometheus!.samples(substitute(target.expr ?? '', dashboard), time);
    const labels = new Set(samples.flatMap((sample) => Object.keys(sample.metric)));
    return samples.map((sample) => ({
      ...Object.fromEntries([...labels].map((label) => [label, sample.metric[label] ?? ''])),
      Time: String(sample.value[0]),
      [valueColumn(panel, target)]: sample.value[1],
    }));
  }

  /** A table's queries over every host, all evaluated at one instant as Grafana does, then merged. */
  async function tableFrames(panel: Panel, dashboard: Dashboard): Promise<{ frames: Row[][]; rows: Row[] }> {
    const time = Date.now() / 1000;
    const frames = await Promise.all((panel.targets ?? []).map((target) => frame(panel, target, dashboard, time)));
    return { frames, rows: mergeTables(frames) };
  }

  const valueOn = (samples: Sample[], host: LabHost, labels: Record<string, string> = {}): number =>
    Number(samples.find((sample) => sample.metric['instance'] === host.instance && Object.entries(labels).every(([name, value]) => sample.metric[name] === value))?.value[1]);

  beforeAll(async () => {
    lab = await startDashboardLab({ hosts: ['suprox', 'suprox-fixed'], job, ruleFiles: [rulesFile] });
    hosts.seed = lab.hosts['suprox'];
    hosts.fixed = lab.hosts['suprox-fixed'];
    prometheus = lab.prometheus;
  }, 60_000);

  afterAll(async () => {
    await lab?.close();
  });

  it.each(allQueries)('%s returns data on the seed host', async (_name, { expr, label, dashboard }) => {
    const samples = await prometheus!.samples(substitute(unfiltered(expr), dashboard, onSeed()));
    expect(samples, 'empty result: this panel shows "No data" on the seed host').not.toEqual([]);
    if (label) expect(samples.filter((sample) => (sample.metric[label] ?? '') !== '')).not.toEqual([]);
  });

  it.each(tables)('table %s joins its queries into one row per host and entity, and shows only columns that exist', async (_name, { panel, dashboard }) => {
    const { frames, rows } = await tableFrames(panel, dashboard);
    const fields = new Set(rows.flatMap((row) => Object.keys(row)));
    const organize = organizeOf(panel)!;
    const placed = Object.keys(organize.indexByName);
    expect([...fields].filter((field) => !placed.includes(field) && !organize.excludeByName[field]), 'columns neither placed nor hidden').toEqual([]);
    expect(placed.filter((field) => !fields.has(field)), 'placed columns no query returns').toEqual([]);
    expect(rows.length, 'rows that failed to join').toBe(Math.max(...frames.map((rowsOfOne) => rowsOfOne.length)));
  });

  it('shows the seed SATA controller on vfio-pci, assigned to VM 101, ready for VFIO; unassigned devices are not highlighted', async () => {
    const { rows } = await tableFrames(panelNamed(dashboardByUid('vfio-overview'), 'PCI devices'), dashboardByUid('vfio-overview'));
    const seedRows = rows.filter((row) => row['instance'] === hosts.seed!.instance);
    expect(seedRows).toHaveLength(27);
    expect(seedRows.find((row) => row['pci_address'] === '0000:00:17.0')).toMatchObject({ driver: 'vfio-pci', vmid: '101', name: 'truenas', 'Value #C': '1', 'Value #E': '1' });
    expect(seedRows.find((row) => row['pci_address'] === '0000:07:00.0')).toMatchObject({ driver: 'nvme', 'Value #E': '0' });
  });

  it('shows the seed VM 101 in red in the start headroom bar gauge, and not the fixed host, where it runs', async () => {
    const overview = dashboardByUid('vfio-overview');
    const panel = panelNamed(overview, 'Start headroom of stopped passthrough VMs');
    const samples = await prometheus!.samples(substitute(panel.targets![0]!.expr!, overview));
    const vm101 = valueOn(samples, hosts.seed!, { vmid: '101' });
    expect(vm101).toBeLessThan(0);
    const steps = (panel.fieldConfig?.defaults as { thresholds: { steps: { color: string; value: number | null }[] } }).thresholds.steps;
    expect(steps.filter((step) => step.value === null || vm101 >= step.value).at(-1)?.color).toBe('red');
    expect(samples.filter((sample) => sample.metric['instance'] === hosts.fixed!.instance)).toEqual([]);
  });

  it('stacks what the running passthrough VM pins: nothing on the seed host, the locked 12 GiB of VM 101 on the fixed one', async () => {
    const overview = dashboardByUid('vfio-overview');
    const [pinned] = panelNamed(overview, 'Where the host memory goes').targets!;
    const samples = await prometheus!.samples(substitute(pinned!.expr!, overview));
    expect(valueOn(samples, hosts.seed!)).toBe(0);
    expect(valueOn(samples, hosts.fixed!)).toBe(12885426176);
  });

  it('counts one host and one VM that cannot start across the fleet, the seed VM 101 first', async () => {
    const fleet = dashboardByUid('vfio-fleet');
    const value = async (title: string): Promise<number> =>
      Number((await prometheus!.samples(substitute(panelNamed(fleet, title).targets![0]!.expr!, fleet)))[0]?.value[1]);
    expect(await value('Hosts with a passthrough VM that cannot start')).toBe(1);
    expect(await value('Stopped passthrough VMs that cannot start')).toBe(1);
    const [first] = await prometheus!.samples(substitute(panelNamed(fleet, 'Stopped passthrough VMs, least headroom first').targets![0]!.expr!, fleet));
    expect(first?.metric).toMatchObject({ instance: hosts.seed!.instance, vmid: '101', name: 'truenas' });
  });
});
