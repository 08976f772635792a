import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultMixinConfig, describeSelector, parseMixinConfig } from '../src/mixin/config.js';
import { renderRuleFile } from '../src/mixin/rules.js';
import { tempDir, type TempDir } from './helpers/alerting.js';
import { startDashboardLab, type DashboardLab } from './helpers/dashboard-lab.js';
import { findBinary, repoRoot } from './helpers/fixtures.js';
import { loadDashboards, queries, substitute, unfiltered, type DashboardFile } from './helpers/grafana.js';
import type { RunningPrometheus } from './helpers/prometheus.js';
import { unitTestDir, unitTestFiles, unitTests, type Rule, type UnitTest } from './helpers/rules.js';

/** A fleet that names its job differently, keeps more memory for its hosts and tells hosts apart by cluster and node. */
const settings = `
exporter_selector: job="pve-hosts"
fleet_labels: [cluster, node]
host_reserve: 2GiB
runbook_base_url: https://wiki.example.com/vfio/runbooks
`;
const tailored = parseMixinConfig(settings);
const fleetLabels = { cluster: 'eu-1', node: 'pve7' };
const job = 'pve-hosts';

let out: TempDir;
let rulesFile: string;
let dashboards: DashboardFile[];

beforeAll(() => {
  out = tempDir('vfio-mixin-');
  const configFile = path.join(out.dir, 'mixin.yml');
  writeFileSync(configFile, settings);
  const result = spawnSync(path.join(repoRoot, 'node_modules/.bin/tsx'), [path.join(repoRoot, 'src/main.ts'), 'mixin', '--config', configFile, '--out', out.dir], { encoding: 'utf8', timeout: 30_000 });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  rulesFile = path.join(out.dir, 'alerts/vfio.rules.yml');
  dashboards = loadDashboards(path.join(out.dir, 'grafana'));
});

afterAll(() => out.remove());

const run = (args: string[]) => spawnSync(findBinary('promtool'), args, { encoding: 'utf8' });
const rulesOf = (): Rule[] => (parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((group) => group.rules);

describe('rules tailored to job="pve-hosts", a 2 GiB reserve and cluster/node labels', () => {
  it('pass promtool check rules', () => {
    const result = run(['check', 'rules', rulesFile]);
    expect(result.stdout + result.stderr).toMatch(/SUCCESS: \d+ rules found/);
    expect(result.status).toBe(0);
  });

  it('select the exporters by the job, keep the fleet labels in every aggregation and record the reserve', () => {
    const byExpr = (name: string): string => rulesOf().find((rule) => (rule.alert ?? rule.record) === name)!.expr;
    expect(byExpr('VfioExporterDown')).toBe('up{job="pve-hosts"} == 0');
    expect(byExpr('VfioExporterAbsent')).toBe('absent(up{job="pve-hosts"})');
    expect(byExpr('vfio:config_host_reserve_bytes')).toBe('vector(2147483648)');
    const aggregations = rulesOf().flatMap((rule) => [...rule.expr.matchAll(/\b(?:by|on) \(([^)]*)\)/g)].map((match) => match[1]!));
    expect(aggregations.length).toBeGreaterThan(40);
    expect(aggregations.filter((labels) => !labels.startsWith('cluster, node, instance, job'))).toEqual([]);
  });

  /**
   * The default unit tests, rewritten for the tailored rules: the exporter's series in job pve-hosts with
   * the fleet labels, expected alerts and samples with them too. The reserve stays the default's, which
   * the expected values are computed with (the 2 GiB reserve is checked in Prometheus below).
   * pve-exporter-join.yml checks a query of the README, not the rules.
   */
  const rewritten = unitTestFiles().filter((file) => file !== 'pve-exporter-join.yml');

  it.each(rewritten)('pass the promtool unit tests of %s rewritten for the job and the fleet labels', (file) => {
    const sameReserve = path.join(out.dir, 'default-reserve.rules.yml');
    writeFileSync(sameReserve, renderRuleFile({ ...tailored, hostReserveBytes: defaultMixinConfig.hostReserveBytes }));
    const absentLabels = new Set(rulesOf().filter((rule) => rule.alert && rule.expr.startsWith('absent(')).map((rule) => rule.alert!));
    // As Prometheus does with a target label the exporter also sets (vfio_vm_info's node, the Proxmox node): the target's wins, the exporter's becomes exported_node.
    const clashing = new RegExp(`\\b(${Object.keys(fleetLabels).join('|')})="`, 'g');
    const inJob = (selector: string): string =>
      selector.includes('job="vfio"')
        ? selector.replace(clashing, 'exported_$1="').replaceAll('job="vfio"', `job="${job}",cluster="${fleetLabels.cluster}",node="${fleetLabels.node}"`)
        : selector;
    const sampleLabels = (labels: string): string => inJob(labels).replaceAll(`url="${defaultMixinConfig.runbookBaseUrl}"`, `url="${tailored.runbookBaseUrl}"`);
    const annotation = (text: string): string =>
      text
        .replaceAll(describeSelector(defaultMixinConfig.exporterSelector), describeSelector(tailored.exporterSelector))
        .replaceAll('(job vfio)', `(job ${job})`)
        .replaceAll(`${defaultMixinConfig.runbookBaseUrl}#`, `${tailored.runbookBaseUrl}#`);
    const document = parse(readFileSync(path.join(unitTestDir, file), 'utf8')) as { rule_files: string[]; tests: (UnitTest & { input_series: { series: string }[] })[] };
    document.rule_files = [sameReserve];
    for (const test of document.tests) {
      for (const series of test.input_series) series.series = inJob(series.series);
      for (const alertTest of test.alert_rule_test ?? []) {
        for (const expected of alertTest.exp_alerts ?? []) {
          const labels = expected.exp_labels ?? {};
          if (labels['job'] === 'vfio') expected.exp_labels = { ...labels, job, ...fleetLabels };
          // absent() gives its selector's equality matchers as labels.
          if (absentLabels.has(alertTest.alertname)) expected.exp_labels = { ...labels, job };
          expected.exp_annotations = Object.fromEntries(Object.entries(expected.exp_annotations ?? {}).map(([name, text]) => [name, annotation(text)]));
        }
      }
      for (const exprTest of test.promql_expr_test ?? []) {
        const withSamples = exprTest as typeof exprTest & { exp_samples?: { labels?: string }[] };
        withSamples.expr = inJob(withSamples.expr);
        for (const sample of withSamples.exp_samples ?? []) if (sample.labels) sample.labels = sampleLabels(sample.labels);
      }
    }
    const testFile = path.join(out.dir, file);
    writeFileSync(testFile, JSON.stringify(document));
    const result = run(['test', 'rules', testFile]);
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.status, result.stdout + result.stderr).toBe(0);
    // The rewrite must have reached the rules: a test of the exporter's own series that kept job="vfio" would pass vacuously.
    expect(readFileSync(testFile, 'utf8')).not.toContain('job=\\"vfio\\"');
    expect(unitTests(file).length).toBe(document.tests.length);
  }, 120_000);
});

