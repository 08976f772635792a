import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { fixtureFlags, memoryLogger, sampledApp, seriesLines } from './helpers/fixtures.js';

const GiB = 1024 ** 3;

async function scrape(host: string): Promise<{ text: string; logs: string[] }> {
  const { log, lines } = memoryLogger();
  const { app } = await sampledApp(fixtureFlags(host), log);
  return { text: (await request(app).get('/metrics').expect(200)).text, logs: lines };
}

/** Every vfio_vm_* line of one VM, without the family name's common prefix. */
const vmSeries = (text: string, vmid: string): string[] =>
  text.split('\n').filter((line) => line.startsWith('vfio_vm_') && line.includes(`vmid="${vmid}"`));

describe('vm collector on the seed host (suprox)', async () => {
  const { text } = await scrape('suprox');

  it('reports VM 101 as the seed describes it: 16 GiB, ballooning on with an 8 GiB floor, the SATA controller, on boot', () => {
    expect(text).toContain('vfio_vm_info{vmid="101",name="truenas",source="proxmox",id="qemu/101",node="suprox"} 1');
    expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="101"} ${16 * GiB}`);
    expect(text).toContain('vfio_vm_balloon_enabled{vmid="101"} 1');
    expect(text).toContain(`vfio_vm_memory_balloon_min_bytes{vmid="101"} ${8 * GiB}`);
    expect(text).toContain('vfio_vm_passthrough_devices{vmid="101"} 1');
    expect(text).toContain('vfio_vm_pci_device_info{vmid="101",pci_address="0000:00:17.0",slot="hostpci0"} 1');
    expect(text).toContain('vfio_vm_start_on_boot{vmid="101"} 1');
  });

  it('reports VM 101 stopped: its pid file names the QEMU the OOM killer took, and no process series remain', () => {
    expect(text).toContain('vfio_vm_running{vmid="101"} 0');
    for (const family of ['rss', 'locked', 'cgroup', 'balloon_actual'])
      expect(seriesLines(text, `vfio_vm_memory_${family}_bytes`).filter((line) => line.includes('"101"'))).toEqual([]);
    expect(seriesLines(text, 'vfio_vm_qmp_up').filter((line) => line.includes('"101"'))).toEqual([]);
  });

  it('reports the running VM 100 from its kvm process: RSS, no locked memory, its scope, QMP down without a socket', () => {
    expect(text).toContain('vfio_vm_running{vmid="100"} 1');
    expect(text).toContain(`vfio_vm_memory_rss_bytes{vmid="100"} ${1698304 * 1024}`);
    expect(text).toContain('vfio_vm_memory_locked_bytes{vmid="100"} 0');
    expect(text).toContain('vfio_vm_memory_cgroup_bytes{vmid="100"} 1745031168');
    expect(text).toContain(`vfio_vm_memory_balloon_min_bytes{vmid="100"} ${GiB}`);
    expect(text).toContain('vfio_vm_qmp_up{vmid="100"} 0');
    expect(text).toContain('vfio_collector_success{collector="vm"} 1');
  });
});

describe('vm collector on the fixed seed host (suprox-fixed)', async () => {
  const { text } = await scrape('suprox-fixed');

  it('reports VM 101 at 12 GiB with ballooning off, running with the guest RAM locked', () => {
    expect(vmSeries(text, '101')).toEqual([
      'vfio_vm_info{vmid="101",name="truenas",source="proxmox",id="qemu/101",node="suprox"} 1',
      'vfio_vm_running{vmid="101"} 1',
      'vfio_vm_template{vmid="101"} 0',
      'vfio_vm_start_on_boot{vmid="101"} 1',
      'vfio_vm_passthrough_devices{vmid="101"} 1',
      'vfio_vm_pci_device_info{vmid="101",pci_address="0000:00:17.0",slot="hostpci0"} 1',
      'vfio_vm_pci_device_present{vmid="101",pci_address="0000:00:17.0",slot="hostpci0"} 1',
      `vfio_vm_memory_configured_bytes{vmid="101"} ${12 * GiB}`,
      'vfio_vm_memory_balloon_min_bytes{vmid="101"} 0',
      'vfio_vm_balloon_enabled{vmid="101"} 0',
      `vfio_vm_memory_rss_bytes{vmid="101"} ${12731904 * 1024}`,
      `vfio_vm_memory_locked_bytes{vmid="101"} ${12583424 * 1024}`,
      'vfio_vm_memory_cgroup_bytes{vmid="101"} 13177962496',
      'vfio_vm_qmp_up{vmid="101"} 0',
      'vfio_vm_scrape_error{vmid="101"} 0',
      'vfio_vm_config_parse_errors{vmid="101"} 0',
      // The kill before the fix is still in the kernel log.
      'vfio_vm_last_oom_kill_timestamp_seconds{vmid="101"} 1709062125.623241',
      'vfio_vm_oom_killed_rss_bytes{vmid="101"} 16178458624',
    ]);
  });
});

describe('vm collector on a libvirt host passing a GPU through (libvirt-gpu)', async () => {
  const { text } = await scrape('libvirt-gpu');

  it('reports the running domain from its status XML and QEMU process: GPU and HDMI audio, 1G hugepages, no balloon', () => {
    expect(text).toContain('vfio_vm_info{vmid="win10-gaming",name="win10-gaming",source="libvirt",id="",node=""} 1');
    expect(text).toContain('vfio_vm_running{vmid="win10-gaming"} 1');
    expect(text).toContain('vfio_vm_pci_device_info{vmid="win10-gaming",pci_address="0000:01:00.0",slot="hostdev0"} 1');
    expect(text).toContain('vfio_vm_pci_device_info{vmid="win10-gaming",pci_address="0000:01:00.1",slot="hostdev1"} 1');
    expect(text).toContain('vfio_vm_hugepages_info{vmid="win10-gaming",size="1G"} 1');
    expect(text).toContain('vfio_vm_balloon_enabled{vmid="win10-gaming"} 0');
    expect(text).toContain('vfio_vm_memory_balloon_min_bytes{vmid="win10-gaming"} 0');
    expect(text).toContain(`vfio_vm_memory_locked_bytes{vmid="win10-gaming"} ${16781312 * 1024}`);
    // Read from the machine scope, above libvirt/emulator where QEMU sits.
    expect(text).toContain('vfio_vm_memory_cgroup_bytes{vmid="win10-gaming"} 642998272');
    expect(text).toContain('vfio_vm_start_on_boot{vmid="win10-gaming"} 0');
  });

  it('reports the stopped autostart domain from its defined XML', () => {
    expect(vmSeries(text, 'ubuntu-server').sort()).toEqual(
      [
        'vfio_vm_info{vmid="ubuntu-server",name="ubuntu-server",source="libvirt",id="",node=""} 1',
        'vfio_vm_running{vmid="ubuntu-server"} 0',
        'vfio_vm_scrape_error{vmid="ubuntu-server"} 0',
        'vfio_vm_start_on_boot{vmid="ubuntu-server"} 1',
        'vfio_vm_template{vmid="ubuntu-server"} 0',
        'vfio_vm_passthrough_devices{vmid="ubuntu-server"} 0',
        `vfio_vm_memory_configured_bytes{vmid="ubuntu-server"} ${4 * GiB}`,
        `vfio_vm_memory_balloon_min_bytes{vmid="ubuntu-server"} ${2 * GiB}`,
        'vfio_vm_balloon_enabled{vmid="ubuntu-server"} 1',
        'vfio_vm_config_parse_errors{vmid="ubuntu-server"} 0',
      ].sort(),
    );
  });

  it('reports a QEMU started by hand as source qemu, without a cgroup figure from its login session', () => {
    expect(text).toContain('vfio_vm_info{vmid="scratch",name="scratch",source="qemu",id="",node=""} 1');
    expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="scratch"} ${2 * GiB}`);
    expect(text).toContain('vfio_vm_balloon_enabled{vmid="scratch"} 1');
    expect(vmSeries(text, 'scratch').filter((line) => /cgroup|config_parse|balloon_min/.test(line))).toEqual([]);
  });

  it('queries no QMP socket on libvirt: libvirt owns its monitor', () => {
    expect(seriesLines(text, 'vfio_vm_qmp_up')).toEqual([]);
    expect(text).toContain('vfio_collector_success{collector="vm"} 1');
  });
});

