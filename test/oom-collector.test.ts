import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { oomCollector } from '../src/collectors/oom.js';
import type { Snapshot } from '../src/collectors/types.js';
import type { Vm } from '../src/collectors/vm-types.js';
import { silentLogger } from '../src/log.js';
import { renderSnapshot } from '../src/metrics/render.js';
import { configFor, findBinary, fixturesDir, memoryLogger, sampledApp, seriesLines } from './helpers/fixtures.js';
import { scrape, startExporterProcess, waitReady } from './helpers/exporter-process.js';
import { addProxmoxVm } from './helpers/fake-vm.js';
import { copyHost } from './helpers/tmp-host.js';
import { vm } from './helpers/vms.js';

const settings = { sampleIntervalSeconds: 15, qmpTimeoutSeconds: 2, vmReadTimeoutSeconds: 2.5 };
const build = { version: 'test', revision: 'test', nodejs: 'test' };

async function scrapeWithLog(flags: string[]) {
  const { log, lines } = memoryLogger();
  const { app, sampler } = await sampledApp(flags, log);
  const { text } = await request(app).get('/metrics').expect(200);
  await sampler.stop();
  return { text, errors: lines.filter((line) => line.startsWith('error')), lines };
}

/** One sample of the oom collector alone, with the VMs a previous sample of the vm collector would have found. */
async function collectWithVms(flags: string[], vms: Vm[]) {
  const paths = configFor(flags).paths;
  const collector = oomCollector.create(settings, silentLogger);
  const previous: Snapshot = { takenAtMs: 0, outcomes: [], facts: { vm: { vms } } };
  const collected = await collector.collect({ paths, log: silentLogger, settings, previous });
  await collector.close?.();
  const snapshot: Snapshot = { takenAtMs: 0, outcomes: [{ name: 'oom', success: collected.errors.length === 0, durationSeconds: 0, errors: collected.errors }], facts: { oom: collected.facts } };
  return { ...collected, text: Buffer.concat(renderSnapshot(snapshot, [oomCollector], build)).toString() };
}

