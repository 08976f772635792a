import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The parts of Grafana's dashboard JSON model the tests read; everything else passes through untyped. */
export interface DatasourceRef {
  type?: string;
  uid?: string;
}

export interface Target {
  refId: string;
  expr?: string;
  datasource?: DatasourceRef;
  format?: string;
  /** Grafana asks for the value at the end of the range only (`/api/v1/query`), not a range. */
  instant?: boolean;
}

export interface FieldOverride {
  matcher: { id: string; options: unknown };
  properties: { id: string; value: unknown }[];
}

export interface Transformation {
  id: string;
  options: Record<string, unknown>;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: Record<'x' | 'y' | 'w' | 'h', unknown>;
  datasource?: DatasourceRef;
  targets?: Target[];
  panels?: Panel[];
  collapsed?: boolean;
  repeat?: string;
  fieldConfig?: { defaults: { unit?: string }; overrides: FieldOverride[] };
  transformations?: Transformation[];
}

export interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
  datasource?: DatasourceRef;
  multi?: boolean;
  includeAll?: boolean;
}

export interface Annotation {
  name: string;
  expr?: string;
  datasource?: DatasourceRef;
}

export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: Annotation[] };
}

export interface DashboardFile {
  file: string;
  dashboard: Dashboard;
}

export const loadDashboards = (dir: string): DashboardFile[] =>
  readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Dashboard }));

/** Every panel, rows included, with the panels a collapsed row keeps inside it. */
export const allPanels = (dashboard: Dashboard): Panel[] =>
  dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);

/** Panels that query: everything but rows. */
export const queryPanels = (dashboard: Dashboard): Panel[] => allPanels(dashboard).filter((panel) => panel.type !== 'row');

export interface Query {
  /** Where the expression lives, for test names: `Panel title › A`, `annotation …`, `variable …`. */
  where: string;
  /** PromQL as written in the dashboard, Grafana variables and all. */
  expr: string;
  /** For a `label_values(selector, label)` variable: the label its values come from. */
  label?: string;
  panel?: Panel;
  target?: Target;
}

const labelValues = /^label_values\((.+),\s*(\w+)\)$/s;

/** Every PromQL expression of a dashboard: panel targets, annotations and `label_values` variable queries. */
export function queries(dashboard: Dashboard): Query[] {
  const fromPanels = queryPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ where: `${panel.title} › ${target.refId}`, expr: target.expr ?? '', panel, target })),
  );
  const fromAnnotations = dashboard.annotations.list.map((annotation) => ({ where: `annotation ${annotation.name}`, expr: annotation.expr ?? '' }));
  const fromVariables = dashboard.templating.list
    .filter((variable) => variable.type === 'query')
    .map((variable) => {
      const text = typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
      const match = labelValues.exec(text.trim());
      if (!match) throw new Error(`variable ${variable.name}: not a label_values(selector, label) query: ${text}`);
      return { where: `variable ${variable.name}`, expr: match[1]!, label: match[2]! };
    });
  return [...fromPanels, ...fromAnnotations, ...fromVariables];
}

/** A variable value as Grafana writes it into a regex matcher: regex characters escaped, for a PromQL string. */
export const regexValue = (value: string): string => value.replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&');

/**
 * The expression as Grafana sends it: built-in intervals replaced by what a 1m-step, 1h-range view
 * gives; a multi-value variable by `selected` (already a regex) or else the `.*` of "All".
 * Throws on a variable it does not know.
 */
export function substitute(expr: string, dashboard: Dashboard, selected: Record<string, string> = {}): string {
  const builtIns: Record<string, string> = { __rate_interval: '1m', __interval: '1m', __range: '1h' };
  return expr.replace(/\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, braced?: string, bare?: string, bracketed?: string) => {
    const name = braced ?? bare ?? bracketed ?? '';
    const builtIn = builtIns[name];
    if (builtIn !== undefined) return builtIn;
    const variable = dashboard.templating.list.find((candidate) => candidate.name === name);
    if (variable?.multi) return selected[name] ?? '.*';
    throw new Error(`${whole}: not a built-in interval nor a multi-value variable of ${dashboard.uid}`);
  });
}

/**
 * A fleet panel that lists only hosts with something to show ends in a filter (`> 0`, `== 0`), which leaves
 * nothing on a quiet host: the expression it filters, which must have data there.
 */
export const unfiltered = (expr: string): string => expr.replace(/ (?:> 0|== 0)$/, '');

