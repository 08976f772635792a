import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as gauge from '@grafana/grafana-foundation-sdk/gauge';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

/**
 * Compact declarations of the dashboards' panels, built with Grafana's Foundation SDK so the JSON is typed.
 * What every panel of a kind shares lives here; a panel declares only what is its own.
 */

/** Every query goes through the dashboard's `${datasource}` variable: no datasource uid is hard-coded. */
export const datasource: dashboard.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

export interface Query {
  expr: string;
  legend?: string;
}

export const q = (expr: string, legend?: string): Query => ({ expr, legend });

/** x, y, width, height on the 24-column grid. */
export type Position = [number, number, number, number];

interface Common {
  id: number;
  title: string;
  description: string;
  pos: Position;
  targets: Query[];
}

/** Threshold steps as Grafana's editor shows them: a base color, then each boundary and the color from it on. */
export type Steps = [string, ...(string | number)[]];

export function thresholds(...steps: Steps): dashboard.ThresholdsConfig {
  const result: dashboard.Threshold[] = [{ color: steps[0], value: null }];
  for (let index = 1; index + 1 < steps.length; index += 2) result.push({ value: steps[index] as number, color: steps[index + 1] as string });
  return { mode: dashboard.ThresholdsMode.Absolute, steps: result };
}

const thresholdsBuilder = (config: dashboard.ThresholdsConfig): dashboard.ThresholdsConfigBuilder =>
  new dashboard.ThresholdsConfigBuilder().mode(config.mode).steps(config.steps);

/** A value → text and color mapping, e.g. `valueMap(['0', 'DOWN', 'red'], ['1', 'up', 'green'])`. */
export const valueMap = (...entries: [value: string, text: string, color: string][]): dashboard.ValueMapping => ({
  type: dashboard.MappingType.ValueToText,
  options: Object.fromEntries(entries.map(([value, text, color], index) => [value, { text, color, index }])),
});

type Properties = Record<string, unknown>;
const properties = (values: Properties): dashboard.DynamicConfigValue[] => Object.entries(values).map(([id, value]) => ({ id, value }));

export interface Override {
  matcher: dashboard.MatcherConfig;
  properties: dashboard.DynamicConfigValue[];
}

/** Field settings for the column (or series) of this display name. */
export const byName = (name: string, values: Properties): Override => ({ matcher: { id: 'byName', options: name }, properties: properties(values) });
/** Field settings for the series of one query. */
export const byQuery = (refId: string, values: Properties): Override => ({ matcher: { id: 'byFrameRefID', options: refId }, properties: properties(values) });

/** A table's columns: `order` places them (label or `Value #X`), `rename` titles them, `hide` drops them. */
export interface Columns {
  hide: string[];
  order: string[];
  rename: Record<string, string>;
}

const organize = (columns: Columns): dashboard.DataTransformerConfig => ({
  id: 'organize',
  options: {
    excludeByName: Object.fromEntries(columns.hide.map((name) => [name, true])),
    indexByName: Object.fromEntries(columns.order.map((name, index) => [name, index])),
    renameByName: columns.rename,
  },
});

const refId = (index: number): string => String.fromCharCode('A'.charCodeAt(0) + index);

function query(target: Query, index: number, kind: 'instant' | 'range' | 'table'): prometheus.DataqueryBuilder {
  const builder = new prometheus.DataqueryBuilder().datasource(datasource).refId(refId(index)).expr(target.expr);
  if (target.legend !== undefined) builder.legendFormat(target.legend);
  builder.editorMode(prometheus.QueryEditorMode.Code);
  if (kind === 'table') builder.format(prometheus.PromQueryFormat.Table);
  return kind === 'range' ? builder.range() : builder.instant();
}

/** What every panel builder has; the SDK's builders share these methods without a common type. */
interface PanelBuilder<T> {
  id(id: number): T;
  title(title: string): T;
  description(description: string): T;
  datasource(ref: dashboard.DataSourceRef): T;
  gridPos(gridPos: dashboard.GridPos): T;
  withTarget(target: cog.Builder<cog.Dataquery>): T;
}

