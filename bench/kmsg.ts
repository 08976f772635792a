/**
 * Kernel log throughput: generates a ~100 MB dump in the /dev/kmsg format (boot-like noise with
 * continuation lines, OOM reports, IOMMU faults), then follows it as the exporter does (KmsgFollower in
 * text mode feeding the KernelLogTally) and prints records per second.
 *
 *   npm run bench
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { KernelLogTally } from '../src/collectors/oom-tally.js';
import { KmsgFollower } from '../src/host/kmsg.js';

const targetBytes = 100 * 1024 * 1024;

const noise = [
  (n: number) => `igb 0000:01:00.0 eno1: igb: eno1 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: RX/TX ${n}\n SUBSYSTEM=net\n DEVICE=n2\n`,
  (n: number) => `audit: type=1400 audit(1709054103.402:${n}): apparmor="STATUS" operation="profile_load" profile="unconfined" name="lsb_release" pid=1032\n`,
  (n: number) => `vmbr0: port ${n % 9}(tap10${n % 10}i0) entered forwarding state\n`,
  (n: number) => `EXT4-fs (dm-1): re-mounted 5e1b6a7e-4a3c-4f6e-9f6c-2a3e4d0b9c11 r/w. Quota mode: none. ${n}\n`,
  (n: number) => ` dump_stack_lvl+0x48/0x70 ${n}\n`,
  (n: number) => `machine-qemu\\x5cx2d1\\x5cx2dwin10.scope: memory usage ${n}kB\n`,
];

function generateDump(): { text: string; records: number } {
  const parts: string[] = [];
  let bytes = 0;
  let sequence = 0;
  const add = (prio: number, body: string): void => {
    const record = `${prio},${sequence},${sequence * 1137},-;${body}`;
    sequence++;
    parts.push(record);
    bytes += record.length;
  };
  while (bytes < targetBytes) {
    if (sequence % 5000 === 0) {
      const pid = 30000 + (sequence % 9000);
      const vmid = 100 + (sequence % 50);
      add(6, `oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/qemu.slice/${vmid}.scope,task=kvm,pid=${pid},uid=0\n`);
      add(3, `Out of memory: Killed process ${pid} (kvm) total-vm:17339840kB, anon-rss:15797740kB, file-rss:1536kB, shmem-rss:0kB, UID:0 pgtables:31152kB oom_score_adj:0\n`);
    } else if (sequence % 997 === 0) {
      add(3, `DMAR: [DMA Read NO_PASID] Request device [01:00.0] fault addr 0xfffff000 [fault reason 0x06] PTE Read access is not set\n`);
    } else {
      add(6, noise[sequence % noise.length]!(sequence));
    }
  }
  return { text: parts.join(''), records: sequence };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-bench-kmsg-'));
try {
  const { text, records } = generateDump();
  const file = path.join(dir, 'kmsg');
  writeFileSync(file, text);
  const tally = new KernelLogTally();
  const context = { vms: [], bootTimeSeconds: 1709054088 };
  const follower = new KmsgFollower(file, {
    record: (record) => tally.add(record, context),
    malformed: () => tally.noteParseError(),
    overrun: () => tally.noteOverrun(),
  });
  const started = performance.now();
  await follower.poll();
  const seconds = (performance.now() - started) / 1000;
  await follower.close();
  const facts = tally.facts();
  if (facts.records !== records || facts.parseErrors !== 0) throw new Error(`read ${facts.records} of ${records} records, ${facts.parseErrors} parse errors`);
  const kills = facts.killCounts.reduce((sum, count) => sum + count.kills, 0);
  console.log(`kmsg: ${(text.length / 1024 / 1024).toFixed(1)} MB, ${records} records (${kills} OOM kills, ${facts.kernelEvents.iommu_fault} IOMMU faults) in ${seconds.toFixed(2)} s`);
  console.log(`kmsg: ${Math.round(records / seconds).toLocaleString('en-US')} records/s, ${(text.length / 1024 / 1024 / seconds).toFixed(1)} MB/s`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