/** What Grafana names a target's value column in a table of instant queries: `Value`, or `Value #A` once there are several. */
export const valueColumn = (panel: Panel, target: Target): string =>
  (panel.targets ?? []).length > 1 ? `Value #${target.refId}` : 'Value';

export interface Organize {
  excludeByName: Record<string, boolean>;
  indexByName: Record<string, number>;
  renameByName: Record<string, string>;
}

export const organizeOf = (panel: Panel): Organize | undefined =>
  panel.transformations?.find((transformation) => transformation.id === 'organize')?.options as Organize | undefined;

const overrideUnit = (panel: Panel, matches: (override: FieldOverride) => boolean): string | undefined =>
  panel.fieldConfig?.overrides
    .filter(matches)
    .flatMap((override) => override.properties)
    .find((property) => property.id === 'unit')?.value as string | undefined;

/**
 * The unit a target's values are shown in, or `hidden` when a table drops its value column.
 * Tables: the (renamed) value column's override; other panels: a per-query override; else the panel default.
 */
export function unitOf(panel: Panel, target: Target): string | undefined {
  if (panel.type === 'table') {
    const organize = organizeOf(panel);
    const column = valueColumn(panel, target);
    if (organize?.excludeByName[column]) return 'hidden';
    const shown = organize?.renameByName[column] ?? column;
    const unit = overrideUnit(panel, ({ matcher }) => matcher.id === 'byName' && matcher.options === shown);
    return unit ?? panel.fieldConfig?.defaults.unit;
  }
  const unit = overrideUnit(panel, ({ matcher }) => matcher.id === 'byFrameRefID' && matcher.options === target.refId);
  return unit ?? panel.fieldConfig?.defaults.unit;
}

/** Removes every `name(` … `)` call (with an optional `by (…)` / `without (…)` clause) from a PromQL text. */
function dropCalls(text: string, names: string[]): string {
  const start = new RegExp(`\\b(${names.join('|')})\\s*(?:(?:by|without)\\s*\\([^()]*\\)\\s*)?\\(`, 'g');
  let result = text;
  for (let match = start.exec(result); match; match = start.exec(result)) {
    let depth = 1;
    let end = match.index + match[0].length;
    for (; end < result.length && depth > 0; end++) depth += result[end] === '(' ? 1 : result[end] === ')' ? -1 : 0;
    result = result.slice(0, match.index) + '1' + result.slice(end);
    start.lastIndex = match.index;
  }
  return result;
}

/** Drops the right side of `and` / `unless`: it filters, its values never reach the panel. */
function dropFilters(text: string): string {
  let result = text;
  for (let match = /\b(and|unless)\b/.exec(result); match; match = /\b(and|unless)\b/.exec(result)) {
    let depth = 0;
    let end = match.index;
    for (; end < result.length; end++) {
      if (result[end] === '(') depth++;
      if (result[end] === ')' && --depth < 0) break;
      if (depth === 0 && /^\s+or\b/.test(result.slice(end))) break;
    }
    result = result.slice(0, match.index) + result.slice(end);
  }
  return result;
}

/** The metric names whose values a query shows: not those it only counts (`count`) or filters by (`and`, `unless`). */
export function shownMetrics(expr: string): string[] {
  const text = dropFilters(dropCalls(expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, ''), ['count', 'count_values']));
  return [...text.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((match) => match[0]);
}

/** One row of a table query result as Grafana frames it: the labels, `Time` and the value column. */
export type Row = Record<string, string>;

/**
 * Grafana's merge transformation on instant-query tables: rows whose fields present in every frame
 * agree are one entity, and become one row unless a shared column conflicts.
 */
export function mergeTables(frames: Row[][]): Row[] {
  const nonEmpty = frames.filter((frame) => frame.length > 0);
  const fieldsOf = (frame: Row[]): Set<string> => new Set(frame.flatMap((row) => Object.keys(row)));
  const fieldSets = nonEmpty.map(fieldsOf);
  const keyFields = [...(fieldSets[0] ?? [])].filter((field) => fieldSets.every((fields) => fields.has(field)));
  const rowsByKey = new Map<string, Row[]>();
  for (const row of nonEmpty.flat()) {
    const key = JSON.stringify(keyFields.map((field) => row[field] ?? ''));
    const rows = rowsByKey.get(key) ?? [];
    const mergeable = rows.findIndex((existing) => Object.entries(row).every(([field, value]) => existing[field] === undefined || existing[field] === value));
    if (mergeable >= 0) rows[mergeable] = { ...rows[mergeable], ...row };
    else rows.push(row);
    rowsByKey.set(key, rows);
  }
  return [...rowsByKey.values()].flat();
}
