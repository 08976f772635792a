import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  addModprobeFile, cmdlineVfioIds, emptyModprobeConfig, fnmatchPattern, modulesForModalias, parseInitramfsModules, parseModalias,
  parsePciAliases, parseVfioPciIds, vfioIdMatches,
} from '../src/parse/boot-binding.js';
import { findBinary, fixturesDir, scrapeWithLog, seriesLines } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';

describe('modules.alias matching (fnmatch, as libkmod)', () => {
  it('matches *, ? and bracket expressions, and nothing else as special', () => {
    expect(fnmatchPattern('pci:v*d*sv*sd*bc01sc06i01*').test('pci:v00008086d0000A352sv000015D9sd00001B0Ebc01sc06i01')).toBe(true);
    expect(fnmatchPattern('pci:v*d*sv*sd*bc01sc06i01*').test('pci:v00008086d0000A352sv000015D9sd00001B0Ebc01sc06i02')).toBe(false);
    expect(fnmatchPattern('a?c').test('abc')).toBe(true);
    expect(fnmatchPattern('a[0-3]c').test('a2c')).toBe(true);
    expect(fnmatchPattern('a[!0-3]c').test('a2c')).toBe(false);
    expect(fnmatchPattern('a.c').test('abc')).toBe(false);
  });

  it('lists each module once, in file order, from pci aliases only', () => {
    const aliases = parsePciAliases('# Aliases\nalias pci:v00008086d00001521sv*sd*bc*sc*i* igb\nalias pci:v*d*sv*sd*bc02sc00i* igb\nalias usb:v*p* usbcore\nalias pci:v00008086d*sv*sd*bc*sc*i* intel-thing\n');
    expect(modulesForModalias(aliases, 'pci:v00008086d00001521sv000015D9sd00001521bc02sc00i00')).toEqual(['igb', 'intel_thing']);
  });
});

describe('vfio-pci ids, the command line, modprobe.d and initramfs-tools', () => {
  const sata = parseModalias('pci:v00008086d0000A352sv000015D9sd00001B0Ebc01sc06i01');

  it('reads the ids a modalias carries', () => {
    expect(sata).toEqual({ vendor: 0x8086, device: 0xa352, subvendor: 0x15d9, subdevice: 0x1b0e, classId: 0x010601 });
    expect(() => parseModalias('acpi:PNP0A08:')).toThrow(/not a PCI modalias/);
  });

  it('matches vendor:device, subsystem ids and class with mask, and skips entries the kernel would', () => {
    const [plain, sub, otherSub, byClass, bad] = parseVfioPciIds('8086:a352,8086:a352:15d9:1b0e,8086:a352:1043:8694,ffffffff:ffffffff:ffffffff:ffffffff:010600:ffff00,zz:1');
    expect(bad).toBeUndefined();
    expect(vfioIdMatches(plain!, sata)).toBe(true);
    expect(vfioIdMatches(sub!, sata)).toBe(true);
    expect(vfioIdMatches(otherSub!, sata)).toBe(false);
    expect(vfioIdMatches(byClass!, sata)).toBe(true);
    expect(vfioIdMatches(parseVfioPciIds('8086:1521')[0]!, sata)).toBe(false);
  });

  it('takes the last vfio-pci.ids= of the command line, under either spelling', () => {
    expect(cmdlineVfioIds('root=/dev/sda1 vfio-pci.ids=10de:2204 quiet vfio_pci.ids=10de:2204,10de:1aef\n')).toBe('10de:2204,10de:1aef');
    expect(cmdlineVfioIds('root=/dev/sda1 quiet')).toBeUndefined();
  });

  it('reads options, softdeps and blacklists with comments and continued lines, naming file and line', () => {
    const config = emptyModprobeConfig();
    addModprobeFile(config, '/etc/modprobe.d/vfio.conf', '# passthrough\noptions vfio_pci ids=8086:a352 disable_vga=1\nsoftdep ahci pre: \\\n  vfio-pci\nsoftdep nvme pre: vfio-pci post: nvme_core\nsoftdep igb post: vfio-pci\nblacklist nouveau\n');
    expect(config.vfioIds).toEqual([{ file: '/etc/modprobe.d/vfio.conf', line: 2, text: 'options vfio_pci ids=8086:a352 disable_vga=1', ids: '8086:a352' }]);
    expect([...config.softdepAfterVfio.keys()]).toEqual(['ahci', 'nvme']);
    expect(config.softdepAfterVfio.get('ahci')).toMatchObject({ line: 3 });
    expect([...config.blacklisted.keys()]).toEqual(['nouveau']);
    expect(parseInitramfsModules('# comment\nvfio\nvfio-pci ids=8086:a352\n\n')).toEqual(['vfio', 'vfio_pci']);
  });
});

