import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQmpServers } from '../bench/qmp-servers.js';
import { generateSyntheticHost, type SyntheticHost } from '../bench/synthetic/host.js';
import { createSampler } from '../src/exporter.js';
import { silentLogger } from '../src/log.js';
import { parseMeminfo } from '../src/parse/meminfo.js';
import { configFor, seriesLines } from './helpers/fixtures.js';

/** The benchmark's host generator at a small scale: it must produce what it claims, or the benchmark measures something else. */
const scale = { physicalFunctions: 2, vfsPerPf: 7, vms: 10, otherNodeVms: 3, otherProcesses: 20, kmsgBytes: 256 * 1024, oomEvents: 5 };

/** One QMP exchange as a client does it: greeting, capabilities, query-balloon. */
function queryBalloon(socket: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const client = net.createConnection(socket);
    const lines: string[] = [];
    let buffered = '';
    const timer = setTimeout(() => client.destroy(new Error(`${socket}: no answer`)), 5000);
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => {
      buffered += chunk;
      const parts = buffered.split('\r\n');
      buffered = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (lines.length === 1) client.write('{"execute":"qmp_capabilities"}\n');
        if (lines.length === 2) client.write('{"execute":"query-balloon"}\n');
        if (lines.length === 3) {
          clearTimeout(timer);
          client.end();
          resolve(lines);
        }
      }
    });
    client.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

