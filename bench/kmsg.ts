/**
 * Kernel log throughput: follows a dump in the /dev/kmsg format as the exporter does (KmsgFollower in
 * text mode feeding the KernelLogTally) and measures records per second. `npm run bench` runs it on the
 * synthetic host's 50 MB backlog; alone it generates a ~100 MB dump (boot-like noise with continuation
 * lines, OOM reports, IOMMU faults) and prints the rate.
 *
 *   node --import tsx bench/kmsg.ts [<dump> <records>]
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { KernelLogTally, tallyHandlers } from '../src/collectors/oom-tally.js';
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

export interface KmsgThroughput {
  bytes: number;
  records: number;
  oomKills: number;
  iommuFaults: number;
  seconds: number;
}

/** Follows a dump from its start as the exporter does; throws unless it reads `expectedRecords` records without a parse error. */
export async function followDump(file: string, expectedRecords: number): Promise<KmsgThroughput> {
  const tally = new KernelLogTally();
  const context = { vms: [], bootTimeSeconds: 1709054088 };
  const follower = new KmsgFollower(file, tallyHandlers(tally, () => context));
  const started = performance.now();
  // A dump larger than any kernel ring takes more than one poll.
  while (!(await follower.poll()));
  const seconds = (performance.now() - started) / 1000;
  await follower.close();
  const facts = tally.facts();
  if (facts.records !== expectedRecords || facts.parseErrors !== 0) throw new Error(`read ${facts.records} of ${expectedRecords} records, ${facts.parseErrors} parse errors`);
  return {
    bytes: statSync(file).size,
    records: facts.records,
    oomKills: facts.killCounts.reduce((sum, count) => sum + count.kills, 0),
    iommuFaults: facts.kernelEvents.iommu_fault,
    seconds,
  };
}

const [fileArgument, recordsArgument] = process.argv.slice(2);
if (process.argv[1] === fileURLToPath(import.meta.url) && fileArgument !== undefined) {
  // `bench/kmsg.ts <dump> <records>`: one JSON line, for bench/index.ts.
  process.stdout.write(JSON.stringify(await followDump(fileArgument, Number(recordsArgument))) + '\n');
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-bench-kmsg-'));
  try {
    const { text, records } = generateDump();
    const file = path.join(dir, 'kmsg');
    writeFileSync(file, text);
    const result = await followDump(file, records);
    console.log(`kmsg: ${(text.length / 1024 / 1024).toFixed(1)} MB, ${records} records (${result.oomKills} OOM kills, ${result.iommuFaults} IOMMU faults) in ${result.seconds.toFixed(2)} s`);
    console.log(`kmsg: ${Math.round(records / result.seconds).toLocaleString('en-US')} records/s, ${(text.length / 1024 / 1024 / result.seconds).toFixed(1)} MB/s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
