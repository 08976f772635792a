import { closeSync, openSync, writeSync } from 'node:fs';
import type { Random } from './random.js';

/**
 * A /dev/kmsg backlog (`prio,seq,usec,flags;message` records, continuation lines ` KEY=value`) of a busy
 * Proxmox host: bridge and tap churn, VF and driver chatter, audit denials, a few passthrough faults, and
 * OOM kills of VMs (each an `invoked oom-killer` line, the `oom-kill:` summary, the kill, the reaper).
 */

export interface OomVictim {
  vmid: number;
  pid: number;
  memoryMiB: number;
}

export interface KernelLogOptions {
  targetBytes: number;
  oomEvents: number;
  /** Picks the VM killed by each OOM event. */
  victims: readonly OomVictim[];
  /** Full addresses of VFs, for driver lines. */
  vfs: readonly string[];
  vmids: readonly number[];
}

export interface KernelLogSummary {
  bytes: number;
  records: number;
  oomEvents: number;
  /** Monotonic µs of the last record: the host's uptime when the log was saved. */
  lastMicros: number;
}

const hex2 = (value: number): string => value.toString(16).padStart(2, '0');

/** Ordinary records: [syslog prefix (facility*8 + level), message, continuation lines]. */
type Line = [number, string, string[]];

function ordinaryLine(random: Random, options: KernelLogOptions, sequence: number, seconds: number): Line {
  const vmid = random.pick(options.vmids);
  const vf = random.pick(options.vfs);
  const port = (vmid % 60) + 1;
  const roll = random.int(0, 99);
  if (roll < 16) return [6, `vmbr0: port ${port}(tap${vmid}i0) entered ${random.pick(['blocking', 'forwarding', 'disabled'])} state`, []];
  if (roll < 28) return [6, `fwbr${vmid}i0: port 2(tap${vmid}i0) entered ${random.pick(['blocking', 'forwarding', 'disabled'])} state`, []];
  if (roll < 36) return [6, `tap${vmid}i0: entered promiscuous mode`, []];
  if (roll < 46) return [6, `vfio-pci ${vf}: enabling device (0000 -> 0002)`, ['SUBSYSTEM=pci', `DEVICE=+pci:${vf}`]];
  if (roll < 52) return [6, `vfio-pci ${vf}: resetting`, ['SUBSYSTEM=pci', `DEVICE=+pci:${vf}`]];
  if (roll < 60)
    return [4, `mlx5_core ${vf}: mlx5_cmd_out_err:838:(pid ${1000 + (sequence % 30000)}): QUERY_VPORT_COUNTER(0x770) op_mod(0x0) failed, status bad parameter(0x3), syndrome (0x5a2ff3), err(-22)`, ['SUBSYSTEM=pci', `DEVICE=+pci:${vf}`]];
  if (roll < 66) return [6, `iavf ${vf}: NIC Link is Up Speed is 100 Gbps Full Duplex`, ['SUBSYSTEM=pci', `DEVICE=+pci:${vf}`]];
  if (roll < 74)
    return [5, `audit: type=1400 audit(${1_712_000_000 + Math.floor(seconds)}.${String(sequence % 1000).padStart(3, '0')}:${sequence}): apparmor="DENIED" operation="mount" class="mount" info="failed flags match" error=-13 profile="lxc-${vmid}_</var/lib/lxc>" name="/run/systemd/unit-root/" pid=${2000 + (sequence % 50000)} comm="(ogrotate)" srcname="/" flags="rw, rbind"`, []];
  if (roll < 80) return [4, `kvm_intel: kvm [${4000 + vmid}]: vcpu${vmid % 8}, guest rIP: 0xffffffff${(0x8a0a0000 + (sequence % 65536)).toString(16)} Unhandled WRMSR(0x48) = 0x0`, []];
  if (roll < 84) return [4, 'perf: interrupt took too long (2503 > 2500), lowering kernel.perf_event_max_sample_rate to 79750', []];
  if (roll < 88) return [6, `EXT4-fs (zd${vmid % 64}p1): mounted filesystem 9d2b1c4e-1e7a-4c1b-8e36-${String(vmid).padStart(12, '0')} r/w with ordered data mode. Quota mode: none.`, []];
  if (roll < 92) return [30, `systemd[1]: ${vmid}.scope: Deactivated successfully.`, []];
  // PFs sit on even buses; their VFs spill onto the next one.
  if (roll < 96) return [6, `ice 0000:${hex2(parseInt(vf.slice(5, 7), 16) & 0xfe)}:00.0: VF ${sequence % 255} is now trusted`, []];
  // Rare passthrough trouble the oom collector also counts.
  if (roll < 97) return [4, `vfio_pin_pages_remote: RLIMIT_MEMLOCK (65536) exceeded`, []];
  if (roll < 98) return [3, `DMAR: [DMA Read NO_PASID] Request device [${vf.slice(5)}] fault addr 0x${(0x7f000000 + sequence).toString(16)} [fault reason 0x06] PTE Read access is not set`, []];
  if (roll < 99) return [4, `vfio-pci ${vf}: BAR 0: can't reserve [mem 0xc8000000-0xc9ffffff 64bit pref]`, ['SUBSYSTEM=pci', `DEVICE=+pci:${vf}`]];
  return [6, `kvm: SMP vm created on host with unstable TSC; guest TSC will not be reliable`, []];
}

