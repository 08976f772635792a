import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandHostPciId, parsePveConfig, pendingMemoryAtNextStart, parsePveHostPci, parsePveMemory } from '../../src/parse/pve-config.js';
import { mappedPciAlternatives, parsePciMappingConfig } from '../../src/parse/pve-pci-mapping.js';
import { fixturesDir, hostDir } from '../helpers/fixtures.js';

const fixture = (host: string, file: string): string => readFileSync(path.join(hostDir(host), 'root/etc/pve', file), 'utf8');

describe('Proxmox VM config parser', () => {
  it('reads the seed VM: 16 GiB, ballooning on with an 8 GiB floor, SATA controller, on boot', () => {
    const { current, pending, problems } = parsePveConfig(fixture('suprox', 'nodes/suprox/qemu-server/101.conf'));
    expect(problems).toEqual([]);
    expect(pending).toBeUndefined();
    expect(current).toEqual({
      name: 'truenas',
      template: false,
      memoryMiB: 16384,
      balloonMiB: 8192,
      balloonInvalid: false,
      onBoot: true,
      hugepages: undefined,
      sockets: 1,
      numaNodeMemoryMiB: [],
      hostPci: [{ slot: 'hostpci0', line: 5, hostIds: ['0000:00:17.0'], mapping: undefined }],
    });
  });

  it('reads the guest NUMA nodes qemu-server sizes hugepages by: numaN memory and sockets', () => {
    const { current, problems } = parsePveConfig('hugepages: any\nnuma: 1\nsockets: 2\nnuma1: cpus=4-7,hostnodes=1,memory=3584,policy=bind\nnuma0: cpus=0-3,hostnodes=0,memory=8192,policy=bind\nnuma2: cpus=8\nsockets: two\n');
    expect(current.sockets).toBe(2);
    expect(current.numaNodeMemoryMiB).toEqual([8192, 3584]);
    expect(problems.map(({ line, message }) => [line, message])).toEqual([
      [6, 'numa2: no memory='],
      [7, 'sockets: expected a number of sockets, got "two"'],
    ]);
  });

  it('reads memory in plain MiB and in the property form, and rejects nonsense', () => {
    expect(parsePveMemory('16384')).toBe(16384);
    expect(parsePveMemory('current=12288')).toBe(12288);
    expect(() => parsePveMemory('16G')).toThrow(/whole number of MiB/);
    expect(() => parsePveMemory('8')).toThrow(/minimum 16/);
    expect(() => parsePveMemory('size=4096')).toThrow(/no current size/);
  });

  it('falls back to the 512 MiB default without memory:, and knows nothing when memory: is malformed', () => {
    expect(parsePveConfig('name: tiny\n').current.memoryMiB).toBe(512);
    const { current, problems } = parsePveConfig('name: odd\nmemory: 16GB\nballoon: lots\n');
    expect(current.memoryMiB).toBeUndefined();
    expect(current.balloonInvalid).toBe(true);
    expect(problems.map(({ line, key }) => [line, key])).toEqual([
      [2, 'memory'],
      [3, 'balloon'],
    ]);
  });

  it('reads hostpci in full, short and multi-device forms, options and mappings', () => {
    expect(parsePveHostPci('hostpci0', '0000:00:17.0,pcie=1', 4)).toEqual({ slot: 'hostpci0', line: 4, hostIds: ['0000:00:17.0'], mapping: undefined });
    expect(parsePveHostPci('hostpci1', '01:00,pcie=1,x-vga=1').hostIds).toEqual(['01:00']);
    expect(parsePveHostPci('hostpci2', 'host=0A:00.1;0a:00.2,rombar=0').hostIds).toEqual(['0a:00.1', '0a:00.2']);
    expect(parsePveHostPci('hostpci3', 'mapping=gpu,pcie=1')).toEqual({ slot: 'hostpci3', line: 0, hostIds: [], mapping: 'gpu' });
    expect(() => parsePveHostPci('hostpci4', 'mapping=gpu,host=01:00')).toThrow(/both/);
    expect(() => parsePveHostPci('hostpci5', 'pcie=1')).toThrow(/neither/);
    expect(() => parsePveHostPci('hostpci6', '1:0.0')).toThrow(/not a PCI id/);
  });

  it('keeps only lines before the first section: [PENDING] is separate, snapshots are ignored', () => {
    const { current, pending, problems } = parsePveConfig(fixture('pve-cluster', 'nodes/pve1/qemu-server/102.conf'));
    expect(problems).toEqual([]);
    expect(current.memoryMiB).toBe(8192);
    expect(current.balloonMiB).toBe(0);
    // The snapshot's hostpci0 (0000:01:00.0) and memory (4096) are not the current config.
    expect(current.hostPci).toEqual([{ slot: 'hostpci0', line: 8, hostIds: ['01:00'], mapping: undefined }]);
    expect(pending).toEqual({ memoryMiB: 12288, balloonMiB: undefined, deleted: [] });
    expect(pendingMemoryAtNextStart(current, pending!)).toEqual({ memoryMiB: 12288, balloonMiB: 0 });
  });

  it('applies a pending delete of memory and balloon: the default 512 MiB and a floor equal to memory', () => {
    const { current, pending } = parsePveConfig('memory: 4096\nballoon: 1024\n\n[PENDING]\ndelete: !balloon,memory\n');
    expect(pending?.deleted).toEqual(['balloon', 'memory']);
    expect(pendingMemoryAtNextStart(current, pending!)).toEqual({ memoryMiB: 512, balloonMiB: undefined });
    expect(parsePveConfig('memory: 4096\n[PENDING]\ncores: 8\n').pending).toBeUndefined();
  });

  it('reports a line that is not key: value with its line number, and ignores unknown keys', () => {
    const { current, problems } = parsePveConfig('name: web\nthis line is broken\nfrobnicate: 7\nmemory: 2048\n');
    expect(current.name).toBe('web');
    expect(current.memoryMiB).toBe(2048);
    expect(problems).toEqual([{ line: 2, key: undefined, message: 'not a "key: value" line: "this line is broken"' }]);
  });

  it('orders hostpci slots numerically and reads onboot and hugepages', () => {
    const { current, problems } = parsePveConfig('hostpci10: 03:00.0\nhostpci2: 02:00.0\nonboot: yes\nhugepages: any\nhugepages: 3\n');
    expect(current.hostPci.map(({ slot }) => slot)).toEqual(['hostpci2', 'hostpci10']);
    expect(current.onBoot).toBe(true);
    expect(current.hugepages).toBe('any');
    expect(problems).toEqual([{ line: 5, key: 'hugepages', message: 'hugepages: expected 2, 1024 or any, got "3"' }]);
  });
});

