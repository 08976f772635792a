import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReport } from '../src/check/report.js';
import { renderText } from '../src/check/text.js';
import { addProxmoxVm } from './helpers/fake-vm.js';
import { memoryLogger, sampledApp, seriesLines } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';

/** A QEMU process in a fixture host copy's /proc, started by hand (no Proxmox `-id`). */
function addQemuProcess(root: string, pid: number, argv: string[]): void {
  const proc = path.join(root, 'proc', String(pid));
  mkdirSync(proc, { recursive: true });
  writeFileSync(path.join(proc, 'comm'), 'qemu-system-x86\n');
  writeFileSync(path.join(proc, 'cmdline'), ['/usr/bin/qemu-system-x86_64', ...argv].join('\0') + '\0');
  writeFileSync(path.join(proc, 'status'), `Name:\tqemu-system-x86\nState:\tS (sleeping)\nPid:\t${pid}\nVmLck:\t       0 kB\nVmPin:\t       0 kB\nVmRSS:\t  262144 kB\n`);
  writeFileSync(path.join(proc, 'cgroup'), '0::/user.slice/user-0.slice/session-3.scope\n');
}

async function sampleHost(flags: string[]) {
  const { sample } = await sampledApp([...flags, '--no-collector.oom'], memoryLogger().log);
  return { text: sample.text, snapshot: sample.snapshot };
}