/** The records the kernel prints for one global OOM kill of a VM (mm/oom_kill.c, kernel 6.8). */
function oomLines(victim: OomVictim): Line[] {
  const anonKiB = victim.memoryMiB * 1024 - 4096;
  return [
    [4, `kvm invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0`, []],
    [6, `oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=qemu.slice,mems_allowed=0-1,global_oom,task_memcg=/qemu.slice/${victim.vmid}.scope,task=kvm,pid=${victim.pid},uid=0`, []],
    [3, `Out of memory: Killed process ${victim.pid} (kvm) total-vm:${anonKiB + 1_541_248}kB, anon-rss:${anonKiB}kB, file-rss:1536kB, shmem-rss:0kB, UID:0 pgtables:${Math.ceil(anonKiB / 512)}kB oom_score_adj:0`, []],
    [6, `oom_reaper: reaped process ${victim.pid} (kvm), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB`, []],
  ];
}

export function writeKernelLog(file: string, random: Random, options: KernelLogOptions): KernelLogSummary {
  const fd = openSync(file, 'w');
  let buffered: string[] = [];
  let bufferedBytes = 0;
  let bytes = 0;
  let sequence = 0;
  let micros = 3_000_000;
  let oomEvents = 0;
  const oomSpacing = options.targetBytes / options.oomEvents;
  let nextOomAt = oomSpacing / 2;
  const flush = (): void => {
    writeSync(fd, buffered.join(''));
    buffered = [];
    bufferedBytes = 0;
  };
  const emit = ([prefix, message, properties]: Line): void => {
    const record = `${prefix},${sequence++},${micros},-;${message}\n` + properties.map((property) => ` ${property}\n`).join('');
    micros += random.int(200, 120_000);
    buffered.push(record);
    bufferedBytes += record.length;
    bytes += record.length;
    if (bufferedBytes > 1 << 20) flush();
  };
  try {
    while (bytes < options.targetBytes || oomEvents < options.oomEvents) {
      if (oomEvents < options.oomEvents && bytes >= nextOomAt) {
        for (const line of oomLines(options.victims[oomEvents % options.victims.length]!)) emit(line);
        oomEvents++;
        nextOomAt += oomSpacing;
        continue;
      }
      emit(ordinaryLine(random, options, sequence, micros / 1e6));
    }
    flush();
  } finally {
    closeSync(fd);
  }
  return { bytes, records: sequence, oomEvents, lastMicros: micros };
}
