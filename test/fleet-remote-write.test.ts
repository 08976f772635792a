import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../src/exporter.js';
import { silentLogger } from '../src/log.js';
import { rulesAtGlobalInterval, rulesFile, startDaemon, tempDir, waitFor, type Daemon, type TempDir } from './helpers/alerting.js';
import { configFor, fixtureFlags } from './helpers/fixtures.js';
import { freePort } from './helpers/ports.js';

type Vector = { metric: Record<string, string>; value: [number, string] }[];

// The seed host before its fix (VM 101 cannot start), the same host fixed (the same VM ids), a Proxmox
// cluster node, and the same node once every alert was dealt with.
const hosts = ['suprox', 'suprox-fixed', 'pve-cluster', 'pve-cluster-fixed'];
const cluster = 'dc1';

/**
 * A fleet as it runs: on each host an exporter and a Prometheus in agent mode that scrapes it and
 * remote-writes, with the host's external labels, to one central Prometheus (remote-write receiver on)
 * that evaluates alerts/vfio.rules.yml. The temp copy of the rules shortens every `for:` to 1s.
 */
describe('fleet: agents remote-write to a central Prometheus that runs the rules', () => {
  let dir: TempDir;
  const exporters: RunningExporter[] = [];
  const agents: Daemon[] = [];
  let central: Daemon;

  const query = async (promql: string): Promise<Vector> => {
    const response = await fetch(`${central.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    return ((await response.json()) as { data: { result: Vector } }).data.result;
  };

  beforeAll(async () => {
    dir = tempDir('vfio-fleet-');
    const rules = path.join(dir.dir, 'vfio.rules.yml');
    writeFileSync(rules, rulesAtGlobalInterval(readFileSync(rulesFile, 'utf8'), 1));
    const centralConfig = path.join(dir.dir, 'central.yml');
    writeFileSync(centralConfig, `global: {evaluation_interval: 1s}\nrule_files: ['${rules}']\n`);
    const centralPort = await freePort();
    central = await startDaemon(
      'prometheus',
      [
        `--config.file=${centralConfig}`,
        `--storage.tsdb.path=${path.join(dir.dir, 'central-data')}`,
        `--web.listen-address=127.0.0.1:${centralPort}`,
        '--web.enable-remote-write-receiver',
        '--log.level=warn',
      ],
      centralPort,
    );
    for (const host of hosts) {
      const exporter = await startExporter(configFor([...fixtureFlags(host), '--web.listen-address=127.0.0.1:0', '--sample.interval=1s']), silentLogger);
      exporters.push(exporter);
      const agentConfig = path.join(dir.dir, `agent-${host}.yml`);
      writeFileSync(
        agentConfig,
        `global: {scrape_interval: 1s, scrape_timeout: 1s, external_labels: {cluster: ${cluster}, node: ${host}}}
scrape_configs:
  - job_name: vfio
    static_configs: [{targets: ['127.0.0.1:${exporter.port}'], labels: {instance: '${host}:9847'}}]
remote_write:
  - url: ${central.url}/api/v1/write
    queue_config: {batch_send_deadline: 1s}
`,
      );
      const agentPort = await freePort();
      agents.push(
        await startDaemon(
          'prometheus',
          [
            '--enable-feature=agent',
            `--config.file=${agentConfig}`,
            `--storage.agent.path=${path.join(dir.dir, `agent-${host}-data`)}`,
            `--web.listen-address=127.0.0.1:${agentPort}`,
            '--log.level=warn',
          ],
          agentPort,
        ),
      );
    }
  }, 60_000);

  afterAll(async () => {
    for (const agent of agents) await agent.stop();
    await central?.stop();
    for (const exporter of exporters) await exporter.close();
    dir?.remove();
  });

  it('alerts on the right host only, with its labels, and every rule evaluates', async () => {
    // Every host's data has arrived, with the labels its agent added.
    await waitFor('every host at the central Prometheus', 60_000, async () => {
      const nodes = new Set((await query(`up{job="vfio", cluster="${cluster}"} == 1`)).map((sample) => sample.metric['node']));
      return hosts.every((host) => nodes.has(host)) ? true : undefined;
    });
    const firing = await waitFor('the start alert at the central Prometheus', 60_000, async () => {
      const alerts = await query('ALERTS{alertname="VfioPassthroughVMStartWouldOOM", alertstate="firing"}');
      return alerts.length > 0 ? alerts : undefined;
    });
    // One more evaluation: an alert for another host would have had the same time to fire.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const alerts = await query('ALERTS{alertname="VfioPassthroughVMStartWouldOOM"}');
    // The seed's VM 101 short of memory, and on pve-cluster VM 106 short of 1 GiB pages.
    expect(alerts.map((alert) => alert.metric).sort((a, b) => a['instance']!.localeCompare(b['instance']!))).toEqual([
      expect.objectContaining({ instance: 'pve-cluster:9847', job: 'vfio', vmid: '106', size: '1G', cluster, node: 'pve-cluster' }),
      expect.objectContaining({ instance: 'suprox:9847', job: 'vfio', vmid: '101', cluster, node: 'suprox' }),
    ]);
    expect(alerts.find((alert) => alert.metric['vmid'] === '101')!.metric['size']).toBeUndefined();
    expect(firing.map((alert) => `${alert.metric['instance']} ${alert.metric['vmid']}`)).toEqual(expect.arrayContaining([expect.stringMatching(/^(suprox:9847 101|pve-cluster:9847 106)$/)]));
    // The node whose admin followed every alert: nothing, on the same VM ids and devices.
    expect(await query('ALERTS{node="pve-cluster-fixed"}')).toEqual([]);
    // Every recorded series but the settings, and every alert, keeps the labels its agent added: a join
    // that kept only (instance, job) would leave series no other rule matches, and alerts no route finds.
    const unlabelled = await query('{__name__=~"vfio:.+|ALERTS", __name__!~"vfio:config_.+", cluster=""}');
    expect(unlabelled.map((sample) => sample.metric)).toEqual([]);
    const rules = (await (await fetch(`${central.url}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } };
    const failing = rules.data.groups.flatMap((group) => group.rules.filter((rule) => rule.health !== 'ok').map((rule) => `${rule.name}: ${rule.lastError ?? rule.health}`));
    expect(failing).toEqual([]);
  }, 120_000);
});
