import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { oomCollector } from '../src/collectors/oom.js';
import type { Snapshot } from '../src/collectors/types.js';
import { renderSnapshot } from '../src/metrics/render.js';
import { configFor, memoryLogger, seriesLines } from './helpers/fixtures.js';
import { scrape, startExporterProcess, waitReady } from './helpers/exporter-process.js';
import { copyHost } from './helpers/tmp-host.js';

const settings = { sampleIntervalSeconds: 15, qmpTimeoutSeconds: 2, vmReadTimeoutSeconds: 2.5 };
const build = { version: 'test', revision: 'test', nodejs: 'test' };
const bootId = '5f0c6d6e-2b8e-4a61-9a43-3c1f1e0f6a11';

/** The seed's summary and kill lines, renumbered: a global OOM kill of VM `vmid`'s QEMU. */
const kill = (sequence: number, micros: number, vmid: string, pid: number): string =>
  `6,${sequence},${micros},-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=ns,mems_allowed=0,global_oom,task_memcg=/qemu.slice/${vmid}.scope,task=kvm,pid=${pid},uid=0\n` +
  `3,${sequence + 1},${micros + 120},-;Out of memory: Killed process ${pid} (kvm) total-vm:17339840kB, anon-rss:15797740kB, file-rss:1536kB, shmem-rss:0kB, UID:0 pgtables:31152kB oom_score_adj:0\n`;

/** The seed host (229 records, VM 101 killed at record 225), with a boot id and a state file of its own. */
function hostWithState() {
  const { root, flags } = copyHost('suprox');
  mkdirSync(path.join(root, 'proc/sys/kernel/random'), { recursive: true });
  writeFileSync(path.join(root, 'proc/sys/kernel/random/boot_id'), bootId + '\n');
  const stateFile = path.join(root, 'state/state.json');
  return { root, kmsg: path.join(root, 'kmsg'), stateFile, flags: [...flags, `--state.file=${stateFile}`] };
}

/** One run of the exporter's oom collector: samples until `close`, as between a start and a stop. */
function run(flags: string[]) {
  const config = configFor(flags);
  const { log, lines } = memoryLogger();
  const runSettings = { ...settings, stateFile: config.stateFile };
  const collector = oomCollector.create(runSettings, log);
  return {
    lines,
    async sample() {
      const collected = await collector.collect({ paths: config.paths, log, settings: runSettings, previous: undefined });
      const snapshot: Snapshot = { takenAtMs: 0, outcomes: [{ name: 'oom', success: collected.errors.length === 0, durationSeconds: 0, errors: collected.errors }], facts: { oom: collected.facts } };
      return { ...collected, text: Buffer.concat(await renderSnapshot(snapshot, [oomCollector], build)).toString('utf8') };
    },
    close: () => collector.close?.(),
  };
}

/** Keeps only the records from `sequence` on: the oldest ones rotated out of the ring. */
function rotateRing(kmsg: string, sequence: number): void {
  const lines = readFileSync(kmsg, 'utf8').split('\n');
  const from = lines.findIndex((line) => line.startsWith(`${line.split(',')[0]},${sequence},`));
  writeFileSync(kmsg, lines.slice(from).join('\n'));
}

const vmKills = (text: string) => seriesLines(text, 'vfio_oom_kill_events_total');