function place<T extends PanelBuilder<T>>(builder: T, panel: Common, kind: 'instant' | 'range' | 'table'): T {
  const [x, y, w, h] = panel.pos;
  builder.id(panel.id).title(panel.title).description(panel.description).datasource(datasource).gridPos({ x, y, w, h });
  panel.targets.forEach((target, index) => builder.withTarget(query(target, index, kind)));
  return builder;
}

const lastValue = (): common.ReduceDataOptionsBuilder => new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields('').values(false);
const thresholdColors = (): dashboard.FieldColorBuilder => new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds);
const plainText = thresholds('text');

export interface StatPanel extends Common {
  unit?: string;
  thresholds?: dashboard.ThresholdsConfig;
  mappings?: dashboard.ValueMapping[];
  colorMode?: 'value' | 'background';
  textMode?: 'value' | 'value_and_name';
}

/** One number per series, the last value, colored by thresholds. */
export const statPanel = (panel: StatPanel): stat.PanelBuilder =>
  place(new stat.PanelBuilder(), panel, 'instant')
    .unit(panel.unit ?? 'none')
    .mappings(panel.mappings ?? [])
    .thresholds(thresholdsBuilder(panel.thresholds ?? plainText))
    .colorScheme(thresholdColors())
    .reduceOptions(lastValue())
    .colorMode(panel.colorMode === 'background' ? common.BigValueColorMode.Background : common.BigValueColorMode.Value)
    .graphMode(common.BigValueGraphMode.None)
    .textMode(panel.textMode === 'value_and_name' ? common.BigValueTextMode.ValueAndName : common.BigValueTextMode.Value)
    .justifyMode(common.BigValueJustifyMode.Auto)
    .orientation(common.VizOrientation.Auto)
    .wideLayout(true)
    .showPercentChange(false);

export interface GaugePanel extends Common {
  unit: string;
  thresholds: dashboard.ThresholdsConfig;
  transformations?: dashboard.DataTransformerConfig[];
}

export const gaugePanel = (panel: GaugePanel): gauge.PanelBuilder =>
  place(new gauge.PanelBuilder(), panel, 'instant')
    .unit(panel.unit)
    .min(0)
    .thresholds(thresholdsBuilder(panel.thresholds))
    .colorScheme(thresholdColors())
    .reduceOptions(lastValue())
    .orientation(common.VizOrientation.Auto)
    .showThresholdLabels(false)
    .showThresholdMarkers(true)
    .sizing(common.BarGaugeSizing.Auto)
    .minVizWidth(75)
    .minVizHeight(75)
    .transformations(panel.transformations ?? []);

export interface BarGaugePanel extends Common {
  unit?: string;
  min?: number;
  thresholds: dashboard.ThresholdsConfig;
}

/** One horizontal bar per series. */
export function barGaugePanel(panel: BarGaugePanel): bargauge.PanelBuilder {
  const builder = place(new bargauge.PanelBuilder(), panel, 'instant')
    .unit(panel.unit ?? 'none')
    .thresholds(thresholdsBuilder(panel.thresholds))
    .colorScheme(thresholdColors())
    .reduceOptions(lastValue())
    .orientation(common.VizOrientation.Horizontal)
    .displayMode(common.BarGaugeDisplayMode.Gradient)
    .valueMode(common.BarGaugeValueMode.Color)
    .namePlacement(common.BarGaugeNamePlacement.Left)
    .showUnfilled(true)
    .sizing(common.BarGaugeSizing.Auto)
    .minVizWidth(8)
    .minVizHeight(16)
    .maxVizHeight(300);
  return panel.min === undefined ? builder : builder.min(panel.min);
}

export interface TimeSeriesPanel extends Common {
  unit?: string;
  bars?: boolean;
  fillOpacity: number;
  stacked?: boolean;
  legendCalcs: string[];
  overrides?: Override[];
  /** One panel per value of this variable, side by side, at most `maxPerRow`. */
  repeat?: { variable: string; maxPerRow: number };
}

