import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { proxmoxRootfs } from './helpers/fake-vm.js';
import { memoryLogger, sampledApp } from './helpers/fixtures.js';
import { qmpCommands, startQemu } from './helpers/qemu.js';

/**
 * Memory hotplug against a real QEMU: `-m 256,slots=2,maxmem=1G` starts with 256 MiB of base memory, and a
 * DIMM plugged over QMP (`object-add` a RAM backend, `device_add` a pc-dimm) adds to it. The running VM's
 * memory is what QMP `query-memory-size-summary` says (base + plugged), not the `-m` size.
 */
const vmid = '978';
const MiB = 1024 * 1024;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('a running VM with hotplugged memory', () => {
  it('reports base + plugged memory from QMP, the DIMM included', async () => {
    const { root, run } = proxmoxRootfs(vmid, 'hotplug: disk,network,usb,memory\nmemory: 256\nname: hotplug\nnuma: 1\nostype: l26\n');
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const qmpSocket = path.join(run, `${vmid}.qmp`);
    const qemu = await startQemu({ qmpSocket, memoryMiB: 256, memory: '256,slots=2,maxmem=1G' });
    cleanups.push(() => qemu.close());
    writeFileSync(path.join(run, `${vmid}.pid`), `${qemu.pid}\n`);

    const flags = [`--path.rootfs=${root}`, '--path.procfs=/proc', '--path.sysfs=/sys', '--no-collector.pci', '--no-collector.iommu', '--no-collector.host', '--no-collector.oom'];
    const { sampler, sample } = await sampledApp(flags, memoryLogger().log);
    expect(sample.text).toContain(`vfio_vm_running{vmid="${vmid}"} 1`);
    expect(sample.text).toContain(`vfio_vm_memory_configured_bytes{vmid="${vmid}"} ${256 * MiB}`);

    await qmpCommands(qmpSocket, [
      { execute: 'object-add', arguments: { 'qom-type': 'memory-backend-ram', id: 'mem-dimm0', size: 256 * MiB } },
      { execute: 'device_add', arguments: { driver: 'pc-dimm', id: 'dimm0', memdev: 'mem-dimm0' } },
    ]);
    const [summary] = await qmpCommands(qmpSocket, [{ execute: 'query-memory-size-summary' }]);
    expect(summary).toEqual({ 'base-memory': 256 * MiB, 'plugged-memory': 256 * MiB });

    const next = await sampler.sample();
    expect(next.text).toContain(`vfio_vm_memory_configured_bytes{vmid="${vmid}"} ${512 * MiB}`);
    expect(next.text).toContain(`vfio_vm_qmp_up{vmid="${vmid}"} 1`);
  });
});