describe('hostpci id expansion', () => {
  const present = ['0000:00:17.0', '0000:01:00.0', '0000:01:00.1', '0000:02:00.0'];

  it('adds the domain to a short address and keeps a full one', () => {
    expect(expandHostPciId('00:17.0', present)).toEqual(['0000:00:17.0']);
    expect(expandHostPciId('0000:00:17.0', present)).toEqual(['0000:00:17.0']);
  });

  it('expands a device without function to every function present', () => {
    expect(expandHostPciId('01:00', present)).toEqual(['0000:01:00.0', '0000:01:00.1']);
    expect(expandHostPciId('0000:02:00', present)).toEqual(['0000:02:00.0']);
  });

  it('keeps an assignment of a device that is not present visible as function 0', () => {
    expect(expandHostPciId('0b:00', present)).toEqual(['0000:0b:00.0']);
    expect(expandHostPciId('0b:00.3', present)).toEqual(['0000:0b:00.3']);
  });
});

describe('PCI mapping config (mapping/pci.cfg)', () => {
  it("resolves a mapping to this node's path only", () => {
    const { mappings, problems } = parsePciMappingConfig(fixture('pve-cluster', 'mapping/pci.cfg'));
    expect(problems).toEqual([]);
    expect(mappedPciAlternatives(mappings, 'i210-wan', 'pve1')).toEqual([['0000:02:00.0']]);
    expect(mappedPciAlternatives(mappings, 'i210-wan', 'pve2')).toEqual([['0000:03:00.0']]);
    expect(mappedPciAlternatives(mappings, 'quadro-p400', 'pve1')).toBeUndefined();
    expect(mappedPciAlternatives(mappings, 'nope', 'pve1')).toBeUndefined();
  });

  it('reports a map line without node or path and a stray line', () => {
    const { mappings, problems } = parsePciMappingConfig('\tmap node=pve1,path=01:00\ngpu\n\tmap path=0000:01:00\n\tmap id=10de:2204,node=pve1,path=0000:01:00.0;0000:01:00.1\n');
    expect(problems.map(({ line }) => line)).toEqual([1, 3]);
    expect(mappedPciAlternatives(mappings, 'gpu', 'pve1')).toEqual([['0000:01:00.0', '0000:01:00.1']]);
  });
});

