import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startAlertmanager,
  startWebhook,
  tempDir,
  waitFor,
  type Daemon,
  type ReceivedNotification,
  type TempDir,
  type Webhook,
} from './helpers/alerting.js';

const instance = 'suprox:9847';
const alert = (labels: Record<string, string>, endsAt = new Date(Date.now() + 3_600_000)) => ({
  labels: { instance, job: 'vfio', ...labels },
  annotations: { summary: labels['alertname'] ?? '' },
  startsAt: new Date(Date.now() - 60_000).toISOString(),
  endsAt: endsAt.toISOString(),
});

const vmOomKilled = { alertname: 'VfioVMOOMKilled', severity: 'critical', vmid: '101' };
const firing: Record<string, string>[] = [
  vmOomKilled,
  { alertname: 'VfioPassthroughVMStartWouldOOM', severity: 'warning', vmid: '101' },
  { alertname: 'VfioPassthroughVMBalloonEnabled', severity: 'warning', vmid: '101' },
  { alertname: 'VfioPassthroughDeviceOnHostDriver', severity: 'warning', vmid: '101', iommu_group: '7', pci_address: '0000:00:17.0' },
  { alertname: 'VfioPassthroughVMStartWouldOOM', severity: 'warning', vmid: '102' },
  { alertname: 'VfioHostOOMKill', severity: 'warning' },
  { alertname: 'VfioIOMMUGroupNotViable', severity: 'warning', iommu_group: '7' },
  { alertname: 'VfioIOMMUGroupNotViable', severity: 'warning', iommu_group: '1' },
];

/** Every (path, vmid, alertname[/iommu_group]) the webhook got as firing, sorted. */
const deliveredFiring = (received: ReceivedNotification[]): string[] =>
  [
    ...new Set(
      received.flatMap(({ path, body }) =>
        body.alerts
          .filter((each) => each.status === 'firing')
          .map((each) => `${path} vmid=${each.labels['vmid'] ?? ''} ${each.labels['alertname']}${each.labels['iommu_group'] && !each.labels['vmid'] ? `/${each.labels['iommu_group']}` : ''}`),
      ),
    ),
  ].sort();

describe('alerts/alertmanager.yml in a real Alertmanager', () => {
  let dir: TempDir;
  let webhook: Webhook;
  let alertmanager: Daemon;

  beforeAll(async () => {
    dir = tempDir('vfio-alertmanager-');
    webhook = await startWebhook();
    alertmanager = await startAlertmanager(dir.dir, webhook.port);
  });

  afterAll(async () => {
    await alertmanager?.stop();
    await webhook?.close();
    dir?.remove();
  });

  const post = async (alerts: ReturnType<typeof alert>[]) => {
    const response = await fetch(`${alertmanager.url}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(alerts),
    });
    expect(response.status).toBe(200);
  };

  it('pages critical, tickets warnings by instance and VM, and holds derived alerts while the VM OOM kill fires', async () => {
    // Inhibiting alerts first: Alertmanager's inhibitor learns of new alerts asynchronously, so an
    // inhibited alert posted in the same batch as its source can slip through. Prometheus sends the kill
    // first too, since the derived alerts wait out their `for:`.
    // The same holds for the device alert that holds back its group's viability alert.
    const onHostDriver = firing.find((labels) => labels['alertname'] === 'VfioPassthroughDeviceOnHostDriver')!;
    await post([alert(vmOomKilled)]);
    await waitFor('the page for the kill', 15_000, () => webhook.received.find(({ path }) => path === '/pager'));
    await post([alert(vmOomKilled), alert(onHostDriver)]);
    await waitFor('the ticket for the device on a host driver', 15_000, () =>
      deliveredFiring(webhook.received).includes('/ticket vmid=101 VfioPassthroughDeviceOnHostDriver') ? true : undefined,
    );
    await post(firing.map((labels) => alert(labels)));
    const whileKilled = [
      '/pager vmid=101 VfioVMOOMKilled',
      '/ticket vmid= VfioIOMMUGroupNotViable/1',
      '/ticket vmid=101 VfioPassthroughDeviceOnHostDriver',
      '/ticket vmid=102 VfioPassthroughVMStartWouldOOM',
    ];
    await waitFor('the notifications of the first round', 15_000, () =>
      deliveredFiring(webhook.received).length >= whileKilled.length ? true : undefined,
    );
    // Several group intervals more, for anything the inhibitions failed to hold back.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(deliveredFiring(webhook.received)).toEqual(whileKilled);
    for (const { body } of webhook.received) {
      expect(body.groupLabels['instance']).toBe(instance);
      expect(Object.keys(body.groupLabels).filter((label) => label !== 'instance' && label !== 'vmid')).toEqual([]);
    }

    await post([alert(vmOomKilled, new Date())]);
    const afterKill = [
      ...whileKilled,
      '/ticket vmid= VfioHostOOMKill',
      '/ticket vmid=101 VfioPassthroughVMBalloonEnabled',
      '/ticket vmid=101 VfioPassthroughVMStartWouldOOM',
    ].sort();
    await waitFor('the held-back alerts once the kill resolved', 15_000, () =>
      deliveredFiring(webhook.received).length >= afterKill.length ? true : undefined,
    );
    expect(deliveredFiring(webhook.received)).toEqual(afterKill);
    // The device alert keeps holding back its own group's viability alert.
    expect(deliveredFiring(webhook.received)).not.toContain('/ticket vmid= VfioIOMMUGroupNotViable/7');
    const resolvedPage = await waitFor('the resolved page', 15_000, () =>
      webhook.received.find(({ path, body }) => path === '/pager' && body.status === 'resolved'),
    );
    expect(resolvedPage.body.alerts.map((each) => each.labels['alertname'])).toEqual(['VfioVMOOMKilled']);
  }, 60_000);
});
