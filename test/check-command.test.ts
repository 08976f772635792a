import { spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { fixtureFlags, fixturesDir, repoRoot } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';

const tsx = path.join(repoRoot, 'node_modules/.bin/tsx');
const hosts = readdirSync(path.join(fixturesDir, 'hosts')).sort();
const schema = JSON.parse(readFileSync(path.join(repoRoot, 'docs/check.schema.json'), 'utf8')) as object;
const validate = new Ajv2020({ allErrors: true, validateFormats: false }).compile(schema);

const check = (args: string[]) =>
  spawnSync(tsx, [path.join(repoRoot, 'src/main.ts'), 'check', '--log.level=error', ...args], { encoding: 'utf8', timeout: 30_000 });

/** Gives VM 103 (no passthrough) of a copied suprox-fixed host its memory and, when given, a balloon floor. */
const setVm103 = (root: string, memoryMiB: number, balloonMiB?: number): void => {
  const file = path.join(root, 'root/etc/pve/nodes/suprox/qemu-server/103.conf');
  const config = readFileSync(file, 'utf8').replace(/^memory: .*$/m, `memory: ${memoryMiB}${balloonMiB === undefined ? '' : `\nballoon: ${balloonMiB}`}`);
  writeFileSync(file, config);
};

/** Rewrites VM 101 of a copied Proxmox fixture host. */
const setVm101 = (root: string, memoryMiB: number, balloonMiB: number): void => {
  const file = path.join(root, 'root/etc/pve/nodes/suprox/qemu-server/101.conf');
  const config = readFileSync(file, 'utf8').replace(/^memory: .*$/m, `memory: ${memoryMiB}`).replace(/^balloon: .*$/m, `balloon: ${balloonMiB}`);
  writeFileSync(file, config);
};

describe('vfio-exporter check', () => {
  it.each(hosts)('%s: --json validates against docs/check.schema.json', (host) => {
    const result = check([...fixtureFlags(host), '--json']);
    expect(result.stderr).toBe('');
    expect([0, 1]).toContain(result.status);
    const report = JSON.parse(result.stdout) as unknown;
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
  });

  it('the seed host: a human report with the problem, its fix, lspci-like devices and the groups; exit 1', () => {
    const result = check(fixtureFlags('suprox'));
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('CRITICAL VfioPassthroughVMStartWouldOOM');
    expect(result.stdout).toContain('fix: Lower the VM\'s memory to what fits (13312 MiB) and turn ballooning off: qm set 101 --balloon 0 --memory 13312');
    expect(result.stdout).toContain('00:17.0 SATA controller [0106]: Intel Corporation Cannon Lake PCH SATA AHCI Controller [8086:a352] (rev 10)');
    expect(result.stdout).toContain('\tdriver: vfio-pci, driver_override: vfio-pci, IOMMU group 7, assigned to VM 101');
    expect(result.stdout).toContain('group 14 (not viable): 00:1f.0 none, 00:1f.4 i801_smbus, 00:1f.5 intel-spi');
    expect(result.stdout).toContain('VM 101 (truenas): kvm pid 32969, CONSTRAINT_NONE');
  });

  it('--vmid refuses a VM that names a passthrough device the host does not have', () => {
    const { root, flags } = copyHost('suprox');
    setVm101(root, 12288, 0);
    const file = path.join(root, 'root/etc/pve/nodes/suprox/qemu-server/101.conf');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^hostpci0: .*$/m, (line) => `${line}\nhostpci1: 0000:ee:00.0`));
    const result = check([...flags, '--vmid=101']);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^VM 101: REFUSE$/m);
    expect(result.stdout).toContain('0000:ee:00.0');
    expect(result.stdout).toContain('VfioPassthroughDeviceMissing');
  });

  it('--vmid: 1 for the seed VM, 0 once it is fixed, 2 for a VM the host does not have', () => {
    const seed = check([...fixtureFlags('suprox'), '--vmid=101']);
    expect(seed.status).toBe(1);
    expect(seed.stdout).toMatch(/^VM 101: REFUSE$/m);
    expect(seed.stdout).toContain('short by 2.9 GiB');

    const { root, flags } = copyHost('suprox');
    setVm101(root, 12288, 0);
    const fixed = check([...flags, '--vmid=101']);
    expect(fixed.status).toBe(0);
    expect(fixed.stdout).toContain('VM 101: FITS');
    expect(fixed.stdout).toContain('VM 101 needs 12.0 GiB pinned and the host can give 13.1 GiB: 1.1 GiB to spare');

    const unknown = check([...fixtureFlags('suprox'), '--vmid=999']);
    expect(unknown.status).toBe(2);
    expect(unknown.stdout).toContain('no VM 999 on this host');
  });

  // suprox-fixed: VM 101 (truenas, 12 GiB pinned) runs and leaves 2.4 GiB of headroom; VM 103 has no
  // passthrough and 8 GiB, ballooning no lower than that.
  it('--vmid on a VM without passthrough: refused when its floor does not fit what the running passthrough VM leaves', () => {
    const result = check([...fixtureFlags('suprox-fixed'), '--vmid=103']);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^VM 103: REFUSE$/m);
    expect(result.stdout).toContain('VM 103 (debian-build) has no host PCI device, but once started takes at least 8.0 GiB (all of its memory) and the host has 2.4 GiB of headroom: starting it leaves -5.6 GiB, and the OOM killer picks the largest process, VM 101 (truenas) with its memory pinned.');
    expect(result.stdout).toContain('WARNING  VfioVMStartEndangersPassthrough');
  });

  it('--vmid on a VM without passthrough: a warning when only its floor fits, through when all of it fits', () => {
    const { root, flags } = copyHost('suprox-fixed');
    setVm103(root, 4096, 1024);
    const ballooned = check([...flags, '--vmid=103', '--json']);
    const warned = JSON.parse(ballooned.stdout) as { verdict: { exitCode: number; verdict: string; reason: string }; problems: { alert: string }[] };
    expect(ballooned.status).toBe(0);
    expect(warned.verdict).toMatchObject({ exitCode: 0, verdict: 'warn' });
    expect(warned.verdict.reason).toContain('VM 103 starts ballooned to 1.0 GiB of the host\'s 2.4 GiB of headroom, but its guest can grow to 4.0 GiB, 1.6 GiB more than the host has: then the OOM killer picks the largest process, VM 101 (truenas)');
    expect(warned.problems.map((problem) => problem.alert)).not.toContain('VfioVMStartEndangersPassthrough');

    setVm103(root, 2048);
    const small = check([...flags, '--vmid=103']);
    expect(small.status).toBe(0);
    expect(small.stdout).toContain('VM 103: FITS\n  VM 103 needs 2.0 GiB and the host can give 2.4 GiB: 0.4 GiB to spare for the running passthrough VMs (101)\n');
  });

  it('--vmid: 1 when the VM fits but its device is on a host driver', () => {
    const result = check([...fixtureFlags('suprox-trouble'), '--vmid=101', '--json']);
    const report = JSON.parse(result.stdout) as { verdict: { exitCode: number; reason: string } };
    expect(result.status).toBe(1);
    expect(report.verdict.reason).toContain('bound to the host driver ahci');
  });
});

