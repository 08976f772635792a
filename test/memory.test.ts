import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
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

/** Each line is in the exposition, whole. */
const expectLines = (text: string, lines: string[]): void => {
  for (const line of lines) expect(text).toContain(line + '\n');
};

describe('memory collector', () => {
  it('reports the seed host memory, ARC and PSI in bytes and seconds', async () => {
    const { text } = await scrape(fixtureFlags('suprox'));
    expectLines(text, [
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
    ]);
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

  it('reports every hugepage pool from sysfs: the 1 GiB pool of a host whose default size is 2 MiB, per NUMA node too', async () => {
    const { text } = await scrape(fixtureFlags('pve-cluster'));
    expectLines(text, [
      'vfio_host_hugepage_size_bytes 2097152',
      'vfio_host_hugepages 0',
      'vfio_host_hugepage_page_size_bytes{size="1G"} 1073741824',
      'vfio_host_hugepage_pool_pages{size="1G"} 8',
      'vfio_host_hugepage_pool_free_pages{size="1G"} 8',
      'vfio_host_hugepage_pool_pages{size="2M"} 0',
      'vfio_host_numa_hugepage_pool_free_pages{node="0",size="1G"} 8',
    ]);
  });

  it('a node without memory has no pools and is left out; a kernel without hugetlbfs has none at all', async () => {
    const { root, flags } = copyHost('pve-cluster');
    mkdirSync(path.join(root, 'sys/devices/system/node/node1'));
    writeFileSync(path.join(root, 'sys/devices/system/node/node1/cpulist'), '8-15\n');
    const { text, errors } = await scrape(flags);
    expect(seriesLines(text, 'vfio_host_numa_hugepage_pool_pages')).toEqual(['vfio_host_numa_hugepage_pool_pages{node="0",size="2M"} 0', 'vfio_host_numa_hugepage_pool_pages{node="0",size="1G"} 8']);
    expect(errors).toEqual([]);
    rmSync(path.join(root, 'sys/kernel/mm/hugepages'), { recursive: true });
    rmSync(path.join(root, 'sys/devices/system/node/node0/hugepages'), { recursive: true });
    const without = await scrape(flags);
    expect(seriesLines(without.text, 'vfio_host_hugepage_pool_pages')).toEqual([]);
    expect(without.text).toContain('vfio_collector_success{collector="memory"} 1');
  });

  it('a pool count that is not a number fails the collector alone, naming the file', async () => {
    const { root, flags } = copyHost('pve-cluster');
    writeFileSync(path.join(root, 'sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages'), 'eight\n');
    const { text, errors } = await scrape(flags);
    expect(text).toContain('vfio_collector_success{collector="memory"} 0');
    expect(seriesLines(text, 'vfio_host_hugepage_pool_pages')).toEqual([]);
    expect(errors).toEqual([expect.stringMatching(/hugepages-1048576kB\/free_hugepages: not a page count: \\"eight\\"/)]);
  });
});