describe('oom collector', () => {
  it('a kernel log path that is a directory: oom reports failure with one clear line, vmstat and the other collectors stay', async () => {
    const { root, flags } = copyHost('suprox');
    const { text, errors } = await scrapeWithLog([...flags, `--path.kmsg=${root}/proc`]);
    expect(text).toContain('vfio_collector_success{collector="oom"} 0');
    expect(text).toContain('vfio_collector_success{collector="pci"} 1');
    expect(text).toContain('vfio_collector_success{collector="iommu"} 1');
    expect(text).toContain('vfio_oom_kills_total 1');
    // Never read: absent rather than a misleading 0.
    expect(seriesLines(text, 'vfio_oom_kill_events_total')).toEqual([]);
    expect(seriesLines(text, 'vfio_kmsg_records_total')).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`${root}/proc: EISDIR: is a directory`);
  });

  it('a missing kernel log: one line naming the path', async () => {
    const { root, flags } = copyHost('suprox');
    rmSync(path.join(root, 'kmsg'));
    const { text, errors } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_collector_success{collector="oom"} 0');
    expect(errors).toEqual([expect.stringContaining(`${root}/kmsg: ENOENT`)]);
  });

  it('a kernel log that cannot be read by a non-root user (mode 000, and the real /dev/kmsg): EACCES/EPERM with the hint, other collectors fine', async () => {
    const { root, flags } = copyHost('suprox');
    chmodSync(root, 0o755);
    chmodSync(path.join(root, 'kmsg'), 0o000);
    const asNobody = { uid: 65534, gid: 65534, env: { ...process.env, HOME: '/tmp' } };
    const exporter = await startExporterProcess([...flags, '--log.level=info'], asNobody);
    await waitReady(exporter.port);
    const text = await scrape(exporter.port);
    expect(text).toContain('vfio_collector_success{collector="oom"} 0');
    expect(text).toContain('vfio_collector_success{collector="pci"} 1');
    expect(text).toContain('vfio_oom_kills_total 1');
    expect(exporter.log()).toMatch(/level=error msg="collector problem" collector=oom err=".*kmsg: EACCES: permission denied.*needs root or CAP_SYSLOG\)"/);
    exporter.child.kill();

    const device = await startExporterProcess([...flags, '--path.kmsg=/dev/kmsg'], asNobody);
    await waitReady(device.port);
    expect(await scrape(device.port)).toContain('vfio_collector_success{collector="oom"} 0');
    // dmesg_restrict=1 (Debian's default) refuses the open; 0 allows it, which this test then cannot show.
    const restricted = readFileSync('/proc/sys/kernel/dmesg_restrict', 'utf8').trim() === '1';
    if (restricted) expect(device.log()).toMatch(/err="\/dev\/kmsg: EPERM: operation not permitted.*needs root or CAP_SYSLOG\)"/);
  });

  it('follows a dump that grows: a record cut mid-way counts once completed, counters only go up', async () => {
    const { root, flags } = copyHost('suprox-noiommu');
    const kmsg = path.join(root, 'kmsg');
    const { sampler } = await sampledApp(flags);
    const first = await sampler.sample();
    expect(first.text).toContain('vfio_kmsg_records_total 126');
    const kill = readFileSync(path.join(fixturesDir, 'kmsg/oom-5.4.txt'), 'utf8').replace(/^(\d+),(\d+),/gm, (_all, prio: string, seq: string) => `${prio},${Number(seq) - 14410 + 126},`);
    const cutAt = kill.indexOf('total-vm:') + 4;
    appendFileSync(kmsg, kill.slice(0, cutAt));
    const second = await sampler.sample();
    expect(seriesLines(second.text, 'vfio_oom_kill_events_total')).toEqual([]);
    expect(second.text).toContain('vfio_kmsg_records_total 132');
    appendFileSync(kmsg, kill.slice(cutAt));
    const third = await sampler.sample();
    expect(seriesLines(third.text, 'vfio_oom_kill_events_total')).toEqual(['vfio_oom_kill_events_total{vmid="110",comm="kvm",constraint="CONSTRAINT_NONE"} 1']);
    expect(third.text).toContain('vfio_kmsg_records_total 134');
    // A dump replaced by an older, shorter one lowers nothing.
    writeFileSync(kmsg, readFileSync(kmsg, 'utf8').split('\n').slice(0, 10).join('\n') + '\n');
    const fourth = await sampler.sample();
    expect(seriesLines(fourth.text, 'vfio_oom_kill_events_total')).toEqual(seriesLines(third.text, 'vfio_oom_kill_events_total'));
    expect(fourth.text).toContain('vfio_kmsg_records_total 134');
    await sampler.stop();
  });

  it('bad records count as parse errors and hide no good one: garbage, invalid UTF-8, a 10 KB record', async () => {
    const { root, flags } = copyHost('suprox');
    const kmsg = path.join(root, 'kmsg');
    appendFileSync(
      kmsg,
      Buffer.concat([
        Buffer.from('this is not a record\n'),
        Buffer.from([0xff, 0xfe, 0x0a]),
        Buffer.from(`6,229,8040000000,-;${'x'.repeat(10 * 1024)}\n`),
        Buffer.from('3,230,8040000001,-;Out of memory: Killed process 4242 (\\xff\\xfeqemu) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0\n'),
        Buffer.from('6,231,8040000002,-;raw bytes '),
        Buffer.from([0xc3, 0x28, 0x0a]),
      ]),
    );
    const { text, errors } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_kmsg_parse_errors_total 2');
    expect(text).toContain('vfio_kmsg_records_total 232');
    expect(text).toContain('vfio_oom_kill_events_total{vmid="101",comm="kvm",constraint="CONSTRAINT_NONE"} 1');
    expect(text).toContain('vfio_oom_kill_events_total{vmid="",comm="\uFFFD\uFFFDqemu",constraint=""} 1');
    expect(text).toContain('vfio_collector_success{collector="oom"} 1');
    expect(errors).toEqual([]);
    const promtool = spawnSync(findBinary('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(promtool.stdout + promtool.stderr).toBe('');
  });

  it("reads the running VMs' cgroup OOM counters, v2 memory.events and v1 memory.oom_control, and skips scopes that are gone", async () => {
    const { root, flags } = copyHost('suprox');
    const cgroup = (...parts: string[]) => path.join(root, 'sys/fs/cgroup', ...parts);
    mkdirSync(cgroup('qemu.slice/101.scope'), { recursive: true });
    writeFileSync(cgroup('qemu.slice/101.scope/memory.events'), 'low 0\nhigh 0\nmax 311\noom 1\noom_kill 1\noom_group_kill 0\n');
    mkdirSync(cgroup('memory/qemu.slice/102.scope'), { recursive: true });
    writeFileSync(cgroup('memory/qemu.slice/102.scope/memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    const vms = [
      vm('101', {}, { pid: 32969, cgroupPath: '/qemu.slice/101.scope' }),
      vm('102', {}, { pid: 33100, cgroupPath: '/qemu.slice/102.scope' }),
      vm('103', {}, { pid: 33200, cgroupPath: '/qemu.slice/103.scope' }),
      vm('105'),
    ];
    const { facts, errors, text } = await collectWithVms(flags, vms);
    expect(errors).toEqual([]);
    expect(facts.cgroupOomKills).toEqual([
      { vmid: '101', kills: 1 },
      { vmid: '102', kills: 2 },
    ]);
    expect(seriesLines(text, 'vfio_vm_cgroup_oom_kills_total')).toEqual(['vfio_vm_cgroup_oom_kills_total{vmid="101"} 1', 'vfio_vm_cgroup_oom_kills_total{vmid="102"} 2']);
    const promtool = spawnSync(findBinary('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(promtool.stdout + promtool.stderr).toBe('');
  });

  it("attributes a kill without cgroup information to the VM whose QEMU pid the last sample saw", async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(root, 'kmsg'), readFileSync(path.join(fixturesDir, 'kmsg/oom-4.19.txt')));
    const { facts } = await collectWithVms(flags, [vm('100', {}, { pid: 2211, cgroupPath: '/qemu.slice/100.scope' })]);
    expect(facts.kernelLog?.killCounts).toEqual([
      { vmid: '100', comm: 'kvm', constraint: '', kills: 1 },
      { vmid: 'win10', comm: 'qemu-system-x86', constraint: 'CONSTRAINT_MEMCG', kills: 1 },
    ]);
  });

  it('a kill without cgroup information in the ring at start, before any VM was reported: the VM whose QEMU the pid names', async () => {
    const { root, flags } = copyHost('suprox');
    writeFileSync(path.join(root, 'kmsg'), readFileSync(path.join(fixturesDir, 'kmsg/oom-4.19.txt')));
    // A QEMU started by hand with a Proxmox-style pid file and no -id: its VM is the pid file's.
    addProxmoxVm(root, '100', 'memory: 2048\n', 2211);
    writeFileSync(path.join(root, 'proc/2211/cmdline'), ['qemu-system-x86_64', '-name', 'pihole', '-pidfile', '/var/run/qemu-server/100.pid', '-m', '2048'].join('\0') + '\0');
    const collector = oomCollector.create(settings, silentLogger);
    const collected = await collector.collect({ paths: configFor(flags).paths, log: silentLogger, settings, previous: undefined });
    await collector.close?.();
    expect(collected.facts.kernelLog?.killCounts).toEqual([
      { vmid: '100', comm: 'kvm', constraint: '', kills: 1 },
      { vmid: 'win10', comm: 'qemu-system-x86', constraint: 'CONSTRAINT_MEMCG', kills: 1 },
    ]);
  });
});
