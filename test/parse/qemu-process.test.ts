import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProcCgroup, vmScopePath } from '../../src/parse/proc-cgroup.js';
import { parseProcStatus } from '../../src/parse/proc-status.js';
import { isQemuComm, parseQemuCmdline, parseQemuOpts, parseQemuSize } from '../../src/parse/qemu-cmdline.js';
import { hostDir } from '../helpers/fixtures.js';

const procFile = (host: string, pid: number, file: string): string => readFileSync(path.join(hostDir(host), 'proc', String(pid), file), 'utf8');
const argv = (...args: string[]): string => args.join('\0') + '\0';
const GiB = 1024 ** 3;

describe('QEMU command line parser', () => {
  it("reads a Proxmox kvm command line: -id, -name with debug-threads, -m, the pid file, vfio-pci devices", () => {
    expect(parseQemuCmdline(procFile('pve-cluster', 4107, 'cmdline'))).toEqual({
      executable: '/usr/bin/kvm',
      id: '102',
      name: 'win11',
      memoryBytes: 8 * GiB,
      pidfile: '/var/run/qemu-server/102.pid',
      vfioHosts: ['0000:01:00.0', '0000:01:00.1'],
      mdevs: [],
      balloonDevice: false,
    });
  });

  it("reads libvirt's command line: -name guest=, -m size=...k, JSON -device", () => {
    const cmdline = parseQemuCmdline(procFile('libvirt-gpu', 2841, 'cmdline'))!;
    expect(cmdline.name).toBe('win10-gaming');
    expect(cmdline.id).toBeUndefined();
    expect(cmdline.memoryBytes).toBe(16 * GiB);
    expect(cmdline.vfioHosts).toEqual(['0000:01:00.0', '0000:01:00.1']);
  });

  it('reads every -m form; plain numbers are MiB', () => {
    const memory = (value: string): number | undefined => parseQemuCmdline(argv('qemu-system-x86_64', '-m', value))!.memoryBytes;
    expect(memory('16384')).toBe(16 * GiB);
    expect(memory('16G')).toBe(16 * GiB);
    expect(memory('1.5g')).toBe(1.5 * GiB);
    expect(memory('size=16384M,slots=255,maxmem=4194304M')).toBe(16 * GiB);
    expect(memory('size=1024,slots=255,maxmem=524288M')).toBe(GiB);
    expect(memory('lots')).toBeUndefined();
    expect(parseQemuSize('4096', 'b')).toBe(4096);
    expect(() => parseQemuSize('12Q', 'm')).toThrow(/not a size/);
  });

  it('reads QemuOpts with an implied first key and doubled commas', () => {
    expect(parseQemuOpts('guest=foo,debug-threads=on', 'guest').get('guest')).toBe('foo');
    expect(parseQemuOpts('win,,11,debug-threads=on', 'guest').get('guest')).toBe('win,11');
    expect(parseQemuCmdline(argv('/usr/bin/kvm', '-name', 'pihole,debug-threads=on'))!.name).toBe('pihole');
  });

  it('finds vfio-pci by host= (short or full), sysfsdev= and JSON, and the balloon device', () => {
    const cmdline = parseQemuCmdline(
      argv(
        'qemu-system-x86_64',
        '-device', 'vfio-pci,host=01:00.0,id=gpu',
        '-device', 'vfio-pci,sysfsdev=/sys/bus/pci/devices/0000:02:00.0',
        '-device', '{"driver":"vfio-pci","host":"0000:03:00.0","id":"hostdev0"}',
        '-device', 'virtio-net-pci,netdev=n0',
        '--device', 'virtio-balloon-pci,id=balloon0',
      ),
    )!;
    expect(cmdline.vfioHosts).toEqual(['0000:01:00.0', '0000:02:00.0', '0000:03:00.0']);
    expect(cmdline.balloonDevice).toBe(true);
  });

  it('an mdev sysfsdev is a mediated device by its uuid, never a pci_address', () => {
    const cmdline = parseQemuCmdline(
      argv(
        'qemu-system-x86_64',
        '-device', 'vfio-pci,sysfsdev=/sys/bus/mdev/devices/4b20d080-1b54-4048-85b3-a6a62d165c01,display=on',
        '-device', 'vfio-pci,sysfsdev=/sys/devices/pci0000:00/0000:00:02.0/C2A3B1E4-5D6F-4A7B-8C9D-0E1F2A3B4C5D',
        '-device', 'vfio-pci,host=0000:01:00.0',
      ),
    )!;
    expect(cmdline.vfioHosts).toEqual(['0000:01:00.0']);
    expect(cmdline.mdevs.map(({ uuid }) => uuid)).toEqual(['4b20d080-1b54-4048-85b3-a6a62d165c01', 'c2a3b1e4-5d6f-4a7b-8c9d-0e1f2a3b4c5d']);
  });

  it('adds DIMMs plugged on the command line to -m, as query-memory-size-summary adds plugged to base memory', () => {
    const dimms = (backend: string) =>
      parseQemuCmdline(
        argv(
          '/usr/bin/kvm', '-id', '111',
          '-m', 'size=1024,slots=255,maxmem=4194304M',
          '-object', 'memory-backend-ram,id=mem-dimm0,size=512M',
          '-device', 'pc-dimm,id=dimm0,memdev=mem-dimm0,node=0',
          '-object', backend,
          '-device', '{"driver":"pc-dimm","id":"dimm1","memdev":"mem-dimm1","node":1}',
        ),
      )!.memoryBytes;
    expect(dimms('{"qom-type":"memory-backend-file","id":"mem-dimm1","size":536870912,"mem-path":"/run/hugepages/kvm/2048kB"}')).toBe(2 * GiB);
    // A module whose backend size is unknown makes the total unknown, not short.
    expect(dimms('memory-backend-ram,id=mem-dimm1')).toBeUndefined();
  });

  it('recognises QEMU by executable and comm, and nothing else', () => {
    expect(parseQemuCmdline(procFile('suprox-trouble', 1187, 'cmdline'))).toBeUndefined();
    expect(parseQemuCmdline('')).toBeUndefined();
    expect(parseQemuCmdline(argv('/usr/libexec/qemu-kvm', '-m', '1G'))!.memoryBytes).toBe(GiB);
    expect(['kvm', 'qemu-system-x86', 'qemu-kvm'].map(isQemuComm)).toEqual([true, true, true]);
    expect(['sshd', 'kvm-pit/1234', 'kvm-nx-lpage-re'].map(isQemuComm)).toEqual([false, false, false]);
  });
});

