export type Labels = Record<string, string>;
export type SetSample = (labels: Labels, value: number) => void;

/** Declares metric families for one snapshot; a family with no samples is left out, as node_exporter does. */
export interface MetricSink {
  gauge(name: string, help: string, labelNames?: readonly string[]): SetSample;
  counter(name: string, help: string, labelNames?: readonly string[]): SetSample;
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

  const declare = (type: 'gauge' | 'counter', name: string, help: string, labelNames: readonly string[]): SetSample => {
    if (!metricNamePattern.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    for (const labelName of labelNames) if (!labelNamePattern.test(labelName)) throw new Error(`${name}: invalid label name ${JSON.stringify(labelName)}`);
    const known = new Set(labelNames);
    let family: Family | undefined;
    return (labels, value) => {
      if (type === 'counter' && !(Number.isFinite(value) && value >= 0)) throw new Error(`${name}: a counter cannot be ${value}`);
      if (!family) {
        if (names.has(name)) throw new Error(`metric ${name} declared twice`);
        names.add(name);
        family = { header: `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}`, name, series: new Map() };
        families.push(family);
      }
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
      const existing = family.series.get(key);
      if (!existing) family.series.set(key, { labels: formatted, value });
      else if (type === 'counter') existing.value += value;
      else family.series.set(key, { labels: formatted, value });
    };
  };

  return {
    sink: {
      gauge: (name, help, labelNames = []) => declare('gauge', name, help, labelNames),
      counter: (name, help, labelNames = []) => declare('counter', name, help, labelNames),
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
