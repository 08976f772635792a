import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from './fixtures.js';
import { rulesFile } from './alerting.js';

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
}

export interface UnitTest {
  name?: string;
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
