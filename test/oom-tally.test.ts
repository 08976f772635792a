import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Vm } from '../src/collectors/vm-types.js';
import { KernelLogTally, type KernelLogFacts, type TallyContext } from '../src/collectors/oom-tally.js';
import { KmsgDumpParser } from '../src/parse/kmsg.js';
import { fixturesDir, hostDir } from './helpers/fixtures.js';
import { vm } from './helpers/vms.js';

const sample = (name: string): string => readFileSync(path.join(fixturesDir, 'kmsg', name), 'utf8');

function feed(tally: KernelLogTally, text: string, context: TallyContext): void {
  const parser = new KmsgDumpParser({ record: (record) => tally.add(record, context), malformed: () => tally.noteParseError() });
  parser.push(text);
  parser.flush();
}

function tallyOf(text: string, vms: Vm[] = [], bootTimeSeconds: number | undefined = 1709054088): KernelLogFacts {
  const tally = new KernelLogTally();
  feed(tally, text, { vms, bootTimeSeconds });
  return tally.facts();
}

const noKernelEvents = { vfio_pin_failed: 0, iommu_fault: 0, group_not_viable: 0, bar_reserve_failed: 0 };

describe('kernel log tally', () => {
  it("counts the seed's kill of VM 101 once, at its wall-clock time, with its RSS", () => {
    const facts = tallyOf(readFileSync(path.join(hostDir('suprox'), 'kmsg'), 'utf8'));
    expect(facts.killCounts).toEqual([{ vmid: '101', comm: 'kvm', constraint: 'CONSTRAINT_NONE', kills: 1 }]);
    expect(facts.lastKills).toEqual([
      {
        vmid: '101',
        pid: 32969,
        comm: 'kvm',
        constraint: 'CONSTRAINT_NONE',
        timestampSeconds: 1709054088 + 8037.623241,
        rssBytes: (15797740 + 1536 + 0) * 1024,
        taskMemcg: '/qemu.slice/101.scope',
      },
    ]);
    expect(facts.records).toBe(229);
    expect([facts.overruns, facts.parseErrors]).toEqual([0, 0]);
    expect(facts.kernelEvents).toEqual(noKernelEvents);
  });

  it('counts a real memcg kill of QEMU under its scope', () => {
    const facts = tallyOf(sample('memcg-oom-6.18.txt'));
    expect(facts.killCounts).toEqual([{ vmid: '977', comm: 'qemu-system-x86', constraint: 'CONSTRAINT_MEMCG', kills: 1 }]);
    expect(facts.lastKills[0]).toMatchObject({ pid: 14441, rssBytes: (156540 + 24396) * 1024, taskMemcg: '/system.slice/ci-runner.service/qemu.slice/977.scope' });
  });

  it('counts the global kill of a QEMU pinning its RAM through VFIO on 6.1 once, and no pin failure from the call trace', () => {
    const facts = tallyOf(sample('global-oom-vfio-6.1.txt'), [], 1796060000);
    expect(facts.killCounts).toEqual([{ vmid: '101', comm: 'qemu-system-x86', constraint: 'CONSTRAINT_NONE', kills: 1 }]);
    expect(facts.lastKills).toEqual([
      { vmid: '101', pid: 401, comm: 'qemu-system-x86', constraint: 'CONSTRAINT_NONE', timestampSeconds: 1796060000 + 169.621131, rssBytes: 1869080 * 1024, taskMemcg: '/qemu.slice/101.scope' },
    ]);
    // vfio_pin_pages_remote in the trace is the OOM's path, not a pin failure.
    expect(facts.kernelEvents).toEqual(noKernelEvents);
    expect([facts.records, facts.parseErrors]).toEqual([64, 0]);
  });

  it('reads 4.19: a global kill attributed by pid, a libvirt memcg kill by its escaped scope name', () => {
    const facts = tallyOf(sample('oom-4.19.txt'), [vm('100', {}, { pid: 2211 })]);
    expect(facts.killCounts).toEqual([
      { vmid: '100', comm: 'kvm', constraint: '', kills: 1 },
      { vmid: 'win10', comm: 'qemu-system-x86', constraint: 'CONSTRAINT_MEMCG', kills: 1 },
    ]);
    expect(tallyOf(sample('oom-4.19.txt')).killCounts[0]).toEqual({ vmid: '', comm: 'kvm', constraint: '', kills: 1 });
  });

  it('pairs 5.0–5.7 summaries with their kill lines', () => {
    expect(tallyOf(sample('oom-5.0.txt')).killCounts).toEqual([{ vmid: '104', comm: 'kvm', constraint: 'CONSTRAINT_NONE', kills: 1 }]);
    expect(tallyOf(sample('oom-5.4.txt')).killCounts).toEqual([{ vmid: '110', comm: 'kvm', constraint: 'CONSTRAINT_NONE', kills: 1 }]);
  });

  it('attributes the rest of an oom.group kill to the scope, and keeps QEMU as the VM\'s last kill', () => {
    const facts = tallyOf(sample('oom-group-6.1.txt'));
    expect(facts.killCounts).toEqual([
      { vmid: '106', comm: 'kvm', constraint: 'CONSTRAINT_MEMCG', kills: 1 },
      { vmid: '106', comm: 'swtpm', constraint: 'CONSTRAINT_MEMCG', kills: 1 },
    ]);
    expect(facts.lastKills.map(({ vmid, pid }) => [vmid, pid])).toEqual([['106', 7101]]);
  });

  it('a QEMU thread named as the victim (CPU 3/KVM, IO mon_iothread) is the VM\'s kill: counted, timed, with its RSS', () => {
    const facts = tallyOf(sample('oom-thread-victim-6.8.txt'));
    expect(facts.killCounts).toEqual([
      { vmid: '104', comm: 'CPU 3/KVM', constraint: 'CONSTRAINT_MEMCG', kills: 1 },
      { vmid: '105', comm: 'IO mon_iothread', constraint: 'CONSTRAINT_NONE', kills: 1 },
    ]);
    expect(facts.lastKills.map(({ vmid, pid, timestampSeconds, rssBytes }) => [vmid, pid, timestampSeconds, rssBytes])).toEqual([
      ['104', 5532, 1709054088 + 9120.441512, (8383244 + 7172) * 1024],
      ['105', 6133, 1709054088 + 9988.105044, (15793132 + 6144) * 1024],
    ]);
  });

  it('a global kill without a cgroup path in the ring at start: the VM whose QEMU the pid names now', () => {
    const tally = new KernelLogTally();
    feed(tally, sample('oom-4.19.txt'), { vms: [], bootTimeSeconds: undefined, startProcessVmids: new Map([[2211, '100']]) });
    expect(tally.facts().killCounts[0]).toEqual({ vmid: '100', comm: 'kvm', constraint: '', kills: 1 });
  });

  it('joins a summary logged in pieces, another record between them', () => {
    expect(tallyOf(sample('pr-cont-split.txt')).killCounts).toEqual([{ vmid: '107', comm: 'kvm', constraint: 'CONSTRAINT_MEMCG', kills: 1 }]);
  });

  it('counts passthrough trouble by kind', () => {
    const facts = tallyOf(sample('passthrough-trouble.txt'));
    expect(facts.kernelEvents).toEqual({ vfio_pin_failed: 3, iommu_fault: 8, group_not_viable: 3, bar_reserve_failed: 2 });
    expect(facts.killCounts).toEqual([]);
  });

  it('counts nothing for lines that only look like OOM kills or trouble', () => {
    const facts = tallyOf(sample('look-alikes.txt'));
    expect(facts.killCounts).toEqual([]);
    expect(facts.lastKills).toEqual([]);
    expect(facts.kernelEvents).toEqual(noKernelEvents);
    expect([facts.records, facts.parseErrors]).toEqual([13, 0]);
  });

  it('finds the one kill among thousands of unrelated records', () => {
    const noise = (from: number, count: number) =>
      Array.from({ length: count }, (_value, index) => `6,${from + index},${(from + index) * 1000},-;igb 0000:01:00.0 eno1: link ${index % 2 ? 'up' : 'down'} \\x5cx2d ${index}\n SUBSYSTEM=net\n DEVICE=n2\n`).join('');
    const seed = sample('memcg-oom-6.18.txt').replace(/^(\d+),(\d+),/gm, (_line, prio: string, seq: string) => `${prio},${Number(seq) + 10000},`);
    const facts = tallyOf(noise(0, 5000) + seed + noise(20000, 5000));
    expect(facts.killCounts).toEqual([{ vmid: '977', comm: 'qemu-system-x86', constraint: 'CONSTRAINT_MEMCG', kills: 1 }]);
    expect(facts.records).toBe(10000 + 98);
  });

  it('counts each record once by sequence number: a second reader or a re-read of the ring changes nothing', () => {
    const ring = sample('oom-group-6.1.txt') + sample('passthrough-trouble.txt');
    const first = new KernelLogTally();
    const context = { vms: [], bootTimeSeconds: 1709054088 };
    feed(first, ring, context);
    const once = first.facts();
    feed(first, ring, context);
    expect(first.facts()).toEqual(once);
    // A restarted exporter reads the same ring and arrives at the same counts.
    expect(tallyOf(ring)).toEqual(once);
  });

  it('never lowers a count: at a new read, older records (lower numbers, earlier times) are ignored, newer ones add', () => {
    const tally = new KernelLogTally();
    const context = { vms: [], bootTimeSeconds: undefined };
    feed(tally, sample('oom-group-6.1.txt'), context);
    const before = tally.facts();
    tally.beginRead();
    feed(tally, sample('passthrough-trouble.txt') + sample('oom-5.4.txt'), context);
    const after = tally.facts();
    expect(after.records).toBe(before.records + 8);
    expect(after.kernelEvents).toEqual(before.kernelEvents);
    expect(after.killCounts).toEqual([...before.killCounts, { vmid: '110', comm: 'kvm', constraint: 'CONSTRAINT_NONE', kills: 1 }]);
    expect(after.lastKills.at(-1)!.timestampSeconds).toBeUndefined();
  });

  it('attributes by the cgroup of a VM seen in the last sample, by a shortened libvirt name, and by pid', () => {
    const custom = vm('nas', { source: 'libvirt' }, { pid: 4000, cgroupPath: '/custom.slice/nas-vm.scope' });
    const longName = vm('windows-11-gaming-rig', { source: 'libvirt' }, { pid: 4100 });
    const facts = tallyOf(
      [
        '6,1,1,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/custom.slice/nas-vm.scope,task_memcg=/custom.slice/nas-vm.scope/emulator,task=qemu-system-x86,pid=4000,uid=107',
        '3,2,2,-;Memory cgroup out of memory: Killed process 4000 (qemu-system-x86) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:107 pgtables:4kB oom_score_adj:0',
        '6,3,3,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/machine.slice/machine-qemu\\x5cx2d2\\x5cx2dwindows\\x5cx2d11\\x5cx2dgaming.scope/libvirt/emulator,task=qemu-system-x86,pid=4100,uid=107',
        '3,4,4,-;Out of memory: Killed process 4100 (qemu-system-x86) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:107 pgtables:4kB oom_score_adj:0',
        '3,5,5,-;Out of memory: Killed process 4200 (kvm) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0',
        '',
      ].join('\n'),
      [custom, longName, vm('120', {}, { pid: 4200, cgroupPath: '/' })],
    );
    expect(facts.killCounts.map(({ vmid, constraint }) => [vmid, constraint])).toEqual([
      ['nas', 'CONSTRAINT_MEMCG'],
      ['windows-11-gaming-rig', 'CONSTRAINT_NONE'],
      ['120', ''],
    ]);
  });
});

