import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../src/exporter.js';
import { silentLogger } from '../src/log.js';
import {
  rulesAtGlobalInterval,
  rulesFile,
  startAlertmanager,
  startDaemon,
  startWebhook,
  tempDir,
  waitFor,
  type Daemon,
  type TempDir,
  type Webhook,
  type WebhookAlert,
} from './helpers/alerting.js';
import { freePort } from './helpers/ports.js';
import { configFor } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';

const GiB = 1024 ** 3;

// The seed host's memory: 32 GiB, 9 GiB available, ZFS ARC at 6 GiB above a c_min of 1 GiB. With the
// 1 GiB reserve, 13 GiB can start: 16 GiB cannot, 12 GiB can.
const meminfo = `MemTotal:       33554432 kB
MemFree:         1310720 kB
MemAvailable:    9437184 kB
Buffers:          131072 kB
Cached:          8126464 kB
SwapCached:            0 kB
Active:          9437184 kB
Inactive:        5242880 kB
SwapTotal:             0 kB
SwapFree:              0 kB
Dirty:              1024 kB
AnonPages:       6291456 kB
Shmem:             65536 kB
Slab:            1048576 kB
HugePages_Total:       0
HugePages_Free:        0
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:               0 kB
`;

const arcstats = `13 1 0x01 123 33456 4520432425 71092357462345
name                            type data
hits                            4    123456789
misses                          4    1234567
c                               4    ${6 * GiB}
c_min                           4    ${1 * GiB}
c_max                           4    ${16 * GiB}
size                            4    ${6 * GiB}
`;

/** VM 101 as in the seed: the SATA controller passed through, stopped, not on boot. */
const vmConfig = (memoryMiB: number, balloonMiB: number) => `boot: order=scsi0
cores: 4
hostpci0: 0000:00:17.0,pcie=1
machine: q35
memory: ${memoryMiB}
balloon: ${balloonMiB}
name: nas
net0: virtio=BC:24:11:5E:2F:01,bridge=vmbr0
ostype: l26
scsi0: local-zfs:vm-101-disk-0,size=32G
`;

const isStartAlert = (alert: WebhookAlert) => alert.labels['alertname'] === 'VfioPassthroughVMStartWouldOOM' && alert.labels['vmid'] === '101';

/**
 * The whole path with the real binaries: exporter on a copy of the seed host → Prometheus evaluating
 * alerts/vfio.rules.yml → Alertmanager with alerts/alertmanager.yml → a webhook. The temp copies
 * shorten every `for:` to 1s and Alertmanager's group waits to 1s, so the figures measure the
 * pipeline; in production add the rule's `for:` (5m) and `group_wait` (30s).
 */
