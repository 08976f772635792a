import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeCgroupDirs } from './helpers/cgroup.js';
import { findBinary, memoryLogger, sampledApp, seriesLines } from './helpers/fixtures.js';
import { proxmoxRootfs } from './helpers/fake-vm.js';
import { qmpCommands } from './helpers/qemu.js';

/**
 * A real QEMU with a virtio balloon and its QMP socket, laid out as Proxmox lays it out
 * (`/run/qemu-server/<vmid>.{pid,qmp}`, the config under `/etc/pve/nodes/<node>/qemu-server`), read
 * through the real /proc. Vanilla QEMU has no `-id`: the VM id comes from the pid file.
 */

const vmid = '977';
const MiB = 1024 * 1024;
const cleanups: (() => void | Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function procStatusBytes(pid: number): { rss: number; locked: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), locked: kb('VmLck') + kb('VmPin') };
}

/** The test's own v1 memory cgroup gets a `qemu.slice/<vmid>.scope` child, as Proxmox's scope; undefined without a v1 memory controller. */
function makeScope(): string | undefined {
  const own = /^\d+:memory:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
  const base = own === undefined ? undefined : path.join('/sys/fs/cgroup/memory', own);
  if (base === undefined || !existsSync(base)) return undefined;
  // A parent of its own: the OOM test makes a qemu.slice beside it at the same time.
  const parent = path.join(base, 'vfio-vm-qemu-test');
  const scope = path.join(parent, 'qemu.slice', `${vmid}.scope`);
  mkdirSync(scope, { recursive: true });
  cleanups.push(() => removeCgroupDirs([scope, path.dirname(scope), parent]));
  return scope;
}

async function waitUntilDead(pid: number): Promise<void> {
  const dead = (): boolean => !existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  for (let tries = 0; tries < 100 && !dead(); tries++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(dead()).toBe(true);
}

describe('vm collector against a real QEMU', () => {
  it('reports a running Proxmox-style VM from /proc and QMP, and nothing stale once it is killed', async () => {
    const { root, run } = proxmoxRootfs(vmid, 'boot: order=scsi0\ncores: 1\nmemory: 256\nname: probe\nonboot: 1\nostype: l26\n');
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const [pidFile, qmpSocket] = [path.join(run, `${vmid}.pid`), path.join(run, `${vmid}.qmp`)];

    const scope = makeScope();
    const qemu = [
      findBinary('qemu-system-x86_64'),
      '-machine', 'q35', '-accel', 'tcg,tb-size=32', '-m', '256',
      '-device', 'virtio-balloon-pci,id=balloon0',
      '-qmp', `unix:${qmpSocket},server=on,wait=off`,
      '-display', 'none', '-nodefaults', '-S', '-overcommit', 'mem-lock=on',
      '-daemonize', '-pidfile', pidFile,
    ].join(' ');
    const enter = scope === undefined ? '' : `echo $$ > ${scope}/cgroup.procs && `;
    // mlockall needs RLIMIT_MEMLOCK or CAP_IPC_LOCK; root may hold the capability without the right to raise the limit.
    const started = spawnSync('sh', ['-c', `ulimit -l unlimited 2>/dev/null; ${enter}exec ${qemu}`], { encoding: 'utf8', timeout: 20_000 });
    expect(started.stderr).toBe('');
    expect(started.status).toBe(0);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    // Cleanups run last-added first: the process dies before its scope is removed.
    cleanups.push(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      for (let tries = 0; tries < 100 && existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); tries++)
        spawnSync('sleep', ['0.05']);
    });

    const { log } = memoryLogger();
    const flags = [`--path.rootfs=${root}`, '--path.procfs=/proc', '--path.sysfs=/sys', '--no-collector.pci', '--no-collector.iommu', '--no-collector.host'];
    const before = procStatusBytes(pid);
    const { sampler, sample } = await sampledApp(flags, log);
    const after = procStatusBytes(pid);
    const vm = sample.snapshot.facts.vm!.vms.find((candidate) => candidate.vmid === vmid)!;
    const text = sample.text;

    expect(text).toContain(`vfio_vm_info{vmid="${vmid}",name="probe",source="proxmox",id="qemu/${vmid}",node="probe"} 1`);
    expect(text).toContain(`vfio_vm_running{vmid="${vmid}"} 1`);
    expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="${vmid}"} ${256 * MiB}`);
    expect(text).toContain(`vfio_vm_qmp_up{vmid="${vmid}"} 1`);
    // The exporter closed its QMP connection at once: QMP serves one client at a time and answers us now.
    const [balloon] = await qmpCommands(qmpSocket, [{ execute: 'query-balloon' }]);
    const actual = (balloon as { actual: number }).actual;
    expect(actual).toBe(256 * MiB);
    expect(text).toContain(`vfio_vm_memory_balloon_actual_bytes{vmid="${vmid}"} ${actual}`);

    expect(vm.process!.pid).toBe(pid);
    expect(vm.process!.rssBytes).toBeGreaterThan(0);
    expect(vm.process!.rssBytes).toBeGreaterThanOrEqual(Math.min(before.rss, after.rss) * 0.95);
    expect(vm.process!.rssBytes).toBeLessThanOrEqual(Math.max(before.rss, after.rss) * 1.05);
    // mem-lock=on locks guest RAM as VFIO pinning does, plus QEMU's own mappings.
    expect(vm.process!.lockedBytes).toBeGreaterThanOrEqual(256 * MiB);
    expect(vm.process!.lockedBytes).toBeGreaterThanOrEqual(Math.min(before.locked, after.locked));
    expect(vm.process!.lockedBytes).toBeLessThanOrEqual(Math.max(before.locked, after.locked));
    if (scope !== undefined) {
      const charged = Number(readFileSync(path.join(scope, 'memory.usage_in_bytes'), 'utf8'));
      expect(vm.process!.cgroupMemoryPath).toMatch(new RegExp(`/qemu\\.slice/${vmid}\\.scope$`));
      expect(vm.process!.cgroupMemoryBytes).toBeGreaterThanOrEqual(256 * MiB);
      expect(Math.abs(vm.process!.cgroupMemoryBytes! - charged) / charged).toBeLessThan(0.05);
    }

    process.kill(pid, 'SIGKILL');
    await waitUntilDead(pid);
    // SIGKILL leaves the pid file and socket behind, as the OOM killer does.
    expect(existsSync(pidFile)).toBe(true);
    const next = (await sampler.sample()).text;
    expect(next).toContain(`vfio_vm_running{vmid="${vmid}"} 0`);
    expect(next).toContain(`vfio_vm_memory_configured_bytes{vmid="${vmid}"} ${256 * MiB}`);
    // Only this VM's series: the real /proc may hold other QEMUs (tests running beside this one).
    for (const family of ['vfio_vm_memory_rss_bytes', 'vfio_vm_memory_locked_bytes', 'vfio_vm_memory_cgroup_bytes', 'vfio_vm_memory_balloon_actual_bytes', 'vfio_vm_qmp_up'])
      expect(seriesLines(next, family).filter((line) => line.includes(`vmid="${vmid}"`))).toEqual([]);
  });
});
