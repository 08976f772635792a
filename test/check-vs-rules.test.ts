import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport, type CheckReport } from '../src/check/report.js';
import { startExporter, type RunningExporter } from '../src/exporter.js';
import { silentLogger } from '../src/log.js';
import { rulesFile, waitFor } from './helpers/alerting.js';
import { configFor, fixtureFlags, fixturesDir, ownHostReserve, ownHostReserveFlags } from './helpers/fixtures.js';
import { startPrometheus, type RunningPrometheus, type Sample } from './helpers/prometheus.js';

/**
 * `check` and the recording rules must give the same answers: every fixture host is scraped by one
 * real Prometheus evaluating alerts/vfio.rules.yml, and its answers are compared with check's report
 * on the same snapshot.
 */
const hosts = readdirSync(path.join(fixturesDir, 'hosts')).sort();

/** Alerts whose condition `check` evaluates too; the rest need history (rates, absence, staleness). */
const perVmAlerts = ['VfioPassthroughVMStartWouldOOM', 'VfioPassthroughVMBalloonEnabled', 'VfioPassthroughDeviceOnHostDriver', 'VfioPassthroughDeviceMissing', 'VfioPassthroughDeviceNoReset', 'VfioPassthroughDeviceNotReservedAtBoot', 'VfioVMOOMKilled', 'VfioVMStartEndangersPassthrough'];
const perHostAlerts = ['VfioPassthroughMemoryOvercommitted', 'VfioIOMMUGroupNotViable', 'VfioIOMMUDisabled'];