describe('vm collector: what the VM will be', () => {
  it('a template with a passthrough device and too much memory is shown as a template and raises nothing in check', async () => {
    const { root, flags } = copyHost('suprox');
    addProxmoxVm(root, '9000', 'hostpci0: 0000:00:17.0\nmemory: 1048576\nname: gpu-template\nonboot: 1\ntemplate: 1\n');
    const { text, snapshot } = await sampleHost(flags);
    expect(text).toContain('vfio_vm_template{vmid="9000"} 1');
    expect(text).toContain('vfio_vm_template{vmid="101"} 0');
    const report = buildReport(snapshot, { reserveBytes: 1024 ** 3, vmid: '9000' });
    expect(report.problems.filter((problem) => problem.vmid === '9000')).toEqual([]);
    expect(report.problems.some((problem) => problem.alert === 'VfioPassthroughMemoryOvercommitted')).toBe(false);
    expect(report.vms.find((vm) => vm.vmid === '9000')).toMatchObject({ template: true, startHeadroom: null });
    expect(report.verdict).toMatchObject({ verdict: 'refuse', exitCode: 1 });
    expect(report.verdict!.reason).toContain('is a template');
  });

  it('400 digits of memory: counted as a config problem, no memory series, and check prints no Infinity', async () => {
    const { root, flags } = copyHost('suprox');
    addProxmoxVm(root, '120', `hostpci0: 0000:00:17.0\nmemory: ${'7'.repeat(400)}\nname: runaway\n`);
    const { text, snapshot } = await sampleHost(flags);
    expect(text).toContain('vfio_vm_config_parse_errors{vmid="120"} 1');
    expect(seriesLines(text, 'vfio_vm_memory_configured_bytes').filter((line) => line.includes('"120"'))).toEqual([]);
    const report = renderText(buildReport(snapshot, { reserveBytes: 1024 ** 3, vmid: '120' }));
    expect(report).not.toMatch(/Infinity|NaN/);
    expect(report).toContain('VM 120: CANNOT JUDGE');
  });

  it('a Proxmox VM whose QEMU lacks -id and whose pid file is gone is still that vmid, running, not a second VM under its -name', async () => {
    const { root, flags } = copyHost('suprox');
    addProxmoxVm(root, '150', 'memory: 256\nname: handmade\n');
    addQemuProcess(root, 4150, ['-name', 'handmade', '-pidfile', '/var/run/qemu-server/150.pid', '-m', '256']);
    const { text } = await sampleHost(flags);
    expect(text).toContain('vfio_vm_running{vmid="150"} 1');
    expect(seriesLines(text, 'vfio_vm_info').filter((line) => line.includes('handmade'))).toEqual(['vfio_vm_info{vmid="150",name="handmade",source="proxmox",id="qemu/150",node="suprox"} 1']);
  });

  it('an mdev is reported by its uuid under its parent PCI device, never as a pci_address; an unresolvable one keeps its own label', async () => {
    const { root, flags } = copyHost('suprox');
    const [resolved, orphan] = ['4b20d080-1b54-4048-85b3-a6a62d165c01', '9e0f3c1a-2b4d-4e6f-8a0b-1c2d3e4f5a6b'];
    const parentDir = path.join(root, 'sys/devices/pci0000:00/0000:00:02.0', resolved);
    mkdirSync(parentDir, { recursive: true });
    mkdirSync(path.join(root, 'sys/bus/mdev/devices'), { recursive: true });
    symlinkSync(`../../../devices/pci0000:00/0000:00:02.0/${resolved}`, path.join(root, 'sys/bus/mdev/devices', resolved));
    addQemuProcess(root, 4200, [
      '-name', 'vgpu-desktop',
      '-m', '4096',
      '-device', `vfio-pci,sysfsdev=/sys/bus/mdev/devices/${resolved},display=off`,
      '-device', `vfio-pci,sysfsdev=/sys/bus/mdev/devices/${orphan}`,
    ]);
    const { text } = await sampleHost(flags);
    expect(seriesLines(text, 'vfio_vm_mdev_device_info')).toEqual([
      `vfio_vm_mdev_device_info{vmid="vgpu-desktop",mdev_uuid="${resolved}",parent_pci_address="0000:00:02.0",slot="mdev0"} 1`,
      `vfio_vm_mdev_device_info{vmid="vgpu-desktop",mdev_uuid="${orphan}",parent_pci_address="",slot="mdev1"} 1`,
    ]);
    expect(text).toContain('vfio_vm_passthrough_devices{vmid="vgpu-desktop"} 2');
    expect(seriesLines(text, 'vfio_vm_pci_device_info').filter((line) => line.includes('vgpu-desktop'))).toEqual([]);
  });

  it('hugepages: any resolves per guest node against the host pools, with the next start memory; check judges each pool', async () => {
    const { root, flags } = copyHost('pve-cluster');
    // 10 GiB over two sockets is 5 GiB a node, 1 GiB pages; the pending 9 GiB, 4.5 GiB a node, takes 2 MiB pages.
    addProxmoxVm(root, '120', 'hostpci0: 0000:04:10.0\nhugepages: any\nmemory: 10240\nnuma: 1\nsockets: 2\n[PENDING]\nmemory: 9216\n');
    addProxmoxVm(root, '121', 'hostpci0: 0000:04:10.0\nhugepages: any\nmemory: 4096\nnuma: 1\n');
    const { text, snapshot } = await sampleHost(flags);
    expect(seriesLines(text, 'vfio_vm_hugepages_bytes')).toEqual([
      `vfio_vm_hugepages_bytes{vmid="106",size="1G"} ${16 * 1024 ** 3}`,
      `vfio_vm_hugepages_bytes{vmid="120",size="2M"} ${9 * 1024 ** 3}`,
      `vfio_vm_hugepages_bytes{vmid="121",size="1G"} ${4 * 1024 ** 3}`,
    ]);
    const report = buildReport(snapshot, { reserveBytes: 1024 ** 3, vmid: '121' });
    // The 1G pool has 8 free pages: 121 fits, 106 (16 pages, on boot) does not, and the 2M pool is empty for 120.
    expect(report.verdict).toMatchObject({ verdict: 'fits', exitCode: 0 });
    expect(report.verdict!.reason).toBe('VM 121 needs 4.0 GiB of 1G hugepages pinned and the host can give 8.0 GiB: 4.0 GiB to spare');
    const starts = report.problems.filter((problem) => problem.alert === 'VfioPassthroughVMStartWouldOOM').map(({ vmid, severity, summary }) => ({ vmid, severity, summary }));
    expect(starts).toEqual([
      {
        vmid: '106',
        severity: 'critical',
        summary: 'VM 106 (k8s-worker) needs 16.0 GiB of 1G hugepages but the pool has 8.0 GiB free: QEMU cannot map its memory and the start fails (no OOM kill), short by 8.0 GiB.',
      },
      { vmid: '120', severity: 'warning', summary: 'VM 120 needs 9.0 GiB of 2M hugepages but the pool has 0.0 GiB free: QEMU cannot map its memory and the start fails (no OOM kill), short by 9.0 GiB.' },
    ]);
    expect(report.problems.find((problem) => problem.vmid === '106')!.fix).toContain('echo 16 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages');
    expect(renderText(report)).toContain('hugepages 2M: 0 free of 0, 1G: 8 free of 8');
  });
});