describe('synthetic host generator (benchmark)', () => {
  let root: string;
  let host: SyntheticHost;
  beforeAll(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'vfio-synthetic-'));
    host = generateSyntheticHost(root, scale);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes the PCI tree it claims: PFs with their VFs, each in its own IOMMU group, VFs of VMs on vfio-pci', async () => {
    const sampler = createSampler(configFor(host.flags), silentLogger);
    const { text } = await sampler.sample();
    await sampler.stop();
    // 10 platform devices, a root port and a PF per NIC, the VFs.
    expect(host.summary.pciDevices).toBe(10 + 2 * 2 + 2 * 7);
    expect(seriesLines(text, 'vfio_pci_device_info')).toHaveLength(host.summary.pciDevices);
    const vfs = seriesLines(text, 'vfio_pci_device_info').filter((line) => /device_id="0x(101e|1889)"/.test(line));
    expect(vfs).toHaveLength(14);
    const assigned = new Set(host.vms.flatMap((vm) => vm.vfs));
    expect(assigned.size).toBeGreaterThan(0);
    expect(seriesLines(text, 'vfio_pci_device_vfio_bound').filter((line) => line.endsWith(' 1'))).toHaveLength(assigned.size);
    for (const address of assigned) expect(text).toContain(`vfio_pci_device_driver_info{pci_address="${address}",driver="vfio-pci"} 1`);
    for (const line of vfs) {
      const group = /iommu_group="(\d+)"/.exec(line)![1];
      expect(text).toContain(`vfio_iommu_group_devices{iommu_group="${group}"} 1`);
    }
    expect(text).toContain('vfio_pci_device_info{pci_address="0000:10:00.2",vendor_id="0x15b3",device_id="0x101e"');
    expect(assigned.has(host.spareVf)).toBe(false);
    expect(text).toContain(`vfio_pci_device_vfio_bound{pci_address="${host.spareVf}"} 0`);
    // The health and boot files a 6.x kernel shows: SR-IOV counts on PFs, FLR on VFs, a modalias everywhere.
    expect(text).toContain(`vfio_pci_device_sriov_numvfs{pci_address="0000:10:00.0"} ${scale.vfsPerPf}`);
    expect(text).toContain('vfio_pci_device_reset_method_info{pci_address="0000:10:00.2",reset_method="flr"} 1');
    expect(seriesLines(text, 'vfio_pci_device_boot_vfio_reserved')).toHaveLength(host.summary.pciDevices);
    expect(text).not.toMatch(/vfio_collector_success\{collector="[a-z_]+"\} 0/);
  });

  it('has the VMs it claims: this node\'s configs behind etc/pve/qemu-server, half of them running as kvm with a pid file', () => {
    const configs = readdirSync(path.join(root, 'root/etc/pve/qemu-server')).filter((file) => file.endsWith('.conf'));
    expect(configs).toHaveLength(scale.vms);
    expect(readdirSync(path.join(root, 'root/etc/pve/nodes/pve-bench-2/qemu-server'))).toHaveLength(scale.otherNodeVms);
    const running = readdirSync(path.join(root, 'root/run/qemu-server'))
      .filter((file) => file.endsWith('.pid'))
      .map((file) => Number(readFileSync(path.join(root, 'root/run/qemu-server', file), 'utf8')))
      .filter((pid) => readdirSync(path.join(root, 'proc')).includes(String(pid)));
    expect(running).toHaveLength(scale.vms / 2);
    expect(host.summary.runningVms).toBe(scale.vms / 2);
    for (const pid of running) {
      expect(readFileSync(path.join(root, 'proc', String(pid), 'comm'), 'utf8')).toBe('kvm\n');
      const argv = readFileSync(path.join(root, 'proc', String(pid), 'cmdline'), 'utf8').split('\0');
      expect(argv.slice(0, 2)).toEqual(['/usr/bin/kvm', '-id']);
      expect(readFileSync(path.join(root, 'proc', String(pid), 'cgroup'), 'utf8')).toBe(`0::/qemu.slice/${argv[2]}.scope\n`);
      expect(readFileSync(path.join(root, 'proc', String(pid), 'status'), 'utf8')).toMatch(/^VmPin:\s+\d+ kB$/m);
    }
  });

  it('serves QMP on every running VM\'s socket: the real greeting, capabilities, query-balloon', async () => {
    const servers = await startQmpServers(host.qmp);
    try {
      expect(host.qmp).toHaveLength(scale.vms / 2);
      for (const endpoint of host.qmp) {
        const [greeting, capabilities, balloon] = await queryBalloon(endpoint.socket);
        expect(JSON.parse(greeting!)).toMatchObject({ QMP: { capabilities: ['oob'] } });
        expect(JSON.parse(capabilities!)).toEqual({ return: {} });
        expect(JSON.parse(balloon!)).toEqual(
          endpoint.balloonActualBytes === undefined ? { error: { class: 'DeviceNotActive', desc: expect.any(String) } } : { return: { actual: endpoint.balloonActualBytes } },
        );
      }
    } finally {
      await servers.close();
    }
  });

  it('writes a kernel log of the claimed size with the claimed OOM kills of VMs, and the counters that go with it', () => {
    const kmsg = readFileSync(path.join(root, 'kmsg'), 'utf8');
    expect(kmsg.length).toBeGreaterThanOrEqual(scale.kmsgBytes);
    const headers = kmsg.split('\n').filter((line) => line !== '' && !line.startsWith(' '));
    expect(headers.every((line) => /^\d+,\d+,\d+,-;/.test(line))).toBe(true);
    const sequences = headers.map((line) => Number(line.split(',')[1]));
    expect(sequences).toEqual(sequences.map((_, index) => index));
    const summaries = headers.filter((line) => line.includes(';oom-kill:constraint='));
    const kills = headers.filter((line) => /;Out of memory: Killed process \d+ \(kvm\)/.test(line));
    expect(summaries).toHaveLength(scale.oomEvents);
    expect(kills).toHaveLength(scale.oomEvents);
    for (const summary of summaries) expect(summary).toMatch(/task_memcg=\/qemu\.slice\/\d+\.scope,task=kvm,pid=\d+,uid=0$/);
    expect(readFileSync(path.join(root, 'proc/vmstat'), 'utf8')).toContain(`\noom_kill ${scale.oomEvents}\n`);
    expect(parseMeminfo(readFileSync(path.join(root, 'proc/meminfo'), 'utf8')).get('MemTotal')).toBeGreaterThan(0);
  });
});
