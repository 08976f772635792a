import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type { MixinConfig } from '../config.js';
import { datasource } from './panels.js';

/** What every dashboard shares: tags, refresh, time range, crosshair shared across panels. */
export const dashboardBase = (uid: string, title: string, description: string): dashboard.DashboardBuilder =>
  new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(['vfio', 'passthrough', 'proxmox', 'vfio-exporter'])
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .fiscalYearStartMonth(0)
    .liveNow(false)
    .refresh('1m')
    .version(1)
    .weekStart('')
    .time({ from: 'now-6h', to: 'now' })
    .timezone('browser');

/**
 * The label matchers of the dashboard variables, for a selector: `{${host}}` are the selected hosts,
 * `{${jobs}}` every host of the selected jobs. Fleet labels come first, each a variable of its own.
 */
export function matchers(config: MixinConfig): { host: string; jobs: string } {
  const jobs = [...config.fleetLabels.map((label) => `${label}=~"$${label}"`), 'job=~"$job"'].join(', ');
  return { jobs, host: `${jobs}, instance=~"$instance"` };
}

const datasourceVariable = (): dashboard.DatasourceVariableBuilder =>
  new dashboard.DatasourceVariableBuilder('datasource')
    .label('Data source')
    .type('prometheus')
    .current({ text: 'default', value: 'default' })
    .hide(dashboard.VariableHide.DontHide)
    .regex('')
    .includeAll(false)
    .multi(false)
    .description('Prometheus that scrapes the vfio-exporters');

/**
 * Per host, the devices VM configs assign whose IOMMU group is not viable, each once however many VMs name it. Their
 * groups come from vfio:pci_device_passthrough_info, the few devices meant for VMs, not from every device's
 * vfio_pci_device_info.
 */
const assignedDevicesInNonViableGroups = (host: string): string =>
  `count by (instance) (group by (instance, pci_address) (vfio:pci_device_passthrough_info{${host}} and on (instance, pci_address) vfio_vm_pci_device_info{${host}} and on (instance, iommu_group) (vfio_iommu_group_viable{${host}} == 0)))`;

/**
 * That count, 0 for every other host of `everyHost` (one series per host) once vfio.devices has recorded the devices
 * meant for VMs: it evaluates every host at once. Before its first evaluation (rules not loaded, Prometheus just
 * started) there is no value rather than a 0 that reads as healthy.
 */
export const assignedDevicesInNonViableGroupsOrNone = (host: string, everyHost: string): string =>
  `${assignedDevicesInNonViableGroups(host)} or on (instance) (sum by (instance) (${everyHost}) * 0 and on () (count(vfio:pci_device_passthrough_info) > 0))`;

/**
 * A multi-value variable from `label_values(selector, label)`, refreshed with the time range, with All selected
 * unless `withAll` is false: then Grafana selects the first value.
 */
export function labelVariable(name: string, label: string, description: string, labelValues: string, withAll = true): dashboard.QueryVariableBuilder {
  const variable = new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(datasource)
    .query({ qryType: 1, query: labelValues, refId: 'PrometheusVariableQueryEditor-VariableQuery' })
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .multi(true)
    .includeAll(withAll)
    .options([])
    .regex('')
    .sort(dashboard.VariableSort.NumericalAsc)
    .hide(dashboard.VariableHide.DontHide)
    .description(description);
  return withAll ? variable.current({ text: ['All'], value: ['$__all'] }) : variable;
}

/**
 * The data source, then each fleet label (each narrowing the next), the job and the host. `allHosts: false` leaves
 * All out of the host variable: a dashboard that shows every device of every host it is given would select
 * tens of thousands of series on a fleet's Prometheus.
 */
export function variables(config: MixinConfig, { allHosts }: { allHosts: boolean }): cog.Builder<dashboard.VariableModel>[] {
  const narrowed: string[] = [];
  const fleet = config.fleetLabels.map((label) => {
    const selector = narrowed.length > 0 ? `vfio_exporter_build_info{${narrowed.join(', ')}}` : 'vfio_exporter_build_info';
    narrowed.push(`${label}=~"$${label}"`);
    return labelVariable(label, label, `Values of the fleet label ${label}`, `label_values(${selector}, ${label})`);
  });
  const { jobs } = matchers(config);
  const jobSelector = narrowed.length > 0 ? `vfio_exporter_build_info{${narrowed.join(', ')}}` : 'vfio_exporter_build_info';
  return [
    datasourceVariable(),
    ...fleet,
    labelVariable('job', 'Job', 'Scrape jobs of vfio-exporters', `label_values(${jobSelector}, job)`),
    labelVariable('instance', 'Host', 'Hosts running vfio-exporter', `label_values(vfio_exporter_build_info{${jobs}}, instance)`, allHosts),
  ];
}

/** The fields of a Prometheus annotation query, which the SDK's AnnotationQuery type does not model. */
interface PrometheusAnnotation {
  name: string;
  enable: boolean;
  iconColor: string;
  expr: string;
  titleFormat: string;
  textFormat: string;
  tagKeys: string;
  useValueForTime: boolean;
}

export const prometheusAnnotation = (annotation: PrometheusAnnotation): cog.Builder<dashboard.AnnotationQuery> => ({
  build: () => ({
    ...new dashboard.AnnotationQueryBuilder().name(annotation.name).datasource(datasource).enable(annotation.enable).hide(false).iconColor(annotation.iconColor).build(),
    expr: annotation.expr,
    step: '1m',
    titleFormat: annotation.titleFormat,
    textFormat: annotation.textFormat,
    tagKeys: annotation.tagKeys,
    useValueForTime: annotation.useValueForTime,
  }),
});

export const dashboardLink = (title: string, uid: string, tooltip: string, includeVars: boolean): dashboard.DashboardLinkBuilder =>
  new dashboard.DashboardLinkBuilder(title)
    .type(dashboard.DashboardLinkType.Link)
    .url(`/d/${uid}`)
    .icon('dashboard')
    .includeVars(includeVars)
    .keepTime(true)
    .targetBlank(false)
    .tooltip(tooltip)
    .asDropdown(false)
    .tags([]);