/** The seed's summary and kill lines, renumbered: a global OOM kill of VM `vmid`'s QEMU. */
const kill = (sequence: number, micros: number, vmid: string, pid: number): string =>
  `6,${sequence},${micros},-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=ns,mems_allowed=0,global_oom,task_memcg=/qemu.slice/${vmid}.scope,task=kvm,pid=${pid},uid=0\n` +
  `3,${sequence + 1},${micros + 120},-;Out of memory: Killed process ${pid} (kvm) total-vm:17339840kB, anon-rss:15797740kB, file-rss:1536kB, shmem-rss:0kB, UID:0 pgtables:31152kB oom_score_adj:0\n`;

/** Ordinary records `from`…`to`, one every `step` µs from `startMicros`. */
function plain(from: number, to: number, startMicros: number, step = 1000): string {
  let text = '';
  for (let sequence = from; sequence <= to; sequence++) text += `6,${sequence},${startMicros + (sequence - from) * step},-;vmbr0: port 6(tap101i0) entered disabled state\n`;
  return text;
}

const killsOf = (facts: KernelLogFacts): Record<string, number> => Object.fromEntries(facts.killCounts.map(({ vmid, kills }) => [vmid, kills]));
const context: TallyContext = { vms: [], bootTimeSeconds: 1709054088 };