describe('seed incident end to end: exporter, Prometheus, Alertmanager, webhook', () => {
  let dir: TempDir;
  let host: ReturnType<typeof copyHost>;
  let exporter: RunningExporter;
  let webhook: Webhook;
  let alertmanager: Daemon;
  let prometheus: Daemon;

  const writeHostFile = (relative: string, text: string) => {
    const file = path.join(host.root, relative);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  };
  const writeVmConfig = (memoryMiB: number, balloonMiB: number) => writeHostFile('root/etc/pve/qemu-server/101.conf', vmConfig(memoryMiB, balloonMiB));

  beforeAll(async () => {
    dir = tempDir('vfio-e2e-');
    host = copyHost('suprox');
    writeHostFile('proc/meminfo', meminfo);
    writeHostFile('proc/spl/kstat/zfs/arcstats', arcstats);
    for (const runDir of ['root/run/qemu-server', 'root/var/run/qemu-server']) rmSync(path.join(host.root, runDir, '101.pid'), { force: true });
    writeVmConfig(12288, 0);

    exporter = await startExporter(configFor([...host.flags, '--web.listen-address=127.0.0.1:0', '--sample.interval=1s']), silentLogger);
    webhook = await startWebhook();
    alertmanager = await startAlertmanager(dir.dir, webhook.port);

    const rules = path.join(dir.dir, 'vfio.rules.yml');
    writeFileSync(rules, rulesAtGlobalInterval(readFileSync(rulesFile, 'utf8'), 1));
    const prometheusConfig = path.join(dir.dir, 'prometheus.yml');
    writeFileSync(
      prometheusConfig,
      `global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: ['${rules}']
alerting:
  alertmanagers: [{static_configs: [{targets: ['${new URL(alertmanager.url).host}']}]}]
scrape_configs:
  - job_name: vfio
    static_configs: [{targets: ['127.0.0.1:${exporter.port}'], labels: {instance: 'suprox:9847'}}]
`,
    );
    const port = await freePort();
    prometheus = await startDaemon(
      'prometheus',
      [
        `--config.file=${prometheusConfig}`,
        `--storage.tsdb.path=${path.join(dir.dir, 'prometheus-data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      port,
    );
  });

  afterAll(async () => {
    await prometheus?.stop();
    await alertmanager?.stop();
    await webhook?.close();
    await exporter?.close();
    dir?.remove();
    // copyHost removes its copy after each test; this covers a failed setup, after which no test ran.
    if (host) rmSync(host.root, { recursive: true, force: true });
  });

  const query = async (promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const response = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    return body.data.result;
  };

  const startHeadroom = (expected: number) =>
    waitFor(`Prometheus to record a start headroom of ${expected / GiB} GiB for VM 101 (are the vm and memory collectors in this build?)`, 30_000, async () => {
      const [sample] = await query('vfio:vm_start_headroom_bytes{vmid="101"}');
      return sample && Number(sample.value[1]) === expected ? sample : undefined;
    });

  it('pages the start alert after a bad config and its resolution after the fix', async () => {
    // Healthy first: the fixed seed config (12 GiB, balloon 0) has 1 GiB to spare and stays silent.
    await startHeadroom(1 * GiB);
    expect((await query('vfio_vm_running{vmid="101"}'))[0]?.value[1]).toBe('0');

    const badAtMs = Date.now();
    writeVmConfig(16384, 8192);
    const page = await waitFor('the start alert at the webhook', 60_000, () =>
      webhook.received.find(({ body }) => body.alerts.some((alert) => isStartAlert(alert) && alert.status === 'firing')),
    );
    const pagedAfterMs = page.receivedAtMs - badAtMs;

    const alert = page.body.alerts.find(isStartAlert)!;
    expect(page.path).toBe('/ticket');
    expect(alert.labels).toMatchObject({ severity: 'warning', instance: 'suprox:9847', job: 'vfio', name: 'nas' });
    expect(alert.annotations['description']).toContain('all of its 16GiB at start');
    expect(alert.annotations['description']).toContain('headroom -3GiB');
    expect(page.body.alerts.map((each) => each.labels['alertname']).sort()).toEqual(['VfioPassthroughVMBalloonEnabled', 'VfioPassthroughVMStartWouldOOM']);
    // Nothing about VM 101 reached the webhook while its config was healthy.
    expect(webhook.received.filter(({ receivedAtMs, body }) => receivedAtMs < badAtMs && body.alerts.some(isStartAlert))).toEqual([]);

    const fixedAtMs = Date.now();
    writeVmConfig(12288, 0);
    // The group holds the VM's other alerts too, which resolve on their own schedule: wait for the notification
    // that resolves the start alert.
    const resolution = await waitFor('the resolution at the webhook', 60_000, () =>
      webhook.received.find(({ receivedAtMs, body }) => receivedAtMs >= fixedAtMs && body.alerts.some((each) => isStartAlert(each) && each.status === 'resolved')),
    );
    const resolvedAfterMs = resolution.receivedAtMs - fixedAtMs;
    expect(resolution.body.alerts.filter(isStartAlert).map((each) => each.status)).toEqual(['resolved']);
    await startHeadroom(1 * GiB);

    console.log(`bad config → page: ${(pagedAfterMs / 1000).toFixed(1)} s; fix → resolution: ${(resolvedAfterMs / 1000).toFixed(1)} s`);
  }, 120_000);
});
