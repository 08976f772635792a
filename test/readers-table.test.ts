import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { libvirtVm, proxmoxVm, type ConfiguredVm, type ProxmoxContext } from '../src/collectors/vm-configs.js';
import { hugepageSizeLabel } from '../src/parse/hugepages.js';
import { parseLibvirtDomain, parseLibvirtStatus } from '../src/parse/libvirt-domain.js';
import { parsePciMappingConfig } from '../src/parse/pve-pci-mapping.js';
import { isPciAddress } from '../src/parse/sysfs.js';
import { fixturesDir, hostDir } from './helpers/fixtures.js';

/**
 * Every Proxmox config and libvirt domain among the fixtures, read as the vm collector reads it, against
 * the table beside them (test/fixtures/configs/expected.json): a reader change shows its effect on all of
 * them at once. UPDATE_GOLDEN=1 rewrites the table; review its diff.
 */
const configsDir = path.join(fixturesDir, 'configs');
const expectedFile = path.join(configsDir, 'expected.json');
const update = process.env['UPDATE_GOLDEN'] === '1';

/** The devices the standalone configs name are present on their host `pve1`, whose mapping file lies beside them. */
const standalonePresent = ['0000:05:10.0', '0000:05:10.2', '0000:05:10.4', '0000:05:10.6', '0000:05:11.0', '0000:05:11.2', '0000:41:00.0', '0000:42:00.0'];

interface Row {
  vmid: string;
  name: string;
  memoryBytes: number | null;
  balloon: string;
  hugepages: string | null;
  /** Guest RAM per guest NUMA node on hugepages, with its page size (`any`, `default` resolve at start). */
  hugepageNodes: string[] | null;
  template: boolean;
  startOnBoot: boolean;
  devices: string[];
  problems: string[];
}

const row = (vm: ConfiguredVm['vm'], hugepageNodes: ConfiguredVm['hugepageNodes'], problems: string[]): Row => ({
  vmid: vm.vmid,
  name: vm.name,
  memoryBytes: vm.memoryConfiguredBytes ?? null,
  balloon: vm.balloonEnabled ? `on, floor ${vm.balloonMinBytes ?? 'unknown'}` : 'off',
  hugepages: vm.hugepages ?? null,
  hugepageNodes: hugepageNodes?.map(({ memoryBytes, page }) => `${memoryBytes} on ${typeof page === 'number' ? hugepageSizeLabel(page) : page}`) ?? null,
  template: vm.template,
  startOnBoot: vm.startOnBoot,
  devices: vm.devices.map(({ slot, pciAddress }) => `${slot} ${pciAddress}`),
  problems,
});

const listFiles = (dir: string, suffix: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((file) => file.endsWith(suffix)).sort() : []);

function proxmoxRows(configDir: string, context: ProxmoxContext): [string, Row][] {
  return listFiles(configDir, '.conf').map((file) => {
    const { vm, hugepageNodes, problems } = proxmoxVm(file.replace(/\.conf$/, ''), readFileSync(path.join(configDir, file), 'utf8'), context);
    return [path.relative(fixturesDir, path.join(configDir, file)), row(vm, hugepageNodes, problems.map(({ line, message }) => `${line}: ${message}`))];
  });
}

function mappingsOf(file: string): ProxmoxContext['mappings'] {
  return existsSync(file) ? parsePciMappingConfig(readFileSync(file, 'utf8')).mappings : new Map();
}

function libvirtRows(dir: string): [string, Row][] {
  return listFiles(dir, '.xml').map((file) => {
    const xml = readFileSync(path.join(dir, file), 'utf8');
    const domain = xml.includes('<domstatus') ? parseLibvirtStatus(xml).domain : parseLibvirtDomain(xml);
    return [path.relative(fixturesDir, path.join(dir, file)), row(libvirtVm(domain, false), domain.hugepageNodes, [])];
  });
}

function allRows(): Record<string, Row> {
  const rows: [string, Row][] = [
    ...proxmoxRows(path.join(configsDir, 'pve'), {
      node: 'pve1',
      mappings: mappingsOf(path.join(configsDir, 'pve/pci.cfg')),
      presentAddresses: standalonePresent,
    }),
    ...libvirtRows(path.join(configsDir, 'libvirt')),
  ];
  for (const host of readdirSync(path.join(fixturesDir, 'hosts')).sort()) {
    const root = path.join(hostDir(host), 'root');
    const presentAddresses = readdirSync(path.join(hostDir(host), 'sys/bus/pci/devices')).filter(isPciAddress);
    const mappings = mappingsOf(path.join(root, 'etc/pve/mapping/pci.cfg'));
    // Each node's configs as that node reads them.
    for (const node of existsSync(path.join(root, 'etc/pve/nodes')) ? readdirSync(path.join(root, 'etc/pve/nodes')).sort() : [])
      rows.push(...proxmoxRows(path.join(root, 'etc/pve/nodes', node, 'qemu-server'), { node, mappings, presentAddresses }));
    rows.push(...libvirtRows(path.join(root, 'etc/libvirt/qemu')), ...libvirtRows(path.join(root, 'run/libvirt/qemu')));
  }
  return Object.fromEntries(rows);
}

describe('every fixture config and domain, read as the vm collector reads it', () => {
  const rows = allRows();
  if (update) writeFileSync(expectedFile, JSON.stringify(rows, null, 2) + '\n');
  const expected = JSON.parse(readFileSync(expectedFile, 'utf8')) as Record<string, Row>;

  it('covers the same files as the table', () => {
    expect(Object.keys(rows)).toEqual(Object.keys(expected));
  });

  it.each(Object.keys(rows))('%s', (file) => {
    expect(rows[file]).toEqual(expected[file]);
  });
});
