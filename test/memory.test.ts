import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { fixtureFlags, memoryLogger, sampledApp, seriesLines } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';

const scrape = async (flags: string[]) => {
  const { log, lines } = memoryLogger();
  const { app } = await sampledApp(flags, log);
  return { text: (await request(app).get('/metrics').expect(200)).text, errors: lines.filter((line) => line.startsWith('error')) };
};

describe('memory collector', () => {
  it('reports the seed host memory, ARC and PSI in bytes and seconds', async () => {
    const { text } = await scrape(fixtureFlags('suprox'));
    for (const line of [
      'vfio_host_memory_total_bytes 33400262656',
      'vfio_host_memory_available_bytes 9663676416',
      'vfio_host_memory_free_bytes 3909173248',
      'vfio_host_swap_total_bytes 8589930496',
      'vfio_host_swap_free_bytes 8589930496',
      'vfio_host_hugepages 0',
      'vfio_host_hugepages_free 0',
      'vfio_host_hugepage_size_bytes 2097152',
      'vfio_host_zfs_arc_size_bytes 6442450944',
      'vfio_host_zfs_arc_min_bytes 1019295744',
      'vfio_host_zfs_arc_max_bytes 16308722688',
      'vfio_host_memory_pressure_stalled_seconds_total{kind="some"} 48.211967',
      'vfio_host_memory_pressure_stalled_seconds_total{kind="full"} 21.87741',
      'vfio_collector_success{collector="memory"} 1',
    ])
      expect(text).toContain(line + '\n');
  });

  it('a host without ZFS or PSI has no ARC or pressure series and still succeeds', async () => {
    const { root, flags } = copyHost('suprox');
    rmSync(path.join(root, 'proc/spl'), { recursive: true });
    rmSync(path.join(root, 'proc/pressure'), { recursive: true });
    const { text, errors } = await scrape(flags);
    expect(seriesLines(text, 'vfio_host_zfs_arc_size_bytes')).toEqual([]);
    expect(seriesLines(text, 'vfio_host_memory_pressure_stalled_seconds_total')).toEqual([]);
    expect(text).toContain('vfio_collector_success{collector="memory"} 1');
    expect(errors).toEqual([]);
  });

  it('a meminfo without MemAvailable fails the collector alone, naming the file', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(root, 'proc/meminfo'), 'MemTotal: 1024 kB\nMemFree: 512 kB\n');
    const { text, errors } = await scrape(flags);
    expect(text).toContain('vfio_collector_success{collector="memory"} 0');
    expect(text).toContain('vfio_collector_success{collector="pci"} 1');
    expect(seriesLines(text, 'vfio_host_memory_total_bytes')).toEqual([]);
    expect(errors).toEqual([expect.stringMatching(/proc\/meminfo: no MemAvailable/)]);
  });

  it('a garbled pressure file is an error, the memory series are still there', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(root, 'proc/pressure/memory'), '\0\0garbage');
    const { text, errors } = await scrape(flags);
    expect(text).toContain('vfio_collector_success{collector="memory"} 0');
    expect(text).toContain('vfio_host_memory_available_bytes 9663676416\n');
    expect(errors).toEqual([expect.stringMatching(/pressure\/memory: pressure: no \\"some/)]);
  });
});