/** The standalone configs beside the reader table, modelled on qemu-server's own cases. */
const standalone = (file: string): string => readFileSync(path.join(fixturesDir, 'configs/pve', file), 'utf8');

describe('Proxmox VM config read as qemu-server parse_vm_config reads it', () => {
  it('a UTF-8 byte-order mark hides the first line from qemu-server: its key is unknown, not its default, and reported', () => {
    const { current, problems } = parsePveConfig(standalone('112.conf'));
    expect(current.memoryMiB).toBeUndefined();
    expect(current.name).toBe('bom-edited');
    expect(problems).toEqual([{ line: 1, key: 'memory', message: 'UTF-8 byte-order mark before the first line: qemu-server does not read that line' }]);
  });

  it('a repeated hostpci slot replaces the earlier line: two devices, not three, and the repeat is reported', () => {
    const { current, problems } = parsePveConfig(standalone('113.conf'));
    expect(current.hostPci.map(({ slot, hostIds }) => [slot, hostIds])).toEqual([
      ['hostpci0', ['0000:05:10.2']],
      ['hostpci1', ['0000:05:10.6']],
    ]);
    expect(problems).toEqual([{ line: 6, key: 'hostpci0', message: 'hostpci0: repeats line 4, which it replaces' }]);
  });

  it('400 digits are no size: memory and balloon unknown, never +Inf', () => {
    const { current, problems } = parsePveConfig(standalone('114.conf'));
    expect(current.memoryMiB).toBeUndefined();
    expect(current.balloonInvalid).toBe(true);
    expect(problems.map(({ line, key, message }) => [line, key, message])).toEqual([
      [1, 'balloon', 'balloon: 99999999999999999999… (400 digits) MiB is more than any VM can address'],
      [5, 'memory', 'memory: 11111111111111111111… (400 digits) MiB is more than any VM can address'],
    ]);
  });

  it('keeps the schema limits: memory up to what x86-64 addresses, balloon not above memory, hostpci0 to hostpci15', () => {
    expect(parsePveMemory(String(2 ** 32))).toBe(2 ** 32);
    expect(() => parsePveMemory(String(2 ** 32 + 1))).toThrow(/more than any VM can address/);
    const floorAbove = parsePveConfig(standalone('115.conf'));
    expect(floorAbove.current.balloonInvalid).toBe(true);
    expect(floorAbove.problems[0]!.message).toBe('balloon: 16384 MiB is more than memory (8192 MiB)');
    const { current, problems } = parsePveConfig(standalone('116.conf'));
    expect(current.hostPci.map(({ slot }) => slot)).toEqual(['hostpci15']);
    // A rejected line changes nothing; the valid one after it applies.
    expect(current.memoryMiB).toBe(2048);
    expect(current.template).toBe(false);
    expect(problems.map(({ key }) => key)).toEqual(['hostpci16', 'memory', 'template']);
  });

  it('a rejected repeat keeps the earlier valid value, as parse_vm_config does', () => {
    const { current, problems } = parsePveConfig('memory: 4096\nmemory: lots\nballoon: 1024\nballoon: -1\n');
    expect(current.memoryMiB).toBe(4096);
    expect(current.balloonMiB).toBe(1024);
    expect(current.balloonInvalid).toBe(false);
    expect(problems.map(({ line }) => line)).toEqual([2, 4]);
  });

  it('reads template: 1 as a template', () => {
    expect(parsePveConfig(standalone('9000.conf')).current.template).toBe(true);
    expect(parsePveConfig('template: 0\n').current.template).toBe(false);
  });
});
