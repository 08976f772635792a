import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { extract, list } from 'tar';
import { afterEach, describe, expect, it } from 'vitest';
import { runCapture } from '../../src/capture/run.js';
import { readKmsgDump } from '../../src/host/kmsg-dump.js';
import { silentLogger } from '../../src/log.js';
import { configFor, fixturesDir, fixtureFlags, hostTreeFlags, repoRoot, sampledApp } from '../helpers/fixtures.js';
import { normaliseExposition } from '../helpers/golden.js';
import { copyHost } from '../helpers/tmp-host.js';

const temporary: string[] = [];
afterEach(() => {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tempDir = (): string => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-capture-test-'));
  temporary.push(dir);
  return dir;
};

/** Captures a host given by its --path.* flags and unpacks the bundle; returns the unpacked root. */
async function captureAndExtract(flags: string[]): Promise<{ root: string; bundle: string }> {
  const dir = tempDir();
  const bundle = path.join(dir, 'support.tar.gz');
  await runCapture(configFor(['capture', bundle, ...flags]), silentLogger);
  const root = path.join(dir, 'unpacked');
  mkdirSync(root);
  await extract({ file: bundle, cwd: root });
  return { root, bundle };
}


const exposition = async (flags: string[]): Promise<string> => normaliseExposition((await sampledApp(flags)).sample.text);

const allFiles = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));