/** The kernel modules directory of this machine with a modules.alias: the running kernel's, else the newest installed. */
const modulesDir = ((): string | undefined => {
  const root = '/lib/modules';
  if (!existsSync(root)) return undefined;
  const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const candidates = [release, ...readdirSync(root).sort().reverse()];
  return candidates.find((candidate) => existsSync(path.join(root, candidate, 'modules.alias')));
})();

describe.skipIf(modulesDir === undefined)(`kernel modules of real devices against libkmod (modprobe -R, /lib/modules/${modulesDir})`, () => {
  const aliases = parsePciAliases(readFileSync(`/lib/modules/${modulesDir}/modules.alias`, 'utf8'));
  const libkmod = (modalias: string): string[] => {
    try {
      return execFileSync(findBinary('modprobe'), ['-S', modulesDir!, '-R', modalias], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')
        .filter(Boolean);
    } catch {
      return [];
    }
  };
  const modaliases = [
    ...readdirSync('/sys/bus/pci/devices').map((address) => readFileSync(`/sys/bus/pci/devices/${address}/modalias`, 'utf8').trim()),
    ...readdirSync(path.join(fixturesDir, 'hosts')).flatMap((host) => {
      const dir = path.join(fixturesDir, 'hosts', host, 'sys/bus/pci/devices');
      return readdirSync(dir).map((address) => readFileSync(path.join(dir, address, 'modalias'), 'utf8').trim());
    }),
  ];

  it.each([...new Set(modaliases)])('%s', (modalias) => {
    expect(modulesForModalias(aliases, modalias).sort()).toEqual(libkmod(modalias).sort());
  });
});

describe('boot_binding collector on the fixture hosts', () => {
  it('the seed host: ahci would claim the SATA controller at boot, nothing reserves it', async () => {
    const { flags } = copyHost('suprox');
    const { text, errors } = await scrapeWithLog(flags);
    expect(errors).toEqual([]);
    expect(seriesLines(text, 'vfio_pci_device_boot_module_info').filter((line) => line.includes('0000:00:17.0'))).toEqual([
      'vfio_pci_device_boot_module_info{pci_address="0000:00:17.0",module="ahci"} 1',
    ]);
    expect(text).toContain('vfio_pci_device_boot_vfio_reserved{pci_address="0000:00:17.0"} 0');
    expect(text).toContain('vfio_boot_initramfs_vfio_pci 0');
  });

  it('the fixed host: options vfio-pci ids and softdep ahci reserve it; either alone does not', async () => {
    const { root, flags } = copyHost('suprox-fixed');
    expect((await scrapeWithLog(flags)).text).toContain('vfio_pci_device_boot_vfio_reserved{pci_address="0000:00:17.0"} 1');
    writeFileSync(path.join(root, 'root/etc/modprobe.d/vfio.conf'), 'options vfio-pci ids=8086:a352\n');
    expect((await scrapeWithLog(flags)).text).toContain('vfio_pci_device_boot_vfio_reserved{pci_address="0000:00:17.0"} 0');
    writeFileSync(path.join(root, 'root/etc/modprobe.d/vfio.conf'), 'softdep ahci pre: vfio-pci\n');
    expect((await scrapeWithLog(flags)).text).toContain('vfio_pci_device_boot_vfio_reserved{pci_address="0000:00:17.0"} 0');
    // The ids on the command line instead, ahci blacklisted: reserved again.
    writeFileSync(path.join(root, 'proc/cmdline'), 'root=/dev/mapper/pve-root ro vfio-pci.ids=8086:a352\n');
    writeFileSync(path.join(root, 'root/etc/modprobe.d/vfio.conf'), 'blacklist ahci\n');
    expect((await scrapeWithLog(flags)).text).toContain('vfio_pci_device_boot_vfio_reserved{pci_address="0000:00:17.0"} 1');
  });

  it('a missing modules.alias leaves modules and reservations unknown, with one error', async () => {
    const { root, flags } = copyHost('pve-cluster');
    writeFileSync(path.join(root, 'proc/sys/kernel/osrelease'), '6.8.12-4-pve\n');
    const { text, errors } = await scrapeWithLog(flags);
    expect(text).toContain('vfio_collector_success{collector="boot_binding"} 0');
    expect(errors).toHaveLength(1);
    expect(seriesLines(text, 'vfio_pci_device_boot_vfio_reserved')).toEqual([]);
    expect(seriesLines(text, 'vfio_pci_device_boot_module_info')).toEqual([]);
  });
});
