import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { vmCollector } from '../src/collectors/vm.js';
import type { Vm } from '../src/collectors/vm-types.js';
import { addProxmoxVm, qmpSocketPath } from './helpers/fake-vm.js';
import { configFor, memoryLogger, sampledApp, seriesLines } from './helpers/fixtures.js';
import { fakeQmpServer } from './helpers/qmp-server.js';
import { fuseAvailable, hangingMount } from './helpers/hanging-fs.js';
import { copyHost } from './helpers/tmp-host.js';

const GiB = 1024 ** 3;

async function scrapeWithLog(flags: string[]) {
  const { log, lines } = memoryLogger();
  const { app, sample } = await sampledApp([...flags, '--no-collector.pci', '--no-collector.iommu'], log);
  const { text } = await request(app).get('/metrics').expect(200);
  const vmSeconds = sample.snapshot.outcomes.find((outcome) => outcome.name === 'vm')!.durationSeconds;
  return { text, lines, vmSeconds, vms: sample.snapshot.facts.vm?.vms ?? [] };
}

const configDir = (root: string): string => path.join(root, 'root/etc/pve/nodes/suprox/qemu-server');

describe('vm collector on bad Proxmox configs', () => {
  it('an unparsable line: the VM is still reported, the error counted, a warning names the file and line', async () => {
    const { root, flags } = copyHost('suprox');
    const file = path.join(configDir(root), '101.conf');
    writeFileSync(file, 'name: truenas\nmemory: 16384\nhostpci0 0000:00:17.0,pcie=1\nonboot: 1\n');
    const { text, lines } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_info{vmid="101",name="truenas",source="proxmox",id="qemu/101",node="suprox"} 1');
    expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="101"} ${16 * GiB}`);
    expect(text).toContain('vfio_vm_start_on_boot{vmid="101"} 1');
    expect(text).toContain('vfio_vm_config_parse_errors{vmid="101"} 1');
    expect(text).toContain('vfio_vm_config_parse_errors{vmid="100"} 0');
    expect(text).toContain('vfio_collector_success{collector="vm"} 1');
    const warnings = lines.filter((line) => line.startsWith('warn VM config problem'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`"file":"${path.join(root, 'root/etc/pve/qemu-server/101.conf')}"`);
    expect(warnings[0]).toContain('"line":3');
  });

  it('warns once about an unchanged bad config, not on every sample', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(configDir(root), '103.conf'), 'memory: sixteen\n');
    const { log, lines } = memoryLogger();
    const { sampler } = await sampledApp([...flags, '--no-collector.pci', '--no-collector.iommu'], log);
    await sampler.sample();
    expect(lines.filter((line) => line.startsWith('warn VM config problem'))).toHaveLength(1);
    expect(sampler.latest!.text).toContain('vfio_vm_config_parse_errors{vmid="103"} 1');
    expect(seriesLines(sampler.latest!.text, 'vfio_vm_memory_configured_bytes').filter((line) => line.includes('"103"'))).toEqual([]);
  });

  it('an unknown key is ignored without a warning', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(configDir(root), '103.conf'), 'name: debian-build\nmemory: 8192\nfrobnicate: yes please\naffinity: 0-3\n');
    const { text, lines } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_config_parse_errors{vmid="103"} 0');
    expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="103"} ${8 * GiB}`);
    expect(lines.filter((line) => line.startsWith('warn') && !line.includes('QMP'))).toEqual([]);
  });

  it('a binary config and a huge one: an error for those VMs only, the others intact', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(configDir(root), '104.conf'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00]));
    writeFileSync(path.join(configDir(root), '105.conf'), '#' + 'x'.repeat(2 * 1024 * 1024) + '\nmemory: 1024\n');
    const { text, lines } = await scrapeWithLog(flags);
    for (const vmid of ['104', '105']) {
      expect(text).toContain(`vfio_vm_info{vmid="${vmid}",name="",source="proxmox",id="qemu/${vmid}",node="suprox"} 1`);
      expect(text).toContain(`vfio_vm_config_parse_errors{vmid="${vmid}"} 1`);
      expect(text).toContain(`vfio_vm_running{vmid="${vmid}"} 0`);
      expect(text).not.toMatch(new RegExp(`vfio_vm_(start_on_boot|passthrough_devices|balloon_enabled|memory_\\w+)\\{vmid="${vmid}"`));
    }
    expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="101"} ${16 * GiB}`);
    expect(text).toContain('vfio_vm_running{vmid="100"} 1');
    expect(text).toContain('vfio_collector_success{collector="vm"} 0');
    const errors = lines.filter((line) => line.startsWith('error'));
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/VM 104: .*104\.conf: binary content/);
    expect(errors[1]).toMatch(/VM 105: .*105\.conf: larger than 1048576 bytes/);
  });

  it('an unknown PCI mapping is counted against the VM that uses it', async () => {
    const { root, flags } = copyHost('pve-cluster');
    writeFileSync(path.join(root, 'root/etc/pve/nodes/pve1/qemu-server/107.conf'), 'name: nas\nmemory: 4096\nhostpci0: mapping=hba,pcie=1\n');
    const { text, lines } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_config_parse_errors{vmid="107"} 1');
    expect(text).toContain('vfio_vm_passthrough_devices{vmid="107"} 0');
    const warnings = lines.filter((line) => line.startsWith('warn VM config problem'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('107.conf');
    expect(warnings[0]).toContain('"line":3');
    expect(warnings[0]).toContain("hostpci0: PCI mapping 'hba' has no device for node 'pve1'");
  });
});

describe('vm collector on passthrough devices the host lacks', () => {
  it('a hostpci device not on the PCI bus is reported absent, the present ones present', async () => {
    const { root, flags } = copyHost('suprox');
    const file = path.join(configDir(root), '101.conf');
    writeFileSync(file, 'name: truenas\nmemory: 16384\nhostpci0: 0000:00:17.0,pcie=1\nhostpci1: 0000:ee:00.0\n');
    const { text } = await scrapeWithLog(flags);
    expect(seriesLines(text, 'vfio_vm_pci_device_present')).toEqual([
      'vfio_vm_pci_device_present{vmid="101",pci_address="0000:00:17.0",slot="hostpci0"} 1',
      'vfio_vm_pci_device_present{vmid="101",pci_address="0000:ee:00.0",slot="hostpci1"} 0',
    ]);
  });

  it('without a readable PCI bus, presence is unknown: no series rather than 0', async () => {
    const { flags } = copyHost('suprox');
    const { text } = await scrapeWithLog([...flags, '--path.sysfs=/nonexistent/sys']);
    expect(seriesLines(text, 'vfio_vm_pci_device_info')).not.toEqual([]);
    expect(seriesLines(text, 'vfio_vm_pci_device_present')).toEqual([]);
  });
});

describe('vm collector on pid files and processes', () => {
  it('a pid file naming a dead pid, a non-QEMU process, or another VM\'s QEMU: not running', async () => {
    const { root, flags } = copyHost('suprox-trouble');
    const run = path.join(root, 'root/run/qemu-server');
    writeFileSync(path.join(run, '101.pid'), '999999\n');
    addProxmoxVm(root, '100', 'name: pihole\nmemory: 2048\n', 1432);
    // VM 103's pid file names VM 100's kvm (a pid reused after 103 died): it is 100's, not 103's.
    addProxmoxVm(root, '103', 'name: debian-build\nmemory: 8192\n');
    writeFileSync(path.join(run, '103.pid'), '1432\n');
    const { text } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_running{vmid="101"} 0');
    expect(text).toContain('vfio_vm_running{vmid="102"} 0');
    expect(text).toContain('vfio_vm_running{vmid="103"} 0');
    expect(text).toContain('vfio_vm_running{vmid="100"} 1');
    expect(seriesLines(text, 'vfio_vm_memory_rss_bytes')).toEqual(['vfio_vm_memory_rss_bytes{vmid="100"} 536870912']);
    expect(text).toContain('vfio_collector_success{collector="vm"} 1');
  });

  it('a zombie QEMU is not running; a QEMU with a pid file but no config is reported as source qemu', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(root, 'proc/1432/status'), 'Name:\tkvm\nState:\tZ (zombie)\nPid:\t1432\n');
    addProxmoxVm(root, '300', 'memory: 1024\n', 3300);
    rmSync(path.join(configDir(root), '300.conf'));
    const { text } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_running{vmid="100"} 0');
    expect(text).toContain('vfio_vm_info{vmid="300",name="vm300",source="qemu",id="",node=""} 1');
    expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="300"} ${GiB}`);
    expect(seriesLines(text, 'vfio_vm_qmp_up')).toEqual([]);
  });

  it('a garbled /proc/<pid>/status keeps a running VM running, with no memory figure made up, and reports the VM', async () => {
    const { root, flags } = copyHost('suprox');
    const status = path.join(root, 'proc/1432/status');
    writeFileSync(status, 'Name:\tkvm\nState:\t\u0000\u0001garbage\nVmLck:\tlots\nVmPin:\t0 kB\nVmRSS:\tgarbage kB\n');
    const { text, lines } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_running{vmid="100"} 1');
    expect(seriesLines(text, 'vfio_vm_memory_rss_bytes').filter((line) => line.includes('"100"'))).toEqual([]);
    expect(seriesLines(text, 'vfio_vm_memory_locked_bytes').filter((line) => line.includes('"100"'))).toEqual([]);
    expect(text).toContain('vfio_vm_scrape_error{vmid="100"} 1');
    expect(text).toContain('vfio_vm_scrape_error{vmid="101"} 0');
    expect(lines.filter((line) => line.startsWith('error')).join('\n')).toMatch(/1432\/status: VmRSS: not a size in kB/);
  });

  it('a truncated /proc/<pid>/status gives no RSS series rather than 0', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(root, 'proc/1432/status'), 'Name:\tkvm\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1432\nVmPeak:\t3422');
    const { text } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_running{vmid="100"} 1');
    expect(seriesLines(text, 'vfio_vm_memory_rss_bytes').filter((line) => line.includes('"100"'))).toEqual([]);
    expect(text).toContain('vfio_vm_scrape_error{vmid="100"} 1');
  });

  it('reads the cgroup v1 memory controller when the host has one', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(root, 'proc/1432/cgroup'), '12:pids:/qemu.slice/100.scope\n4:memory:/qemu.slice/100.scope\n1:name=systemd:/qemu.slice/100.scope\n0::/qemu.slice/100.scope\n');
    const v1 = path.join(root, 'sys/fs/cgroup/memory/qemu.slice/100.scope');
    mkdirSync(v1, { recursive: true });
    writeFileSync(path.join(v1, 'memory.usage_in_bytes'), '1811939328\n');
    const { text, vms } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_memory_cgroup_bytes{vmid="100"} 1811939328');
    expect(vms.find((vm) => vm.vmid === '100')?.process?.cgroupPath).toBe('/qemu.slice/100.scope');
  });

  it('a libvirt domain named like a Proxmox VM id is left out with an error, not mixed into its series', async () => {
    const { root, flags } = copyHost('suprox');
    mkdirSync(path.join(root, 'root/etc/libvirt/qemu'), { recursive: true });
    writeFileSync(path.join(root, 'root/etc/libvirt/qemu/100.xml'), "<domain type='kvm'><name>100</name><memory unit='GiB'>64</memory></domain>\n");
    const { text, lines } = await scrapeWithLog(flags);
    expect(seriesLines(text, 'vfio_vm_info').filter((line) => line.includes('"100"'))).toEqual(['vfio_vm_info{vmid="100",name="pihole",source="proxmox",id="qemu/100",node="suprox"} 1']);
    expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="100"} ${2 * GiB}`);
    expect(text).toContain('vfio_collector_success{collector="vm"} 0');
    expect(lines.some((line) => line.includes('libvirt VM \\"100\\" has the id of a VM already reported'))).toBe(true);
  });

  it('a procfs that cannot be read fails the collector rather than reporting every VM stopped', async () => {
    const { flags } = copyHost('suprox');
    const { text, lines } = await scrapeWithLog([...flags, '--path.procfs=/nonexistent/proc']);
    expect(text).toContain('vfio_collector_success{collector="vm"} 0');
    expect(seriesLines(text, 'vfio_vm_running')).toEqual([]);
    expect(lines.filter((line) => line.startsWith('error')).join('\n')).toContain('/nonexistent/proc');
  });
});

describe('vm collector QMP', () => {
  it('a QMP server that accepts and never answers: qmp_up 0, and the sample ends at the deadline', async () => {
    const { root, flags } = copyHost('suprox');
    const server = await fakeQmpServer(qmpSocketPath(root, '100'), 'hang');
    const { text, lines, vmSeconds } = await scrapeWithLog([...flags, '--qmp.timeout=500ms']);
    expect(text).toContain('vfio_vm_qmp_up{vmid="100"} 0');
    expect(server.connections).toBe(1);
    expect(vmSeconds).toBeGreaterThanOrEqual(0.45);
    expect(vmSeconds).toBeLessThan(1.5);
    expect(lines.some((line) => line.startsWith('warn QMP query failed') && line.includes('no answer within 0.5s'))).toBe(true);
  });

  it('a QMP server that sends invalid JSON: qmp_up 0 for that VM only', async () => {
    const { root, flags } = copyHost('suprox-fixed');
    await fakeQmpServer(qmpSocketPath(root, '100'), 'garbage');
    await fakeQmpServer(qmpSocketPath(root, '101'), 'balloon');
    const { text, lines } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_qmp_up{vmid="100"} 0');
    expect(text).toContain('vfio_vm_qmp_up{vmid="101"} 1');
    expect(lines.some((line) => line.includes('"vmid":"100"') && line.includes('invalid JSON from QMP'))).toBe(true);
  });

  it('a QMP error answer (DeviceNotActive): qmp_up 0 and no balloon figure', async () => {
    const { root, flags } = copyHost('suprox');
    await fakeQmpServer(qmpSocketPath(root, '100'), 'error');
    const { text, lines } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_qmp_up{vmid="100"} 0');
    expect(seriesLines(text, 'vfio_vm_memory_balloon_actual_bytes')).toEqual([]);
    expect(lines.some((line) => line.includes('QMP error DeviceNotActive: No balloon device has been activated'))).toBe(true);
  });

  it('a QMP answer among events: balloon actual as QMP says, the socket closed at once', async () => {
    const { root, flags } = copyHost('suprox');
    const server = await fakeQmpServer(qmpSocketPath(root, '100'), 'balloon', 1610612736);
    const { text } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_qmp_up{vmid="100"} 1');
    expect(text).toContain('vfio_vm_memory_balloon_actual_bytes{vmid="100"} 1610612736');
    expect(server.commands).toEqual(['qmp_capabilities', 'query-balloon', 'query-memory-size-summary']);
    await expect.poll(() => server.closedByClient, { timeout: 1000 }).toBe(1);
  });

  it('a VM configured without a balloon device is asked query-status, not query-balloon', async () => {
    const { root, flags } = copyHost('suprox-fixed');
    const server = await fakeQmpServer(qmpSocketPath(root, '101'), 'balloon');
    const { text } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_vm_qmp_up{vmid="101"} 1');
    expect(server.commands).toEqual(['qmp_capabilities', 'query-status', 'query-memory-size-summary']);
    expect(seriesLines(text, 'vfio_vm_memory_balloon_actual_bytes').filter((line) => line.includes('"101"'))).toEqual([]);
  });

  it('ten VMs with hung QMP sockets: one deadline for the sample, not ten', async () => {
    const { root, flags } = copyHost('suprox');
    const vmids = Array.from({ length: 10 }, (_, index) => String(200 + index));
    const servers = await Promise.all(
      vmids.map(async (vmid, index) => {
        addProxmoxVm(root, vmid, `name: hung${vmid}\nmemory: 1024\n`, 5200 + index);
        return fakeQmpServer(qmpSocketPath(root, vmid), 'hang');
      }),
    );
    const deadline = 0.5;
    const { text, vmSeconds } = await scrapeWithLog([...flags, `--qmp.timeout=${deadline * 1000}ms`]);
    for (const vmid of vmids) expect(text).toContain(`vfio_vm_qmp_up{vmid="${vmid}"} 0`);
    expect(servers.map((server) => server.connections)).toEqual(vmids.map(() => 1));
    expect(vmSeconds).toBeGreaterThanOrEqual(deadline * 0.9);
    expect(vmSeconds).toBeLessThan(2 * deadline);
  });

  it('never opens a second exchange with a VM while the first still holds its socket', async () => {
    const { root, flags } = copyHost('suprox');
    const server = await fakeQmpServer(qmpSocketPath(root, '100'), 'hang');
    const config = configFor([...flags, '--qmp.timeout=400ms']);
    const { log } = memoryLogger();
    const settings = { sampleIntervalSeconds: 15, qmpTimeoutSeconds: config.qmpTimeoutSeconds, vmReadTimeoutSeconds: 2.5 };
    const collector = vmCollector.create(settings, log);
    const context = { paths: config.paths, log, settings, previous: undefined };
    const qmpOf = (vms: Vm[]) => vms.find((vm) => vm.vmid === '100')!.qmp!;
    const results = await Promise.all([collector.collect(context), collector.collect(context)]);
    const errors = results.map(({ facts }) => qmpOf(facts.vms).error).sort();
    expect(errors).toEqual(['no answer within 0.4s', 'previous QMP exchange still holds the socket']);
    expect(server.connections).toBe(1);
    // Once the first exchange has let go of the socket, the next sample asks again.
    expect(qmpOf((await collector.collect(context)).facts.vms).error).toBe('no answer within 0.4s');
    expect(server.connections).toBe(2);
  });
});

describe('vm collector on reads that hang', () => {
  it.skipIf(!fuseAvailable)('a config and a /proc/<pid>/cmdline that never answer cost their own VMs only, and are not read twice', async () => {
    const { root, flags } = copyHost('suprox');
    const mount = await hangingMount();
    try {
      // VM 200's config on a hung pmxcfs; VM 201 runs, but its cmdline read waits (an mmap lock held).
      symlinkSync(path.join(mount.dir, '200.conf'), path.join(configDir(root), '200.conf'));
      addProxmoxVm(root, '201', 'name: stuck\nmemory: 1024\n', 5201);
      rmSync(path.join(root, 'proc/5201/cmdline'));
      symlinkSync(path.join(mount.dir, 'cmdline-5201'), path.join(root, 'proc/5201/cmdline'));
      const { log, lines } = memoryLogger();
      // --sample.timeout=2s: each VM read gets 0.5s.
      const { sampler } = await sampledApp([...flags, '--no-collector.pci', '--no-collector.iommu', '--sample.timeout=2s'], log);
      for (const sample of [sampler.latest!, await sampler.sample()]) {
        const vm = sample.snapshot.outcomes.find((outcome) => outcome.name === 'vm')!;
        expect(vm.durationSeconds).toBeLessThan(1.5);
        expect(vm.errors.join('\n')).not.toContain('timed out after');
        const { text } = sample;
        expect(text).toContain('vfio_vm_running{vmid="100"} 1');
        expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="101"} ${16 * GiB}`);
        expect(text).toContain('vfio_vm_scrape_error{vmid="100"} 0');
        expect(text).toContain('vfio_vm_scrape_error{vmid="200"} 1');
        expect(text).toContain('vfio_vm_config_parse_errors{vmid="200"} 1');
        expect(text).toContain('vfio_vm_running{vmid="201"} 1');
        expect(text).toContain('vfio_vm_scrape_error{vmid="201"} 1');
        expect(seriesLines(text, 'vfio_vm_memory_rss_bytes').filter((line) => line.includes('"201"'))).toEqual([]);
      }
      // One line for each hung read, when it starts, however many samples it hangs through.
      expect(lines.filter((line) => line.startsWith('error') && line.includes('200.conf'))).toEqual([expect.stringMatching(/200\.conf: no answer within 0\.5s/)]);
      expect(lines.filter((line) => line.startsWith('error') && line.includes('process 5201'))).toEqual([expect.stringMatching(/not read again until it answers/)]);
      expect(mount.reads.sort()).toEqual(['/200.conf', '/cmdline-5201']);
    } finally {
      await mount.close();
    }
  });
});
