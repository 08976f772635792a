import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';

/** Shared by the alerts of one name and several severities: the first declares `anchor`, the others name it. */
export interface Annotations {
  anchor?: string;
  summary: string;
  /** Folded into one line by YAML (`>-`): the line breaks written here are for reading only. */
  description: string;
}

export interface RecordingRule {
  /** Comment lines written above the rule. */
  comment?: string;
  record: string;
  expr: string;
}

export interface AlertingRule {
  comment?: string;
  alert: string;
  /** Comment lines written between `alert:` and `expr:`. */
  exprComment?: string;
  expr: string;
  for?: string;
  severity: 'warning' | 'critical';
  /** The annotations, or the anchor of an earlier rule's. The runbook_url follows from the alert name. */
  annotations: Annotations | string;
}

export type Rule = RecordingRule | AlertingRule;

/** A `# --- title ---` line that opens a part of a group. */
export interface Section {
  section: string;
}

export interface RuleGroup {
  name: string;
  /** The group's own evaluation interval (`2m30s`); without one, Prometheus' global evaluation_interval. */
  interval?: string;
  comment?: string;
  rules: (Rule | Section)[];
}

export const section = (title: string): Section => ({ section: title });

/** A template literal as written: no escapes processed, so PromQL and Go templates read exactly as in the YAML. */
export const raw = String.raw;

/** Text of a multi-line template literal without its opening newline and the indentation of the source around it. */
export function dedent(text: string): string {
  if (!text.startsWith('\n')) return text;
  const lines = text.slice(1).split('\n');
  const indent = Math.min(...lines.filter((line) => line.trim() !== '').map((line) => /^ */.exec(line)![0].length));
  return lines.map((line) => line.slice(indent)).join('\n');
}

const runbookUrl = (alert: string): string =>
  `{{ with query "vfio:config_runbook_base_info" }}{{ . | first | label "url" }}{{ end }}#${alert.toLowerCase()}`;

const isSection = (item: Rule | Section): item is Section => 'section' in item;
const isAlert = (rule: Rule): rule is AlertingRule => 'alert' in rule;

/** A scalar as YAML reads it back unchanged: plain where that is safe, else single-quoted. */
function scalar(text: string): string {
  const plain = (parse(`k: ${text}`) as { k?: unknown } | null)?.k;
  return plain === text ? text : quoted(text);
}

const quoted = (text: string): string => `'${text.replace(/'/g, "''")}'`;

const commentLines = (text: string | undefined, indent: string): string[] =>
  text === undefined ? [] : dedent(text).split('\n').map((line) => (line === '' ? `${indent}#` : `${indent}# ${line}`));

/** What Prometheus reads from the rules: the check that the text says exactly this. */
function ruleValues(groups: RuleGroup[]): unknown {
  const annotationsOf = (rule: AlertingRule, all: AlertingRule[]): Annotations => {
    if (typeof rule.annotations !== 'string') return rule.annotations;
    const anchor = rule.annotations;
    const owner = all.find((other) => typeof other.annotations !== 'string' && other.annotations.anchor === anchor);
    if (!owner) throw new Error(`${rule.alert}: no rule declares the annotations anchor ${anchor}`);
    return owner.annotations as Annotations;
  };
  const alerts = groups.flatMap((group) => group.rules.filter((item): item is AlertingRule => !isSection(item) && isAlert(item)));
  const exprValue = (expr: string): string => (dedent(expr).includes('\n') ? `${dedent(expr)}\n` : expr);
  return {
    groups: groups.map((group) => ({
      name: group.name,
      ...(group.interval === undefined ? {} : { interval: group.interval }),
      rules: group.rules
        .filter((item): item is Rule => !isSection(item))
        .map((rule) => {
          if (!isAlert(rule)) return { record: rule.record, expr: exprValue(rule.expr) };
          const annotations = annotationsOf(rule, alerts);
          return {
            alert: rule.alert,
            expr: exprValue(rule.expr),
            ...(rule.for === undefined ? {} : { for: rule.for }),
            labels: { severity: rule.severity },
            annotations: {
              summary: annotations.summary,
              description: dedent(annotations.description).split('\n').join(' '),
              runbook_url: runbookUrl(rule.alert),
            },
          };
        }),
    })),
  };
}

/** Width of a `# --- section ---` line, indentation included. */
const sectionWidth = 100;

/**
 * The rule file: `header` (comment lines), then the groups. A blank line separates groups, sections and,
 * in groups with alerts, rules of different names. Throws if the text would not read back as the rules.
 */
export function renderRules(header: string, groups: RuleGroup[]): string {
  const values = ruleValues(groups);
  const out = [...commentLines(header, ''), '', 'groups:'];
  groups.forEach((group, groupIndex) => {
    if (groupIndex > 0) out.push('');
    out.push(...commentLines(group.comment, '  '), `  - name: ${group.name}`);
    if (group.interval !== undefined) out.push(`    interval: ${group.interval}`);
    out.push('    rules:');
    const spaced = group.rules.some((item) => !isSection(item) && isAlert(item));
    let previous: Rule | Section | undefined;
    for (const item of group.rules) {
      if (isSection(item)) {
        if (previous) out.push('');
        const title = `      # --- ${item.section} `;
        out.push(title.padEnd(sectionWidth, '-'));
        previous = item;
        continue;
      }
      const sameAlert = previous && !isSection(previous) && isAlert(previous) && isAlert(item) && previous.alert === item.alert;
      if (spaced && previous && !isSection(previous) && !sameAlert) out.push('');
      out.push(...commentLines(item.comment, '      '));
      if (isAlert(item)) out.push(`      - alert: ${item.alert}`, ...commentLines(item.exprComment, '        '));
      else out.push(`      - record: ${item.record}`);
      const expr = dedent(item.expr);
      if (expr.includes('\n')) out.push('        expr: |', ...expr.split('\n').map((line) => (line === '' ? '' : `          ${line}`)));
      else out.push(`        expr: ${scalar(expr)}`);
      if (isAlert(item)) {
        if (item.for !== undefined) out.push(`        for: ${item.for}`);
        out.push('        labels:', `          severity: ${item.severity}`);
        if (typeof item.annotations === 'string') {
          out.push(`        annotations: *${item.annotations}`);
        } else {
          const { anchor, summary, description } = item.annotations;
          out.push(
            `        annotations:${anchor === undefined ? '' : ` &${anchor}`}`,
            `          summary: ${quoted(summary)}`,
            '          description: >-',
            ...dedent(description).split('\n').map((line) => `            ${line}`),
            `          runbook_url: ${quoted(runbookUrl(item.alert))}`,
          );
        }
      }
      previous = item;
    }
  });
  const text = out.join('\n') + '\n';
  if (!isDeepStrictEqual(parse(text), values)) throw new Error('the rendered rules do not read back as written: check the quoting of an expression or annotation');
  return text;
}