export function timeSeriesPanel(panel: TimeSeriesPanel): timeseries.PanelBuilder {
  const builder = place(new timeseries.PanelBuilder(), panel, 'range')
    .unit(panel.unit ?? 'none')
    .min(0)
    .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.PaletteClassic))
    .drawStyle(panel.bars ? common.GraphDrawStyle.Bars : common.GraphDrawStyle.Line)
    .lineInterpolation(common.LineInterpolation.Linear)
    .lineWidth(1)
    .fillOpacity(panel.fillOpacity)
    .gradientMode(common.GraphGradientMode.None)
    .showPoints(common.VisibilityMode.Never)
    .spanNulls(false)
    .axisPlacement(common.AxisPlacement.Auto)
    .axisSoftMin(0)
    .stacking(new common.StackingConfigBuilder().mode(panel.stacked ? common.StackingMode.Normal : common.StackingMode.None).group('A'))
    .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Off))
    .legend(
      new common.VizLegendOptionsBuilder()
        .displayMode(common.LegendDisplayMode.Table)
        .placement(common.LegendPlacement.Bottom)
        .showLegend(true)
        .calcs(panel.legendCalcs),
    )
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending));
  builder.overrides(panel.overrides ?? []);
  if (panel.repeat) builder.repeat(panel.repeat.variable).repeatDirection('h').maxPerRow(panel.repeat.maxPerRow);
  return builder;
}

export interface StateTimelinePanel extends Common {
  mappings: dashboard.ValueMapping[];
}

/** A colored band per series over time: up/down, running/stopped. */
export const stateTimelinePanel = (panel: StateTimelinePanel): statetimeline.PanelBuilder =>
  place(new statetimeline.PanelBuilder(), panel, 'range')
    .unit('none')
    .mappings(panel.mappings)
    .thresholds(thresholdsBuilder(thresholds('green')))
    .colorScheme(thresholdColors())
    .fillOpacity(80)
    .lineWidth(0)
    .hideFrom(new common.HideSeriesConfigBuilder().legend(false).tooltip(false).viz(false))
    .showValue(common.VisibilityMode.Auto)
    .rowHeight(0.9)
    .mergeValues(true)
    .alignValue(common.TimelineValueAlignment.Left)
    .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).showLegend(true))
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Single).sort(common.SortOrder.None));

export interface TablePanel extends Common {
  columns: Columns;
  sortBy?: { column: string; desc?: boolean };
  overrides?: Override[];
}

/**
 * Instant queries as one table: several queries are merged into one row per entity (Grafana's merge),
 * then organized into the columns named.
 */
export function tablePanel(panel: TablePanel): table.PanelBuilder {
  const targets = panel.targets.map((target) => ({ ...target, legend: target.legend ?? '__auto' }));
  const builder = place(new table.PanelBuilder(), { ...panel, targets }, 'table')
    .unit('none')
    .align(common.FieldTextAlignment.Auto)
    .cellOptions({ type: common.TableCellDisplayMode.Auto })
    .inspect(false)
    .filterable(true)
    .thresholds(thresholdsBuilder(plainText))
    .colorScheme(thresholdColors())
    .showHeader(true)
    .cellHeight(common.TableCellHeight.Sm)
    .footer(new common.TableFooterOptionsBuilder().show(false).reducer(['sum']).countRows(false).fields([]))
    .sortBy(panel.sortBy ? [new common.TableSortByFieldStateBuilder().displayName(panel.sortBy.column).desc(panel.sortBy.desc ?? false)] : [])
    .overrides(panel.overrides ?? [])
    .transformations([...(panel.targets.length > 1 ? [{ id: 'merge', options: {} }] : []), organize(panel.columns)]);
  return builder;
}

/** A full-width row at `y`; a collapsed row holds its panels, an open one is followed by them. */
export function row(id: number, title: string, y: number, options: { collapsed?: boolean; repeat?: string } = {}): dashboard.RowBuilder {
  const builder = new dashboard.RowBuilder(title).id(id).gridPos({ x: 0, y, w: 24, h: 1 }).collapsed(options.collapsed ?? false);
  return options.repeat === undefined ? builder : builder.repeat(options.repeat);
}

/** A color for every value matching `pattern` (the text stays). */
export const regexMap = (pattern: string, color: string): dashboard.ValueMapping => ({
  type: dashboard.MappingType.RegexToText,
  options: { pattern, result: { color, index: 0 } },
});
