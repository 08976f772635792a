import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { alertmanagerFile, rulesFile } from './helpers/alerting.js';
import { findBinary, repoRoot } from './helpers/fixtures.js';
import { parseDuration } from '../src/parse/duration.js';
import { alertRules, promtoolTestRules, ruleGroups, rules, unitTestDir, unitTestFileWithLabel, unitTestFiles, unitTests, type ExpectedAlert } from './helpers/rules.js';

const run = (binary: string, args: string[]) => spawnSync(findBinary(binary), args, { encoding: 'utf8', cwd: repoRoot });

/** Every firing expectation in the unit tests, with its alert name. */
const firingExpectations = (): (ExpectedAlert & { alertname: string })[] =>
  unitTestFiles().flatMap((file) =>
    unitTests(file).flatMap((test) =>
      (test.alert_rule_test ?? []).flatMap(({ alertname, exp_alerts }) => (exp_alerts ?? []).map((expected) => ({ alertname, ...expected }))),
    ),
  );

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
const anchorOf = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');

describe('alerts/vfio.rules.yml', () => {
  it('passes promtool check rules with no finding', () => {
    const result = run('promtool', ['check', 'rules', rulesFile]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Checking .*vfio\.rules\.yml\n {2}SUCCESS: \d+ rules found\n\n$/);
    expect(result.status).toBe(0);
  });

  it.each(unitTestFiles())('passes the promtool unit tests in alerts/tests/%s', (file) => {
    const result = run('promtool', ['test', 'rules', path.join(unitTestDir, file)]);
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });

  // Agents add external labels (cluster, node) to every series they send: each rule must keep them, and
  // a join that kept only (instance, job) would leave series that no longer match the ones that did.
  it.each(unitTestFiles())('passes alerts/tests/%s again with an external label on every series', (file) => {
    const result = promtoolTestRules(unitTestFileWithLabel(file, 'cluster', 'dc1'));
    expect(result.status, result.output).toBe(0);
  });

  it('has a firing unit test for every alert and severity, with exact labels and annotations', () => {
    const expectations = firingExpectations();
    for (const expected of expectations) {
      expect(Object.keys(expected.exp_annotations ?? {}).sort(), `annotations of ${expected.alertname}`).toEqual(['description', 'runbook_url', 'summary']);
      expect(expected.exp_labels?.['severity'], `severity of ${expected.alertname}`).toBeDefined();
    }
    const tested = new Set(expectations.map(({ alertname, exp_labels }) => `${alertname}/${exp_labels?.['severity']}`));
    const missing = alertRules()
      .map((rule) => `${rule.alert}/${rule.labels?.['severity']}`)
      .filter((key) => !tested.has(key));
    expect(missing).toEqual([]);
  });

  it('has every alert silent on the healthy host', () => {
    const silent = unitTests('healthy.yml')
      .flatMap((test) => test.alert_rule_test ?? [])
      .filter((test) => (test.exp_alerts ?? []).length === 0)
      .map((test) => test.alertname);
    expect([...new Set(silent)].sort()).toEqual([...new Set(alertRules().map((rule) => rule.alert))].sort());
  });

  it('has every recording rule checked by a unit test', () => {
    const exprs = unitTestFiles().flatMap((file) => unitTests(file).flatMap((test) => (test.promql_expr_test ?? []).map((each) => each.expr)));
    const unchecked = rules()
      .flatMap((rule) => (rule.record ? [rule.record] : []))
      .filter((name) => !exprs.some((expr) => new RegExp(`(?<![\\w:])${name}(?![\\w:])`).test(expr)));
    expect(unchecked).toEqual([]);
  });

  it('gives every alert a severity, a summary, a description and a runbook section', () => {
    const runbook = readFileSync(path.join(repoRoot, 'docs/runbooks.md'), 'utf8');
    const anchors = new Set([...runbook.matchAll(/^#{2,3} (.+)$/gm)].map((match) => anchorOf(match[1]!)));
    for (const rule of alertRules()) {
      expect(['warning', 'critical']).toContain(rule.labels?.['severity']);
      expect(Object.keys(rule.annotations ?? {}).sort()).toEqual(['description', 'runbook_url', 'summary']);
      const anchor = rule.annotations!['runbook_url']!.split('#').pop()!;
      expect(anchor, rule.alert).toBe(rule.alert.toLowerCase());
      expect(anchors.has(anchor), `docs/runbooks.md has no section #${anchor}`).toBe(true);
    }
  });
});

describe('rule groups with their own interval', () => {
  // Groups without one run at Prometheus' global evaluation_interval; the rules are written for 1 minute.
  const intervalOf = (group: { interval?: string }): number => parseDuration(group.interval ?? '1m');

  it('hold each alert for a whole number of evaluations, so it fires when its `for:` is up and not an evaluation later', () => {
    const late = ruleGroups().flatMap((group) =>
      group.rules
        .filter((rule) => rule.alert !== undefined && rule.for !== undefined && parseDuration(rule.for) % intervalOf(group) !== 0)
        .map((rule) => `${group.name}: ${rule.alert} for ${rule.for}`),
    );
    expect(late).toEqual([]);
  });

  // Prometheus looks back 5 minutes for a sample. A group evaluated less often than the reader leaves gaps longer
  // than that; one evaluated every 5 minutes leaves none in the past, but while it evaluates its last sample is
  // already 5 minutes old and its new one not yet written, so another group evaluated then finds nothing, at
  // every evaluation if their offsets fall so.
  const lookback = parseDuration('5m');
  it('read no series another group records every 5 minutes or less often than the reader', () => {
    const groups = ruleGroups();
    const recordedBy = new Map(groups.flatMap((group) => group.rules.flatMap((rule) => (rule.record ? [[rule.record, group] as const] : []))));
    const stale = groups.flatMap((group) =>
      group.rules.flatMap((rule) =>
        [...[rule.expr, ...Object.values(rule.annotations ?? {})].join('\n').matchAll(/vfio:[a-z0-9_]+/g)]
          .map(([name]) => ({ name, source: recordedBy.get(name) }))
          .filter(({ source }) => source !== undefined && source !== group && (intervalOf(source) > intervalOf(group) || intervalOf(source) >= lookback))
          .map(({ name, source }) => `${group.name}: ${rule.alert ?? rule.record} reads ${name} of ${source!.name}`),
      ),
    );
    expect(stale).toEqual([]);
  });
});

describe('alerts/alertmanager.yml', () => {
  it('passes amtool check-config', () => {
    const result = run('amtool', ['check-config', alertmanagerFile]);
    expect(result.stdout).toContain('SUCCESS');
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });

  it('routes every critical alert to the pager and every warning to the ticket queue', () => {
    for (const rule of alertRules()) {
      const severity = rule.labels!['severity']!;
      const receiver = severity === 'critical' ? 'pager' : 'ticket';
      const result = run('amtool', ['config', 'routes', 'test', `--config.file=${alertmanagerFile}`, `--verify.receivers=${receiver}`, `alertname=${rule.alert}`, `severity=${severity}`, 'instance=suprox:9847']);
      expect(result.status, `${rule.alert} (${severity}) → ${result.stdout}`).toBe(0);
    }
  });

  it('inhibits only alerts the rules define, on labels both alerts carry', () => {
    const config = parse(readFileSync(alertmanagerFile, 'utf8')) as {
      inhibit_rules: { source_matchers: string[]; target_matchers: string[]; equal: string[] }[];
    };
    const defined = new Set(alertRules().map((rule) => rule.alert));
    const labelsOf = (alertname: string): Set<string> =>
      new Set(firingExpectations().filter((each) => each.alertname === alertname).flatMap((each) => Object.keys(each.exp_labels ?? {})));
    const namesIn = (matchers: string[]): string[] =>
      matchers.flatMap((matcher) => /^alertname=~?"(.+)"$/.exec(matcher)?.[1]?.split('|') ?? []);
    for (const rule of config.inhibit_rules) {
      const names = [...namesIn(rule.source_matchers), ...namesIn(rule.target_matchers)];
      expect(names.length).toBeGreaterThanOrEqual(2);
      for (const name of names) {
        expect(defined.has(name), `${name} is not an alert of vfio.rules.yml`).toBe(true);
        for (const label of rule.equal) expect(labelsOf(name).has(label), `${name} has no label ${label}`).toBe(true);
      }
    }
  });
});