describe('check gives the answers of the recording rules on every fixture host', () => {
  let prometheus: RunningPrometheus;
  const exporters = new Map<string, RunningExporter>();
  const reports = new Map<string, CheckReport>();
  /** Prometheus' `instance` label of each host's exporter. */
  const instanceOf = (host: string): string => `127.0.0.1:${exporters.get(host)!.port}`;
  const query = (promql: string): Promise<Sample[]> => prometheus.samples(promql);

  beforeAll(async () => {
    for (const host of hosts) {
      const config = configFor([...fixtureFlags(host), ...ownHostReserveFlags(host), '--web.listen-address=127.0.0.1:0', '--sample.interval=1m']);
      const exporter = await startExporter(config, silentLogger);
      exporters.set(host, exporter);
      // The schedule samples at once; the report is built on that same snapshot.
      const { snapshot } = await exporter.sampler.sample();
      reports.set(host, buildReport(snapshot, { reserveBytes: config.hostReserveBytes, vmid: undefined }));
    }
    prometheus = await startPrometheus({ targets: hosts.map(instanceOf), job: 'vfio', ruleFiles: [rulesFile], intervalSeconds: 1 });
    // Every host scraped, then two evaluations on top of it.
    await waitFor('every exporter scraped', 30_000, async () => ((await query('count(vfio_exporter_build_info)'))[0]?.value[1] === String(hosts.length) ? true : undefined));
    await waitFor('rules evaluated on every host', 30_000, async () =>
      (await query('count(vfio:host_passthrough_memory_capacity_bytes{pool="memory"})'))[0]?.value[1] === String(hosts.length) ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 2500));
  });

  afterAll(async () => {
    await prometheus?.stop();
    for (const exporter of exporters.values()) await exporter.close();
  });

  /** A per-VM recording rule's value on one host, by vmid: the lowest, for a VM on hugepage pools of several sizes. */
  const byVmid = async (record: string, host: string): Promise<Record<string, number>> => {
    const values: Record<string, number> = {};
    for (const sample of await query(`${record}{instance="${instanceOf(host)}"}`)) {
      const vmid = sample.metric['vmid']!;
      values[vmid] = Math.min(values[vmid] ?? Infinity, Number(sample.value[1]));
    }
    return values;
  };

  it('takes the reserve of a host whose exporter has its own, the setting for the others', async () => {
    const reserves = Object.fromEntries((await query('vfio:host_reserve_bytes')).map((sample) => [sample.metric['instance'], Number(sample.value[1])]));
    expect(reserves).toEqual(Object.fromEntries(hosts.map((host) => [instanceOf(host), host in ownHostReserve ? 3 * 1024 ** 3 : 1024 ** 3])));
  });

  it.each(hosts)('%s: the start headroom of every stopped passthrough VM', async (host) => {
    const fromRules = await byVmid('vfio:vm_start_headroom_bytes', host);
    const fromCheck = Object.fromEntries(
      reports
        .get(host)!
        .vms.filter((vm) => vm.devices.length > 0 && !vm.running && vm.startHeadroom)
        .map((vm) => [vm.vmid, vm.startHeadroom!.headroomBytes]),
    );
    expect(fromCheck).toEqual(fromRules);
  });

  it.each(hosts)('%s: what the start of each stopped VM without passthrough leaves the running passthrough VMs', async (host) => {
    const fromRules = await byVmid('vfio:vm_start_passthrough_headroom_bytes', host);
    const fromCheck = Object.fromEntries(
      reports
        .get(host)!
        .vms.filter((vm) => vm.passthroughRisk)
        .map((vm) => [vm.vmid, vm.passthroughRisk!.floorHeadroomBytes]),
    );
    expect(fromCheck).toEqual(fromRules);
  });

  it('the fixed seed host is where they agree that starting VM 103 puts the running VM 101 at risk', async () => {
    const [headroom] = await query(`vfio:vm_start_passthrough_headroom_bytes{instance="${instanceOf('suprox-fixed')}",vmid="103"}`);
    expect(Number(headroom!.value[1])).toBeLessThan(0);
    expect(reports.get('suprox-fixed')!.vms.find((vm) => vm.vmid === '103')!.passthroughRisk!.atRisk).toEqual(['101']);
  });

  it.each(hosts)('%s: pinned memory committed and capacity per pool', async (host) => {
    const committed = await query(`vfio:host_passthrough_memory_committed_bytes{instance="${instanceOf(host)}"}`);
    const capacity = await query(`vfio:host_passthrough_memory_capacity_bytes{instance="${instanceOf(host)}"}`);
    const memory = reports.get(host)!.memory;
    expect(memory).not.toBeNull();
    /** `memory`, or `1G hugepages` for a hugepage pool, as check's summary names it. */
    const poolName = ({ metric }: Sample): string => (metric['size'] ? `${metric['size']} ${metric['pool']}` : metric['pool']!);
    const overcommittedByRules = capacity
      .filter((pool) => Number(committed.find((each) => poolName(each) === poolName(pool))?.value[1] ?? 0) > Number(pool.value[1]))
      .map(poolName);
    const overcommittedByCheck = reports
      .get(host)!
      .problems.filter((problem) => problem.alert === 'VfioPassthroughMemoryOvercommitted')
      .map((problem) => (/ of (memory|\S+ hugepages),/.exec(problem.summary) ?? [])[1]);
    expect(overcommittedByCheck.sort()).toEqual(overcommittedByRules.sort());
  });

  it.each(hosts)('%s: the same alerts, per VM and per host, with the same severity', async (host) => {
    const alerts = await query(`ALERTS{instance="${instanceOf(host)}",alertname=~"${[...perVmAlerts, ...perHostAlerts].join('|')}"}`);
    const fromRules = new Set(
      alerts.map(({ metric }) => (perVmAlerts.includes(metric['alertname']!) ? `${metric['alertname']} vm=${metric['vmid']} ${metric['severity']}` : `${metric['alertname']} ${metric['severity']}`)),
    );
    const fromCheck = new Set(
      reports
        .get(host)!
        .problems.filter((problem) => perVmAlerts.includes(problem.alert) || perHostAlerts.includes(problem.alert))
        .map((problem) => (perVmAlerts.includes(problem.alert) ? `${problem.alert} vm=${problem.vmid} ${problem.severity}` : `${problem.alert} ${problem.severity}`)),
    );
    expect([...fromCheck].sort()).toEqual([...fromRules].sort());
  });

  it('evaluates every rule without error, with the hosts and their shared VM ids in one Prometheus', async () => {
    expect(await prometheus.ruleErrors()).toEqual([]);
  });

  it('the seed host is where they agree that VM 101 would be OOM-killed', async () => {
    const [headroom] = await query(`vfio:vm_start_headroom_bytes{instance="${instanceOf('suprox')}",vmid="101"}`);
    expect(Number(headroom!.value[1])).toBeLessThan(0);
    expect(reports.get('suprox')!.problems[0]).toMatchObject({ alert: 'VfioPassthroughVMStartWouldOOM', vmid: '101', severity: 'critical' });
  });
});