describe('/proc/<pid>/status and cgroup', () => {
  it('reads VmRSS, VmLck, VmPin and the state in bytes', () => {
    expect(parseProcStatus(procFile('suprox-fixed', 2318, 'status'))).toEqual({
      state: 'S',
      rssBytes: 12731904 * 1024,
      lockedBytes: 12583424 * 1024,
      pinnedBytes: 0,
      problems: [],
    });
  });

  it('gives no figure, and names the problem, for a missing or garbled field', () => {
    expect(parseProcStatus('State:\tS (sleeping)\nVmLck:\t0 kB\nVmPin:\t0 kB\nVmRSS:\tlots\n')).toEqual({
      state: 'S',
      rssBytes: undefined,
      lockedBytes: 0,
      pinnedBytes: 0,
      problems: ['VmRSS: not a size in kB: "lots"'],
    });
    expect(parseProcStatus('Name:\tkvm\nState:\t?\nVmPeak:\t34')).toMatchObject({
      state: undefined,
      rssBytes: undefined,
      problems: ['State: garbled: "?"', 'VmRSS: missing', 'VmLck: missing', 'VmPin: missing'],
    });
  });

  it('reads the unified and the v1 memory controller paths', () => {
    expect(parseProcCgroup('0::/qemu.slice/102.scope\n')).toEqual({ unified: '/qemu.slice/102.scope', memoryV1: undefined });
    expect(parseProcCgroup('12:pids:/qemu.slice/102.scope\n4:memory:/qemu.slice/102.scope\n1:name=systemd:/qemu.slice/102.scope\n0::/qemu.slice/102.scope\n')).toEqual({
      unified: '/qemu.slice/102.scope',
      memoryV1: '/qemu.slice/102.scope',
    });
  });

  it("finds the VM's scope above libvirt's emulator cgroup, and refuses a login session", () => {
    expect(vmScopePath('/qemu.slice/101.scope')).toBe('/qemu.slice/101.scope');
    expect(vmScopePath('/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope/libvirt/emulator')).toBe('/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope');
    expect(vmScopePath('/user.slice/user-1000.slice/session-3.scope')).toBeUndefined();
    expect(vmScopePath('/')).toBeUndefined();
  });
});
