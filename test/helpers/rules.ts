import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { findBinary, repoRoot } from './fixtures.js';
import { rulesFile, tempDir } from './alerting.js';

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface ExpectedAlert {
  exp_labels?: Record<string, string>;
  exp_annotations?: Record<string, string>;
}

export interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: ExpectedAlert[];
}

export interface ExprTest {
  expr: string;
  eval_time: string;
  exp_samples?: { labels: string; value: number | string }[];
}

export interface UnitTest {
  name?: string;
  input_series?: { series: string; values: string }[];
  alert_rule_test?: AlertTest[];
  promql_expr_test?: ExprTest[];
}

export const unitTestDir = path.join(repoRoot, 'alerts/tests');

export interface Group {
  name: string;
  interval?: string;
  rules: Rule[];
}

export const ruleGroups = (text = readFileSync(rulesFile, 'utf8')): Group[] => (parse(text) as { groups: Group[] }).groups;

export const rules = (): Rule[] => ruleGroups().flatMap((group) => group.rules);

export const alertRules = (): (Rule & { alert: string })[] => rules().filter((rule): rule is Rule & { alert: string } => rule.alert !== undefined);

export const unitTestFiles = (): string[] => readdirSync(unitTestDir).filter((name) => name.endsWith('.yml')).sort();

export const unitTests = (file: string): UnitTest[] =>
  (parse(readFileSync(path.join(unitTestDir, file), 'utf8')) as { tests: UnitTest[] }).tests;

/** Raw metric names (`vfio_*`) in the rules' expressions and annotation templates; label values such as `"vfio_pin_failed"` are not names. */
export function metricNamesInRules(): string[] {
  const texts = rules().flatMap((rule) => [rule.expr, ...Object.values(rule.annotations ?? {})]);
  const names = texts.flatMap((text) => [...text.matchAll(/(?<![\w:])vfio_[a-z0-9_]+(?![\w:"])/g)].map((match) => match[0]));
  return [...new Set(names)].sort();
}

/** A series selector `name{a="b"}` or `name` with one more label first in its braces. */
const withLabel = (series: string, name: string, value: string): string =>
  series.includes('{') ? series.replace('{', `{${name}=${JSON.stringify(value)},`) : `${series}{${name}=${JSON.stringify(value)}}`;

/**
 * A promtool unit test file as it reads behind a Prometheus agent that adds an external label: `name="value"`
 * on every input series, and so on every alert and every sample of a host's series the test expects. Alerts
 * made by absent() have only the labels its selector names; samples without `instance` are settings or
 * aggregates over every host.
 */
export function unitTestFileWithLabel(file: string, name: string, value: string): string {
  const document = parse(readFileSync(path.join(unitTestDir, file), 'utf8')) as { rule_files: string[]; tests: UnitTest[] };
  document.rule_files = document.rule_files.map((ruleFile) => path.resolve(unitTestDir, ruleFile));
  const fromAbsent = new Set(alertRules().filter((rule) => /^\s*absent\(/.test(rule.expr)).map((rule) => rule.alert));
  // New objects throughout: YAML aliases parse to one object shared by every place that names it.
  const tests = document.tests.map((test) => ({
    ...test,
    input_series: test.input_series?.map((input) => ({ ...input, series: withLabel(input.series, name, value) })),
    alert_rule_test: test.alert_rule_test?.map((alertTest) => ({
      ...alertTest,
      exp_alerts: alertTest.exp_alerts?.map((expected) =>
        fromAbsent.has(alertTest.alertname) ? expected : { ...expected, exp_labels: { ...expected.exp_labels, [name]: value } },
      ),
    })),
    promql_expr_test: test.promql_expr_test?.map((exprTest) => ({
      ...exprTest,
      exp_samples: exprTest.exp_samples?.map((sample) => (sample.labels.includes('instance=') ? { ...sample, labels: withLabel(sample.labels, name, value) } : sample)),
    })),
  }));
  return stringify({ ...document, tests }, { lineWidth: 0, aliasDuplicateObjects: false });
}

/**
 * `promtool test rules` on a unit test file's text, written to a temporary directory (its `rule_files` must be
 * absolute): what promtool printed, and its exit status.
 */
export function promtoolTestRules(text: string): { output: string; status: number | null } {
  const dir = tempDir('vfio-unit-test-');
  try {
    const file = path.join(dir.dir, 'unit-test.yml');
    writeFileSync(file, text);
    const result = spawnSync(findBinary('promtool'), ['test', 'rules', file], { encoding: 'utf8' });
    return { output: result.stdout + result.stderr, status: result.status };
  } finally {
    dir.remove();
  }
}
