import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { MemoryPoint } from '../src/collectors/memory.js';
import { createSampler } from '../src/exporter.js';
import { defaultHostReserveBytes, headroomTrend } from '../src/check/headroom.js';
import { renderHtml } from '../src/check/html.js';
import { buildReport } from '../src/check/report.js';
import { renderText } from '../src/check/text.js';
import { silentLogger } from '../src/log.js';
import { rulesFile } from './helpers/alerting.js';
import { configFor } from './helpers/fixtures.js';
import { promtoolTestRules } from './helpers/rules.js';
import { copyHost } from './helpers/tmp-host.js';

const MiB = 1024 ** 2;

describe('the headroom trend of check and the status page', () => {
  it('is the recording rules\' deriv() and time to exhaustion, to the last bit, on the same samples', () => {
    // 5 minutes of 15 s samples: MemAvailable leaking 40 MiB a minute with a ragged edge, the ARC shrinking.
    const points: MemoryPoint[] = Array.from({ length: 21 }, (_, index) => ({
      atMs: index * 15_000,
      availableBytes: 3113850880 - index * 10 * MiB + ((index * 7919) % 13) * 4096,
      zfsArc: { sizeBytes: 1503238553 - index * MiB, minBytes: 1019295744 },
    }));
    const trend = headroomTrend(points, defaultHostReserveBytes)!;
    expect(trend.changeBytesPerSecond).toBeLessThan(0);
    expect(trend.exhaustionSeconds).toBeGreaterThan(0);
    const series = (name: string, values: number[]) => ({ series: `${name}{instance="trend:9847",job="vfio"}`, values: values.join(' ') });
    const unitTest = {
      rule_files: [rulesFile],
      evaluation_interval: '15s',
      group_eval_order: ['vfio.recording', 'vfio.starts', 'vfio.alerts'],
      tests: [
        {
          interval: '15s',
          input_series: [
            series('vfio_last_sample_timestamp_seconds', points.map((point) => point.atMs / 1000)),
            series('vfio_host_memory_available_bytes', points.map((point) => point.availableBytes)),
            series('vfio_host_zfs_arc_size_bytes', points.map((point) => point.zfsArc!.sizeBytes)),
            series('vfio_host_zfs_arc_min_bytes', points.map((point) => point.zfsArc!.minBytes)),
          ],
          promql_expr_test: [
            {
              expr: 'vfio:host_memory_headroom_change_bytes_per_second',
              eval_time: '5m',
              exp_samples: [{ labels: 'vfio:host_memory_headroom_change_bytes_per_second{instance="trend:9847",job="vfio"}', value: trend.changeBytesPerSecond }],
            },
            {
              expr: 'vfio:host_memory_exhaustion_seconds',
              eval_time: '5m',
              exp_samples: [{ labels: 'vfio:host_memory_exhaustion_seconds{instance="trend:9847",job="vfio"}', value: trend.exhaustionSeconds }],
            },
          ],
        },
      ],
    };
    expect(promtoolTestRules(stringify(unitTest)).output).toContain('SUCCESS');
  });

  it('is unknown from one sample, and after a second one on a draining host reads as the time left', async () => {
    const { root, flags } = copyHost('suprox-fixed');
    const config = configFor(flags);
    const sampler = createSampler(config, silentLogger);
    try {
      const first = buildReport((await sampler.sample()).snapshot, { reserveBytes: config.hostReserveBytes, vmid: undefined });
      expect(first.memory!.trend).toBeNull();
      expect(renderHtml(first, '/metrics')).toContain('its trend needs a second sample');

      // 1 GiB of MemAvailable gone by the next sample.
      const meminfo = path.join(root, 'proc/meminfo');
      const before = readFileSync(meminfo, 'utf8');
      const availableKiB = Number(/^MemAvailable:\s+(\d+) kB$/m.exec(before)![1]);
      writeFileSync(meminfo, before.replace(/^MemAvailable:\s+\d+ kB$/m, `MemAvailable:    ${availableKiB - 1024 * 1024} kB`));
      const second = buildReport((await sampler.sample()).snapshot, { reserveBytes: config.hostReserveBytes, vmid: undefined });
      const trend = second.memory!.trend!;
      expect(trend.changeBytesPerSecond).toBeLessThan(0);
      expect(trend.exhaustionSeconds).toBeCloseTo(second.memory!.headroomBytes / -trend.changeBytesPerSecond);
      expect(renderHtml(second, '/metrics')).toMatch(/<p class="bad">Headroom 1\.4 GiB: falling by [\d.]+ GiB a minute: gone in \d+ s at this pace<\/p>/);
      expect(renderText(second)).toMatch(/^ {2}headroom 1\.4 GiB, falling by [\d.]+ GiB a minute: gone in \d+ s at this pace$/m);
    } finally {
      await sampler.stop();
    }
  });
});