describe('kernel log counts across restarts', () => {
  it('kills stay counted when their records rotate out of the ring; a kill while stopped counts once, one seen before the restart not twice', async () => {
    const host = hostWithState();
    const first = run(host.flags);
    expect(vmKills((await first.sample()).text)).toEqual(['vfio_oom_kill_events_total{vmid="101",comm="kvm",constraint="CONSTRAINT_NONE"} 1']);
    appendFileSync(host.kmsg, kill(229, 8_100_000_000, '101', 41000));
    const before = await first.sample();
    expect(vmKills(before.text)).toEqual(['vfio_oom_kill_events_total{vmid="101",comm="kvm",constraint="CONSTRAINT_NONE"} 2']);
    expect(before.text).toContain('vfio_kmsg_records_total 231');
    await first.close();
    expect(statSync(host.stateFile).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(host.stateFile)).mode & 0o777).toBe(0o700);

    // While stopped: the first kill rotates out, VM 101 is killed again.
    rotateRing(host.kmsg, 227);
    appendFileSync(host.kmsg, kill(231, 8_200_000_000, '101', 42000));
    const second = run(host.flags);
    const after = await second.sample();
    expect(after.errors).toEqual([]);
    expect(vmKills(after.text)).toEqual(['vfio_oom_kill_events_total{vmid="101",comm="kvm",constraint="CONSTRAINT_NONE"} 3']);
    expect(after.text).toContain('vfio_kmsg_records_total 233');
    expect(seriesLines(after.text, 'vfio_vm_last_oom_kill_timestamp_seconds')).toEqual([`vfio_vm_last_oom_kill_timestamp_seconds{vmid="101"} ${1709054088 + 8200.00012}`]);
    expect(second.lines).toContainEqual(expect.stringMatching(/^info kernel log counts restored .*"records":231,"after_sequence":230/));
    await second.close();
  });

  it('a state file from another boot is not used: counts start from the ring, as Prometheus sees a new boot anyway', async () => {
    const host = hostWithState();
    const first = run(host.flags);
    appendFileSync(host.kmsg, kill(229, 8_100_000_000, '101', 41000));
    await first.sample();
    await first.close();
    writeFileSync(path.join(host.root, 'proc/sys/kernel/random/boot_id'), '0a7f3d55-95c4-4d2b-8e0e-7d1b9bd2c0f4\n');
    const second = run(host.flags);
    expect(vmKills((await second.sample()).text)).toEqual(['vfio_oom_kill_events_total{vmid="101",comm="kvm",constraint="CONSTRAINT_NONE"} 2']);
    expect(second.lines).toContainEqual(expect.stringMatching(/^info state file is from another boot/));
    await second.close();
  });

  it('a corrupt, mis-shaped or symlinked state file is not fatal: logged, counts from the ring, then replaced by a good one', async () => {
    for (const spoil of ['corrupt', 'wrong shape', 'symlink'] as const) {
      const host = hostWithState();
      mkdirSync(path.dirname(host.stateFile), { mode: 0o700 });
      const target = path.join(host.root, 'precious');
      writeFileSync(target, 'not to be overwritten\n');
      if (spoil === 'corrupt') writeFileSync(host.stateFile, '{"version":1,"bootId":"' + bootId + '","facts":{"rec');
      if (spoil === 'wrong shape') writeFileSync(host.stateFile, JSON.stringify({ version: 1, bootId, newest: null, facts: { records: -5 } }));
      if (spoil === 'symlink') symlinkSync(target, host.stateFile);
      const runOnce = run(host.flags);
      const sampled = await runOnce.sample();
      expect(sampled.errors).toEqual([]);
      expect(vmKills(sampled.text)).toEqual(['vfio_oom_kill_events_total{vmid="101",comm="kvm",constraint="CONSTRAINT_NONE"} 1']);
      expect(runOnce.lines, spoil).toContainEqual(expect.stringMatching(/^warn state file unreadable, counting from the kernel log ring/));
      await runOnce.close();
      expect(readFileSync(target, 'utf8')).toBe('not to be overwritten\n');
      expect(lstatSync(host.stateFile).isFile()).toBe(true);
      expect(JSON.parse(readFileSync(host.stateFile, 'utf8'))).toMatchObject({ version: 1, bootId, facts: { records: 229 } });
    }
  });

  it('a state directory that cannot be written is logged once, and sampling goes on', async () => {
    const host = hostWithState();
    writeFileSync(path.join(host.root, 'state'), 'a file where the directory should be\n');
    const runOnce = run(host.flags);
    expect((await runOnce.sample()).errors).toEqual([]);
    expect((await runOnce.sample()).errors).toEqual([]);
    expect(runOnce.lines.filter((line) => line.startsWith('warn cannot write state file'))).toHaveLength(1);
    await runOnce.close();
  });

  it('without a boot id nothing is kept, and that is logged', async () => {
    const { flags } = copyHost('suprox');
    const stateDir = path.join(flags[0]!.split('=')[1]!, '..', 'state');
    const runOnce = run([...flags, `--state.file=${stateDir}/state.json`]);
    await runOnce.sample();
    await runOnce.close();
    expect(existsSync(stateDir)).toBe(false);
    expect(runOnce.lines).toContainEqual(expect.stringMatching(/^warn no boot id: kernel log counts are not kept across restarts/));
  });

  it('the service keeps the counts over a stop and a start (SIGTERM writes the state)', async () => {
    const host = hostWithState();
    appendFileSync(host.kmsg, kill(229, 8_100_000_000, '101', 41000));
    const first = await startExporterProcess(host.flags);
    await waitReady(first.port);
    expect(vmKills(await scrape(first.port))).toEqual(['vfio_oom_kill_events_total{vmid="101",comm="kvm",constraint="CONSTRAINT_NONE"} 2']);
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGTERM');
    await exited;
    rotateRing(host.kmsg, 227);
    const second = await startExporterProcess(host.flags);
    await waitReady(second.port);
    expect(vmKills(await scrape(second.port))).toEqual(['vfio_oom_kill_events_total{vmid="101",comm="kvm",constraint="CONSTRAINT_NONE"} 2']);
  });
});

describe('kernel log anomalies', () => {
  it('a dump spanning a reboot and a record cut by truncation: counted, logged, and the kill after the reboot counted', async () => {
    const host = hostWithState();
    appendFileSync(host.kmsg, '5,0,0,-;Linux version 6.5.13-1-pve\n' + kill(1, 60_000_000, '102', 4711) + '6,3,61000000,-;cut mid-');
    const runOnce = run(host.flags);
    const first = await runOnce.sample();
    expect(vmKills(first.text)).toEqual([
      'vfio_oom_kill_events_total{vmid="101",comm="kvm",constraint="CONSTRAINT_NONE"} 1',
      'vfio_oom_kill_events_total{vmid="102",comm="kvm",constraint="CONSTRAINT_NONE"} 1',
    ]);
    expect(first.text).toContain('vfio_kmsg_sequence_breaks_total{kind="new_boot"} 1');
    expect(runOnce.lines).toContainEqual(expect.stringMatching(/^warn kernel log numbering broke, counting on .*"kind":"new_boot","sequence":0/));
    writeFileSync(host.kmsg, readFileSync(host.kmsg, 'utf8').split('\n').slice(0, 5).join('\n') + '\n');
    const second = await runOnce.sample();
    expect(second.text).toContain('vfio_kmsg_records_skipped_total{reason="cut"} 1');
    expect(runOnce.lines).toContainEqual(expect.stringMatching(/^warn kernel log record skipped .*"reason":"cut"/));
    expect(vmKills(second.text)).toEqual(vmKills(first.text));
    await runOnce.close();
  });
});