describe('kernel log numbering', () => {
  it('a dump spanning a reboot: the new boot, numbered from 0 again, is counted too', () => {
    const facts = tallyOf(plain(100, 110, 5_000_000_000) + kill(111, 5_000_020_000, '101', 32969) + '5,0,0,-;Linux version 6.5.13-1-pve\n' + plain(1, 20, 1000) + kill(21, 60_000_000, '102', 4711));
    expect(killsOf(facts)).toEqual({ '101': 1, '102': 1 });
    expect(facts.sequenceBreaks).toEqual({ new_boot: 1, outlier: 0 });
    expect(facts.records).toBe(11 + 2 + 1 + 20 + 2);
  });

  it('a new boot whose surviving records reuse numbers already read, at other times, is a new boot, not a replay', () => {
    // The ring of the new boot has rotated past its start: numbers 40… again, but at times of a young boot.
    const facts = tallyOf(plain(30, 60, 9_000_000_000) + plain(40, 45, 120_000_000) + kill(46, 121_000_000, '101', 555));
    expect(killsOf(facts)).toEqual({ '101': 1 });
    expect(facts.sequenceBreaks).toEqual({ new_boot: 1, outlier: 0 });
    expect(facts.records).toBe(31 + 6 + 2);
  });

  it('one record with a huge sequence number hides nothing after it', () => {
    const facts = tallyOf(plain(1, 5, 1000) + '6,999999999999999,6000,-;bogus\n' + plain(6, 10, 7000) + kill(11, 20_000, '101', 9));
    expect(killsOf(facts)).toEqual({ '101': 1 });
    expect(facts.records).toBe(5 + 1 + 5 + 2);
    expect(facts.sequenceBreaks).toEqual({ new_boot: 0, outlier: 1 });
  });

  it('a huge sequence number carried over a restart hides at most the second after it', () => {
    const before = new KernelLogTally();
    feed(before, plain(1, 5, 1000) + '6,999999999999999,6000,-;bogus\n', context);
    const after = new KernelLogTally();
    after.restore(before.state());
    after.beginRead();
    feed(after, plain(1, 5, 1000) + plain(6, 10, 3_000_000) + kill(11, 4_000_000, '101', 9), context);
    expect(killsOf(after.facts())).toEqual({ '101': 1 });
    expect(after.facts().records).toBe(6 + 5 + 2);
  });

  it('records read twice count once, within one read (a dump holding them twice) or after a reopen; a dump of two boots read again adds nothing', () => {
    const tally = new KernelLogTally();
    const twoBoots = plain(1, 10, 900_000_000) + kill(11, 950_000_000, '101', 9) + plain(1, 12, 1000) + kill(13, 21_000, '102', 7) + plain(13, 14, 30_000);
    feed(tally, twoBoots, context);
    const once = tally.facts();
    expect(killsOf(once)).toEqual({ '101': 1, '102': 1 });
    // The second boot, and its record 13 logged twice with two times (a bogus record).
    expect(once.sequenceBreaks).toEqual({ new_boot: 1, outlier: 1 });
    feed(tally, twoBoots, context);
    tally.beginRead();
    feed(tally, twoBoots, context);
    expect(tally.facts()).toEqual(once);
  });
});