describe('capture', () => {
  for (const host of readdirSync(path.join(fixturesDir, 'hosts'))) {
    it(`round-trips fixture host ${host}: the exporter on the bundle says what it says on the host`, async () => {
      const { root } = await captureAndExtract(fixtureFlags(host));
      expect(existsSync(path.join(root, 'sys/bus/pci/devices'))).toBe(true);
      expect(await exposition(hostTreeFlags(root))).toBe(await exposition(fixtureFlags(host)));
    });
  }

  it('keeps sysfs links as links and only the attributes the collectors read', async () => {
    const { root, bundle } = await captureAndExtract(fixtureFlags('suprox'));
    expect(readlinkSync(path.join(root, 'sys/bus/pci/devices/0000:00:17.0'))).toBe('../../../devices/pci0000:00/0000:00:17.0');
    expect(readlinkSync(path.join(root, 'sys/devices/pci0000:00/0000:00:17.0/driver'))).toBe('../../../bus/pci/drivers/vfio-pci');
    expect(readlinkSync(path.join(root, 'sys/kernel/iommu_groups/7/devices/0000:00:17.0'))).toBe('../../../../devices/pci0000:00/0000:00:17.0');
    expect(readdirSync(path.join(root, 'sys/devices/pci0000:00/0000:00:17.0')).sort()).toEqual(
      ['class', 'device', 'driver', 'driver_override', 'iommu_group', 'modalias', 'numa_node', 'reset_method', 'revision', 'subsystem_device', 'subsystem_vendor', 'vendor'],
    );
    const topLevel = new Set<string>();
    await list({ file: bundle, onReadEntry: (entry) => void topLevel.add(entry.path.split('/')[0]!) });
    expect([...topLevel].sort()).toEqual(['kmsg', 'proc', 'root', 'sys']);
    expect(statSync(bundle).mode & 0o777).toBe(0o600);
  });

  it('takes VM configs, QEMU processes, their cgroups and the kernel log, with secrets stripped', async () => {
    const host = copyHost('suprox');
    rmSync(path.join(host.root, 'root'), { recursive: true, force: true });
    const at = (relative: string, content: string): void => {
      mkdirSync(path.dirname(path.join(host.root, relative)), { recursive: true });
      writeFileSync(path.join(host.root, relative), content);
    };
    at('root/etc/pve/nodes/suprox/qemu-server/101.conf', '#notes: root password hunter2\ncipassword: $5$salt$hunter2hash\nhostpci0: 0000:00:17.0,pcie=1\nmemory: 16384\n');
    at('root/etc/pve/nodes/other/qemu-server/200.conf', 'memory: 2048\n');
    symlinkSync('nodes/suprox/qemu-server', path.join(host.root, 'root/etc/pve/qemu-server'));
    symlinkSync('nodes/suprox', path.join(host.root, 'root/etc/pve/local'));
    at('root/etc/pve/mapping/pci.cfg', 'sata\n\tmap node=suprox,path=0000:00:17.0,id=8086:a352\n');
    at('root/run/qemu-server/101.pid', '4242\n');
    at('root/etc/libvirt/qemu/win.xml', `<domain><name>win</name><devices><graphics type='vnc' passwd='hunter2'/></devices></domain>\n`);
    at('proc/4242/cmdline', ['/usr/bin/kvm', '-id', '101', '-object', 'secret,id=s,data=hunter2', ''].join('\0'));
    at('proc/4242/comm', 'kvm\n');
    at('proc/4242/status', 'Name:\tkvm\nVmLck:\t16777216 kB\n');
    at('proc/4242/cgroup', '0::/qemu.slice/101.scope\n');
    at('proc/4242/environ', 'PASSWORD=hunter2\0');
    at('proc/4243/cmdline', ['/usr/bin/qemu-system-x86_64', '-name', 'win', ''].join('\0'));
    at('proc/4243/comm', 'qemu-system-x86\n');
    at('proc/4243/cgroup', '12:memory:/machine.slice/machine-qemu\\x2d1\\x2dwin.scope\n0::/machine.slice/machine-qemu\\x2d1\\x2dwin.scope/libvirt/emulator\n');
    at('proc/1/cmdline', '/sbin/init\0');
    at('proc/1/comm', 'systemd\n');
    at('proc/77/comm', 'kvm-pit/4242\n');
    at('proc/77/cmdline', '');
    at('proc/meminfo', 'MemTotal:       32768000 kB\n');
    at('proc/pressure/memory', 'some avg10=0.00 avg60=0.00 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n');
    at('sys/fs/cgroup/qemu.slice/101.scope/memory.current', '17179869184\n');
    at('sys/fs/cgroup/memory/machine.slice/machine-qemu\\x2d1\\x2dwin.scope/memory.usage_in_bytes', '1024\n');
    at('sys/fs/cgroup/machine.slice/machine-qemu\\x2d1\\x2dwin.scope/memory.events', 'oom 0\noom_kill 0\n');
    at('kmsg', '6,1,100,-;Linux version 6.8\n3,2,200,-;Out of memory: Killed process 4242 (kvm)\n');

    const { root } = await captureAndExtract(host.flags);
    const read = (relative: string): string => readFileSync(path.join(root, relative), 'utf8');
    expect(read('root/etc/pve/nodes/suprox/qemu-server/101.conf')).toBe('#<redacted>\ncipassword: <redacted>\nhostpci0: 0000:00:17.0,pcie=1\nmemory: 16384\n');
    expect(read('root/etc/pve/nodes/other/qemu-server/200.conf')).toBe('memory: 2048\n');
    expect(readlinkSync(path.join(root, 'root/etc/pve/qemu-server'))).toBe('nodes/suprox/qemu-server');
    expect(readlinkSync(path.join(root, 'root/etc/pve/local'))).toBe('nodes/suprox');
    expect(read('root/etc/pve/mapping/pci.cfg')).toContain('map node=suprox,path=0000:00:17.0');
    expect(read('root/run/qemu-server/101.pid')).toBe('4242\n');
    expect(read('proc/4242/cmdline')).toBe(['/usr/bin/kvm', '-id', '101', '-object', 'secret,id=s,data=<redacted>', ''].join('\0'));
    expect(read('proc/4242/status')).toContain('VmLck:\t16777216 kB');
    expect(read('proc/4243/comm')).toBe('qemu-system-x86\n');
    expect(existsSync(path.join(root, 'proc/4242/environ'))).toBe(false);
    // Of a process that runs no QEMU only PID 1's mount table is taken: the disks collector reads the host's mounts there.
    expect(readdirSync(path.join(root, 'proc/1'))).toEqual(['mountinfo']);
    expect(existsSync(path.join(root, 'proc/77'))).toBe(false);
    expect(read('sys/fs/cgroup/qemu.slice/101.scope/memory.current')).toBe('17179869184\n');
    expect(read('sys/fs/cgroup/memory/machine.slice/machine-qemu\\x2d1\\x2dwin.scope/memory.usage_in_bytes')).toBe('1024\n');
    // The emulator's cgroup is below the VM's scope; the scope's files are the ones the collectors read.
    expect(read('sys/fs/cgroup/machine.slice/machine-qemu\\x2d1\\x2dwin.scope/memory.events')).toBe('oom 0\noom_kill 0\n');
    expect(read('proc/meminfo')).toContain('MemTotal');
    expect(read('proc/pressure/memory')).toContain('total=12');
    expect(read('kmsg')).toBe('6,1,100,-;Linux version 6.8\n3,2,200,-;Out of memory: Killed process 4242 (kvm)\n');
    for (const file of allFiles(root)) expect(readFileSync(file, 'utf8'), file).not.toContain('hunter2');
  });

  it('writes the bundle without following a link planted at its path, with mode 0600 whatever was there', async () => {
    const dir = tempDir();
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'precious\n', { mode: 0o644 });
    const planted = path.join(dir, 'planted.tar.gz');
    symlinkSync(victim, planted);
    const dangling = path.join(dir, 'dangling.tar.gz');
    symlinkSync(path.join(dir, 'created-through-link'), dangling);
    const existing = path.join(dir, 'existing.tar.gz');
    writeFileSync(existing, 'old bundle');
    chmodSync(existing, 0o666);

    for (const output of [planted, dangling, existing]) {
      await runCapture(configFor(['capture', output, ...fixtureFlags('suprox')]), silentLogger);
      const written = lstatSync(output);
      expect(written.isFile(), output).toBe(true);
      expect(written.mode & 0o777, output).toBe(0o600);
      await list({ file: output, onReadEntry: () => undefined });
    }
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(statSync(victim).mode & 0o777).toBe(0o644);
    expect(existsSync(path.join(dir, 'created-through-link'))).toBe(false);
    // Nothing left behind but the bundles and the victim.
    expect(readdirSync(dir).sort()).toEqual(['dangling.tar.gz', 'existing.tar.gz', 'planted.tar.gz', 'victim']);
  });

  it('takes nothing from outside its roots, whatever link leads there', async () => {
    const host = copyHost('suprox');
    const outside = tempDir();
    const canary = 'OUTSIDE-THE-ROOTS';
    writeFileSync(path.join(outside, 'secret'), `${canary}\n`);
    mkdirSync(path.join(outside, 'qemu'));
    writeFileSync(path.join(outside, 'qemu', 'evil.xml'), `<domain><name>${canary}</name></domain>\n`);
    const plant = (relative: string, target: string): string => {
      const file = path.join(host.root, relative);
      mkdirSync(path.dirname(file), { recursive: true });
      rmSync(file, { recursive: true, force: true });
      symlinkSync(target, file);
      return file;
    };
    const escapes = [
      plant('proc/vmstat', path.join(outside, 'secret')),
      plant('root/etc/hostname', path.relative(path.join(host.root, 'root/etc'), path.join(outside, 'secret'))),
      plant('sys/devices/pci0000:00/0000:00:17.0/numa_node', path.join(outside, 'secret')),
      plant('root/etc/libvirt/qemu', path.join(outside, 'qemu')),
      plant('root/etc/pve/local', path.relative(path.join(host.root, 'root/etc/pve'), outside)),
      plant('sys/module/vfio_pci/parameters/ids', '../../../../../../../../../../../../../etc/hostname'),
    ];
    const dir = tempDir();
    const bundle = path.join(dir, 'support.tar.gz');
    const summary = await runCapture(configFor(['capture', bundle, ...host.flags]), silentLogger);
    const root = path.join(dir, 'unpacked');
    mkdirSync(root);
    await extract({ file: bundle, cwd: root });
    for (const file of allFiles(root)) expect(readFileSync(file, 'utf8'), file).not.toContain(canary);
    for (const link of readdirSync(root, { recursive: true, withFileTypes: true }).filter((entry) => entry.isSymbolicLink())) {
      const resolved = path.resolve(link.parentPath, readlinkSync(path.join(link.parentPath, link.name)));
      expect(path.relative(root, resolved).startsWith('..'), resolved).toBe(false);
    }
    for (const escape of escapes.filter((file) => !file.endsWith('libvirt/qemu'))) {
      expect(summary.problems.some((problem) => problem.startsWith(`${escape}: resolves to `) && problem.endsWith('; not captured')), escape).toBe(true);
    }
    expect(summary.problems.some((problem) => problem.startsWith(path.join(host.root, 'root/etc/libvirt/qemu/evil.xml')))).toBe(true);
  });

  it('reads the live kernel log without waiting for new records', async () => {
    let dump: Buffer;
    try {
      dump = await readKmsgDump('/dev/kmsg');
    } catch (error) {
      // Not root, or no /dev/kmsg in this sandbox: nothing to read.
      expect((error as NodeJS.ErrnoException).code).toMatch(/^(EPERM|EACCES|ENOENT)$/);
      return;
    }
    expect(dump.toString('utf8')).toMatch(/^\d+,\d+,\d+,[^;]*;/);
  });

  it('needs exactly one output file', () => {
    const run = spawnSync(path.join(repoRoot, 'node_modules/.bin/tsx'), [path.join(repoRoot, 'src/main.ts'), 'capture', ...fixtureFlags('suprox')], { encoding: 'utf8', timeout: 20_000 });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe('vfio-exporter: capture: expected one output file, e.g. vfio-exporter capture support.tar.gz\n');
  });
});