describe('vm collector on a Proxmox cluster node (pve-cluster, node pve1)', async () => {
  const { text, logs } = await scrape('pve-cluster');

  it("reports only this node's VMs, not pve2's", () => {
    expect(seriesLines(text, 'vfio_vm_info')).toEqual([
      'vfio_vm_info{vmid="102",name="win11",source="proxmox",id="qemu/102",node="pve1"} 1',
      'vfio_vm_info{vmid="105",name="opnsense",source="proxmox",id="qemu/105",node="pve1"} 1',
      'vfio_vm_info{vmid="106",name="k8s-worker",source="proxmox",id="qemu/106",node="pve1"} 1',
      'vfio_vm_info{vmid="9000",name="win11-template",source="proxmox",id="qemu/9000",node="pve1"} 1',
    ]);
  });

  it('expands a short 01:00 to both I350 functions and resolves mapping= for this node', () => {
    expect(seriesLines(text, 'vfio_vm_pci_device_info')).toEqual([
      'vfio_vm_pci_device_info{vmid="102",pci_address="0000:01:00.0",slot="hostpci0"} 1',
      'vfio_vm_pci_device_info{vmid="102",pci_address="0000:01:00.1",slot="hostpci0"} 1',
      'vfio_vm_pci_device_info{vmid="105",pci_address="0000:02:00.0",slot="hostpci0"} 1',
      'vfio_vm_pci_device_info{vmid="106",pci_address="0000:04:10.0",slot="hostpci0"} 1',
      'vfio_vm_pci_device_info{vmid="9000",pci_address="0000:01:00.0",slot="hostpci0"} 1',
      'vfio_vm_pci_device_info{vmid="9000",pci_address="0000:01:00.1",slot="hostpci0"} 1',
    ]);
  });

  it('shows the template as one: it has no start headroom and commits nothing', () => {
    expect(text).toContain('vfio_vm_template{vmid="9000"} 1');
    expect(text).toContain('vfio_vm_template{vmid="102"} 0');
  });

  it('exposes the [PENDING] memory change apart from the current config, ignoring the snapshot', () => {
    expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="102"} ${8 * GiB}`);
    expect(text).toContain(`vfio_vm_pending_memory_configured_bytes{vmid="102"} ${12 * GiB}`);
    expect(text).toContain('vfio_vm_pending_memory_balloon_min_bytes{vmid="102"} 0');
    expect(seriesLines(text, 'vfio_vm_pending_memory_configured_bytes')).toHaveLength(1);
  });

  it('reads the property form of memory, and hugepages', () => {
    expect(text).toContain(`vfio_vm_memory_configured_bytes{vmid="105"} ${4 * GiB}`);
    expect(text).toContain(`vfio_vm_memory_balloon_min_bytes{vmid="105"} ${2 * GiB}`);
    expect(text).toContain('vfio_vm_hugepages_info{vmid="106",size="1G"} 1');
    expect(seriesLines(text, 'vfio_vm_hugepages_bytes')).toEqual([`vfio_vm_hugepages_bytes{vmid="106",size="1G"} ${16 * GiB}`]);
    expect(text).toContain('vfio_vm_running{vmid="102"} 1');
    expect(logs.filter((line) => line.startsWith('warn') && !line.includes('QMP'))).toEqual([]);
  });
});

describe('vm collector on hosts in trouble', () => {
  it('suprox-trouble: a pid file whose pid now belongs to sshd does not make VM 102 run', async () => {
    const { text } = await scrape('suprox-trouble');
    expect(text).toContain('vfio_vm_running{vmid="102"} 0');
    expect(text).toContain('vfio_vm_pci_device_info{vmid="102",pci_address="0000:01:00.1",slot="hostpci0"} 1');
    expect(text).toContain('vfio_vm_pci_device_info{vmid="101",pci_address="0000:00:17.0",slot="hostpci0"} 1');
    expect(seriesLines(text, 'vfio_vm_memory_rss_bytes')).toEqual([]);
  });
});
