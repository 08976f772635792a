import { Counter, Gauge, type Registry } from 'prom-client';

export type Labels = Record<string, string>;
export type SetSample = (labels: Labels, value: number) => void;

/** Declares metric families on a registry built for one snapshot; a family with no samples is left out, as node_exporter does. */
export interface MetricSink {
  gauge(name: string, help: string, labelNames?: readonly string[]): SetSample;
  counter(name: string, help: string, labelNames?: readonly string[]): SetSample;
}

export function createSink(registry: Registry): MetricSink {
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
  };
}