describe('Proxmox hookscript contrib/proxmox/vfio-guard.sh', () => {
  const script = path.join(repoRoot, 'contrib/proxmox/vfio-guard.sh');
  const wrapperFor = (dir: string): string => {
    const wrapper = path.join(dir, 'vfio-exporter');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${tsx} ${path.join(repoRoot, 'src/main.ts')} "$@"\n`);
    chmodSync(wrapper, 0o755);
    return wrapper;
  };
  const hook = (args: string[], env: Record<string, string>) => spawnSync(script, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  /** The pre-start phase of a VM on a copied fixture host, with the exporter run from source. */
  const preStart = (vmid: string, { root, flags }: { root: string; flags: string[] }) =>
    hook([vmid, 'pre-start'], { VFIO_EXPORTER: wrapperFor(root), VFIO_GUARD_ARGS: flags.join(' ') });

  it('refuses the seed VM at 16 GiB with ballooning, naming the shortfall and the fix', () => {
    const result = preStart('101', copyHost('suprox'));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('vfio-guard: refusing to start VM 101');
    expect(result.stderr).toContain('short by 2.9 GiB');
    expect(result.stderr).toContain('qm set 101 --balloon 0 --memory 13312');
  });

  it('finds the verdict when the check logs to stderr before its report', () => {
    const { root, flags } = copyHost('suprox');
    const logging = path.join(root, 'logging-exporter');
    writeFileSync(logging, `#!/bin/sh\necho 'level=error msg="collector problem" collector=pci err="timed out"' >&2\nexec ${wrapperFor(root)} "$@"\n`);
    chmodSync(logging, 0o755);
    const result = hook(['101', 'pre-start'], { VFIO_EXPORTER: logging, VFIO_GUARD_ARGS: flags.join(' ') });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^level=error msg="collector problem".*\nvfio-guard: refusing to start VM 101\nVM 101: REFUSE\n/);
  });

  it('lets the 12 GiB, balloon-off config start', () => {
    const host = copyHost('suprox');
    setVm101(host.root, 12288, 0);
    const result = preStart('101', host);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toBe('vfio-guard: VM 101: FITS\n  VM 101 needs 12.0 GiB pinned and the host can give 13.1 GiB: 1.1 GiB to spare\n');
  });

  it('on a host whose passthrough VM runs, refuses a VM without passthrough that does not fit and names the VM at risk', () => {
    const host = copyHost('suprox-fixed');
    const refused = preStart('103', host);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('vfio-guard: refusing to start VM 103');
    expect(refused.stderr).toContain('the OOM killer picks the largest process, VM 101 (truenas)');

    setVm103(host.root, 4096, 1024);
    const warned = preStart('103', host);
    expect(warned.status).toBe(0);
    expect(warned.stderr).toMatch(/^vfio-guard: VM 103: STARTS, WITH A WARNING\n {2}VM 103 starts ballooned to 1\.0 GiB .*VM 101 \(truenas\)/);

    setVm103(host.root, 2048);
    const fits = preStart('103', host);
    expect(fits.stderr).toBe('');
    expect(fits.status).toBe(0);
    expect(fits.stdout).toBe('vfio-guard: VM 103: FITS\n  VM 103 needs 2.0 GiB and the host can give 2.4 GiB: 0.4 GiB to spare for the running passthrough VMs (101)\n');
  });

  it('passes other phases without running the check, and lets a start go on when the check cannot judge unless strict', () => {
    for (const phase of ['post-start', 'pre-stop', 'post-stop']) expect(hook(['101', phase], { VFIO_EXPORTER: '/bin/false' }).status).toBe(0);
    const { root } = copyHost('suprox');
    const cannotJudge = path.join(root, 'cannot-judge');
    writeFileSync(cannotJudge, '#!/bin/sh\necho "VM 101: CANNOT JUDGE"\nexit 2\n');
    chmodSync(cannotJudge, 0o755);
    const lenient = hook(['101', 'pre-start'], { VFIO_EXPORTER: cannotJudge });
    expect(lenient.status).toBe(0);
    expect(lenient.stderr).toContain('vfio-guard: could not judge VM 101 (exit 2)');
    expect(hook(['101', 'pre-start'], { VFIO_EXPORTER: cannotJudge, VFIO_GUARD_STRICT: '1' }).status).toBe(1);
  });
});
