export type Labels = Record<string, string>;
export type SetSample = (labels: Labels, value: number) => void;

/** Declares metric families for one snapshot; a family with no samples is left out, as node_exporter does. */
export interface MetricSink {
  gauge(name: string, help: string, labelNames?: readonly string[]): SetSample;
  counter(name: string, help: string, labelNames?: readonly string[]): SetSample;
  /**
   * Sets the series `write` sets, for facts held in `key` (one device, one group); what `write` sets must
   * depend on `key` alone. The series are remembered by the key object: a later exposition given the same
   * object (the facts did not change) replays them without formatting a label again.
   */
  group(key: object, write: () => void): void;
}

const metricNamePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelNamePattern = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const needsEscape = /[\\\n"]/;

const escapeHelp = (text: string): string => (needsEscape.test(text) ? text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n') : text);
const escapeLabelValue = (text: string): string =>
  needsEscape.test(text) ? text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : text;

const formatValue = (value: number): string => {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return String(value);
};

/** The text of no families, as prom-client writes it. */
export const emptyExposition = '\n';

interface Series {
  labels: string;
  value: number;
}

interface Family {
  header: string;
  name: string;
  series: Map<string, Series>;
}

interface Declaration {
  type: 'gauge' | 'counter';
  name: string;
  help: string;
  family: Family | undefined;
}

/** One call of a family's SetSample, labels already formatted. */
interface RecordedSeries {
  name: string;
  key: string;
  labels: string;
  value: number;
}

/** Series a group set, by its key object; gone with the facts they came from. */
const recordedGroups = new WeakMap<object, readonly RecordedSeries[]>();

/**
 * Writes the text exposition format (0.0.4) directly, byte for byte as prom-client's registry does:
 * families in the order they got their first sample, `# HELP`/`# TYPE` lines, series in first-set
 * order with labels in the order given, families separated by a blank line. A snapshot of a host with
 * thousands of devices has tens of thousands of series; building them as prom-client metric objects
 * cost more than reading the host.
 */
export function createExposition(): { sink: MetricSink; text(): string } {
  const families: Family[] = [];
  const names = new Set<string>();
  const declarations = new Map<string, Declaration>();
  let recording: RecordedSeries[] | undefined;

  const add = (declaration: Declaration, key: string, labels: string, value: number): void => {
    if (!declaration.family) {
      const { name, help, type } = declaration;
      if (names.has(name)) throw new Error(`metric ${name} declared twice`);
      names.add(name);
      declaration.family = { header: `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}`, name, series: new Map() };
      families.push(declaration.family);
    }
    const { series } = declaration.family;
    const existing = series.get(key);
    if (!existing) series.set(key, { labels, value });
    else if (declaration.type === 'counter') existing.value += value;
    else series.set(key, { labels, value });
    recording?.push({ name: declaration.name, key, labels, value });
  };

  const declare = (type: 'gauge' | 'counter', name: string, help: string, labelNames: readonly string[]): SetSample => {
    if (!metricNamePattern.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    for (const labelName of labelNames) if (!labelNamePattern.test(labelName)) throw new Error(`${name}: invalid label name ${JSON.stringify(labelName)}`);
    const known = new Set(labelNames);
    const declaration: Declaration = { type, name, help, family: undefined };
    declarations.set(name, declaration);
    return (labels, value) => {
      if (type === 'counter' && !(Number.isFinite(value) && value >= 0)) throw new Error(`${name}: a counter cannot be ${value}`);
      const parts: string[] = [];
      let inDeclaredOrder = true;
      for (const labelName in labels) {
        if (!known.has(labelName)) throw new Error(`${name}: label ${JSON.stringify(labelName)} is not declared`);
        inDeclaredOrder &&= labelNames[parts.length] === labelName;
        parts.push(`${labelName}="${escapeLabelValue(labels[labelName]!)}"`);
      }
      const formatted = parts.join(',');
      // One series per label set, whatever order its labels were given in: the key lists them in declared order.
      const key = inDeclaredOrder
        ? formatted
        : labelNames
            .filter((labelName) => labelName in labels)
            .map((labelName) => `${labelName}="${escapeLabelValue(labels[labelName]!)}"`)
            .join(',');
      add(declaration, key, formatted, value);
    };
  };

  const group = (groupKey: object, write: () => void): void => {
    if (recording) throw new Error('metric groups do not nest');
    const recorded = recordedGroups.get(groupKey);
    if (recorded) {
      for (const { name, key, labels, value } of recorded) {
        const declaration = declarations.get(name);
        if (!declaration) throw new Error(`metric ${name} is not declared`);
        add(declaration, key, labels, value);
      }
      return;
    }
    const series: RecordedSeries[] = [];
    recording = series;
    try {
      write();
    } finally {
      recording = undefined;
    }
    recordedGroups.set(groupKey, series);
  };

  return {
    sink: {
      gauge: (name, help, labelNames = []) => declare('gauge', name, help, labelNames),
      counter: (name, help, labelNames = []) => declare('counter', name, help, labelNames),
      group,
    },
    text() {
      const lines: string[] = [];
      for (const family of families) {
        if (lines.length > 0) lines.push('');
        lines.push(family.header);
        for (const { labels, value } of family.series.values()) lines.push(`${family.name}${labels === '' ? '' : `{${labels}}`} ${formatValue(value)}`);
      }
      if (lines.length === 0) return emptyExposition;
      lines.push('');
      return lines.join('\n');
    },
  };
}
