/** One line of the results: a target with its measurement, or (no target) a figure for context. */
export interface Row {
  metric: string;
  target: string;
  measured: string;
  /** measured / target, in the target's unit; undefined for context rows. */
  ratio: number | undefined;
  pass: boolean | undefined;
}

/** Below a maximum: `measured <= limit`. */
export const atMost = (metric: string, measured: number, limit: number, format: (value: number) => string): Row => ({
  metric,
  target: `< ${format(limit)}`,
  measured: format(measured),
  ratio: measured / limit,
  pass: measured < limit,
});

/** At least a minimum. */
export const atLeast = (metric: string, measured: number, minimum: number, format: (value: number) => string): Row => ({
  metric,
  target: `≥ ${format(minimum)}`,
  measured: format(measured),
  ratio: measured / minimum,
  pass: measured >= minimum,
});

export const context = (metric: string, measured: string): Row => ({ metric, target: '', measured, ratio: undefined, pass: undefined });

export const skipped = (metric: string, target: string, reason: string): Row => ({ metric, target, measured: `skipped: ${reason}`, ratio: undefined, pass: undefined });

export const ms = (value: number): string => `${value.toFixed(value < 10 ? 2 : 1)} ms`;
export const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;
export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
export const percent = (value: number): string => `${value.toFixed(3)} %`;
export const perSecond = (value: number): string => `${Math.round(value).toLocaleString('en-US')}/s`;

/** A Markdown table, so a run pastes straight into docs/performance.md. */
export function formatTable(rows: readonly Row[]): string {
  const cells = rows.map((row) => [
    row.metric,
    row.target,
    row.measured,
    row.ratio === undefined ? '' : row.ratio.toFixed(2),
    row.pass === undefined ? '' : row.pass ? 'pass' : '**FAIL**',
  ]);
  const header = ['metric', 'target', 'measured', 'ratio', 'result'];
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((cell) => cell[column]!.length)));
  const line = (cell: string[]): string => `| ${cell.map((text, column) => text.padEnd(widths[column]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}