describe('tailored dashboards and rules in a real Prometheus scraping the seed host as job pve-hosts of cluster eu-1', () => {
  let lab: DashboardLab | undefined;
  let prometheus: RunningPrometheus | undefined;

  beforeAll(async () => {
    lab = await startDashboardLab({ hosts: ['suprox'], job, targetLabels: fleetLabels, ruleFiles: [rulesFile] });
    prometheus = lab.prometheus;
  }, 60_000);

  afterAll(async () => {
    await lab?.close();
  });

  it('evaluates every rule without error, and the exporter is not missing', async () => {
    expect(await prometheus!.ruleErrors()).toEqual([]);
    expect(await prometheus!.samples('ALERTS{alertname=~"VfioExporterAbsent|VfioExporterDown"}')).toEqual([]);
  });

  it('subtracts the 2 GiB reserve from the headroom, which keeps the fleet labels', async () => {
    const [headroom] = await prometheus!.samples('vfio:host_memory_headroom_bytes');
    expect(headroom?.metric).toMatchObject({ ...fleetLabels, job });
    const [expected] = await prometheus!.samples('vfio_host_memory_available_bytes + vfio:host_zfs_arc_reclaimable_bytes - 2147483648');
    expect(Number(headroom?.value[1])).toBe(Number(expected?.value[1]));
  });

  it('offers cluster and node variables before job and host, each narrowing the next', () => {
    for (const { dashboard } of dashboards) {
      expect(dashboard.templating.list.map((variable) => variable.name).slice(0, 5)).toEqual(['datasource', 'cluster', 'node', 'job', 'instance']);
    }
  });

  it('answers every dashboard query, filtered to the cluster and node of the seed host', async () => {
    const empty: string[] = [];
    for (const { file, dashboard } of dashboards) {
      for (const query of queries(dashboard)) {
        const samples = await prometheus!.samples(substitute(unfiltered(query.expr), dashboard, { cluster: fleetLabels.cluster, node: fleetLabels.node }));
        const answered = query.label ? samples.some((sample) => (sample.metric[query.label!] ?? '') !== '') : samples.length > 0;
        if (!answered) empty.push(`${file} › ${query.where}`);
      }
    }
    expect(empty).toEqual([]);
  });
});
