import { Counter, Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createExposition, type MetricSink } from '../src/metrics/sink.js';

/** The same calls against prom-client's registry, whose output the exposition writer must match byte for byte. */
function promClientSink(registry: Registry): MetricSink {
  return {
    gauge(name, help, labelNames = []) {
      let gauge: Gauge | undefined;
      return (labels, value) => {
        gauge ??= new Gauge({ name, help, labelNames, registers: [registry] });
        gauge.set(labels, value);
      };
    },
    counter(name, help, labelNames = []) {
      let counter: Counter | undefined;
      return (labels, value) => {
        counter ??= new Counter({ name, help, labelNames, registers: [registry] });
        counter.inc(labels, value);
      };
    },
    group(_key, write) {
      write();
    },
  };
}

const calls = (sink: MetricSink): void => {
  const info = sink.gauge('vfio_test_info', 'Help with a \\ backslash\nand a newline.', ['pci_address', 'name']);
  info({ pci_address: '0000:00:17.0', name: 'SATA "AHCI" \\ controller\nline two' }, 1);
  info({ pci_address: '0000:00:14.0', name: '' }, 1);
  // The same label set again, its labels in another order: one series, the last value.
  info({ name: '', pci_address: '0000:00:14.0' }, 2);
  sink.gauge('vfio_test_never_set', 'A family without samples is left out.');
  const kills = sink.counter('vfio_test_kills_total', 'Counter.', ['vmid']);
  kills({ vmid: '101' }, 1);
  kills({ vmid: '102' }, 0);
  kills({ vmid: '101' }, 2.5);
  const plain = sink.gauge('vfio_test_plain', 'No labels.');
  plain({}, 0.000001);
  plain({}, 1e21);
  const special = sink.gauge('vfio_test_special', 'Infinities.', ['kind']);
  special({ kind: 'up' }, Infinity);
  special({ kind: 'down' }, -Infinity);
  special({ kind: 'negative' }, -3);
};

describe('exposition writer', () => {
  it('writes what prom-client writes for the same calls', async () => {
    const registry = new Registry();
    calls(promClientSink(registry));
    const { sink, text } = createExposition();
    calls(sink);
    expect(text()).toBe(await registry.metrics());
    expect(text()).toContain('name="SATA \\"AHCI\\" \\\\ controller\\nline two"');
    expect(text()).toContain('vfio_test_kills_total{vmid="101"} 3.5');
    expect(text()).not.toContain('vfio_test_never_set');
  });

  it('refuses undeclared labels, bad names, a declared family twice and counters going down', () => {
    const { sink } = createExposition();
    expect(() => sink.gauge('vfio_test', 'x', ['a'])({ b: '1' }, 1)).toThrow(/label "b" is not declared/);
    expect(() => sink.gauge('vfio-test', 'x')).toThrow(/invalid metric name/);
    expect(() => sink.gauge('vfio_ok', 'x', ['bad-label'])).toThrow(/invalid label name/);
    sink.gauge('vfio_once', 'x')({}, 1);
    expect(() => sink.gauge('vfio_once', 'x')({}, 1)).toThrow(/declared twice/);
    expect(() => sink.counter('vfio_down_total', 'x')({}, -1)).toThrow(/counter cannot be -1/);
    expect(() => sink.counter('vfio_nan_total', 'x')({}, NaN)).toThrow(/counter cannot be NaN/);
  });

  it('replays a group set for the same key object, and formats a new key afresh', async () => {
    interface Device { address: string; driver: string }
    const write = (sink: MetricSink, devices: readonly Device[]): void => {
      const driver = sink.gauge('vfio_test_driver_info', 'Driver.', ['pci_address', 'driver']);
      const kills = sink.counter('vfio_test_resets_total', 'Counter.', ['pci_address']);
      for (const device of devices)
        sink.group(device, () => {
          driver({ pci_address: device.address, driver: device.driver }, 1);
          kills({ pci_address: device.address }, 1);
          kills({ pci_address: device.address }, 2);
        });
    };
    const first = [{ address: '0000:00:17.0', driver: 'vfio-pci' }, { address: '0000:02:00.0', driver: 'igb' }];
    const exposition = (devices: readonly Device[]): string => {
      const { sink, text } = createExposition();
      write(sink, devices);
      return text();
    };
    const registry = new Registry();
    write(promClientSink(registry), first);
    expect(exposition(first)).toBe(await registry.metrics());
    // Replayed: the same text, counters summed as when the calls were made.
    expect(exposition(first)).toBe(await registry.metrics());
    expect(exposition(first)).toContain('vfio_test_resets_total{pci_address="0000:02:00.0"} 3');
    // The second device rebound: a new object, formatted again; the first device's series replayed.
    const rebound = [first[0]!, { address: '0000:02:00.0', driver: 'vfio-pci' }];
    expect(exposition(rebound)).toContain('vfio_test_driver_info{pci_address="0000:02:00.0",driver="vfio-pci"} 1');
    expect(exposition(rebound)).not.toContain('driver="igb"');
    expect(exposition(rebound)).toContain('vfio_test_driver_info{pci_address="0000:00:17.0",driver="vfio-pci"} 1');
  });

  it('refuses a replayed group whose family is not declared, and nested groups', () => {
    const key = {};
    const { sink } = createExposition();
    const info = sink.gauge('vfio_test_info', 'x', ['a']);
    sink.group(key, () => info({ a: '1' }, 1));
    expect(() => createExposition().sink.group(key, () => undefined)).toThrow(/vfio_test_info is not declared/);
    expect(() => sink.group({}, () => sink.group({}, () => undefined))).toThrow(/do not nest/);
  });

  it('writes a lone newline for no families, as prom-client does', async () => {
    expect(createExposition().text()).toBe(await new Registry().metrics());
  });
});
