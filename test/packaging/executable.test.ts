import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheck } from '../../src/check/command.js';
import { silentLogger } from '../../src/log.js';
import { configFor, fixtureFlags, repoRoot, sampledApp } from '../helpers/fixtures.js';
import { normaliseExposition } from '../helpers/golden.js';
import { freePort } from '../helpers/ports.js';

// Builds the single executable and the .deb once (about 15 s), then runs them.
const built = path.join(repoRoot, 'dist/vfio-exporter');
/** A copy away from the checkout: nothing it needs may come from beside it (package.json, node_modules). */
let executable: string;
const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
let deb: string;
let work: string;
/** An environment whose PATH holds no `node`. */
let nodeless: NodeJS.ProcessEnv;

beforeAll(() => {
  execFileSync('npm', ['run', '--silent', 'package:deb'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'], timeout: 240_000 });
  deb = path.join(repoRoot, `dist/vfio-exporter_${version}-1_${execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim()}.deb`);
  work = mkdtempSync(path.join(os.tmpdir(), 'vfio-packaging-'));
  mkdirSync(path.join(work, 'empty-bin'));
  executable = path.join(work, 'vfio-exporter');
  copyFileSync(built, executable);
  nodeless = { PATH: path.join(work, 'empty-bin'), HOME: work, LANG: 'C.UTF-8' };
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const run = (command: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(command, args, { cwd: work, env, encoding: 'utf8', timeout: 30_000 });

describe('the single executable', () => {
  it('runs where no node is on PATH', () => {
    expect(run('/bin/sh', ['-c', 'command -v node'], nodeless).status).not.toBe(0);
    const result = run(executable, ['--version'], nodeless);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(new RegExp(`^vfio-exporter ${version.replace(/\./g, '\\.')} \\(revision [0-9a-f]{12}, node v20\\.`));
    expect(result.status).toBe(0);
  });

  it('serves the same metrics as the exporter run from source', async () => {
    const port = await freePort();
    const child: ChildProcess = spawn(executable, [...fixtureFlags('suprox'), `--web.listen-address=127.0.0.1:${port}`], { cwd: work, env: nodeless, stdio: 'ignore' });
    try {
      const deadline = Date.now() + 15_000;
      let ready = false;
      while (!ready) {
        if (Date.now() > deadline) throw new Error('the executable did not become ready in 15 s');
        ready = await fetch(`http://127.0.0.1:${port}/-/ready`).then((response) => response.ok, () => false);
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const served = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const withoutBuildInfo = (text: string) => normaliseExposition(text).replace(/^vfio_exporter_build_info\{.*\n/m, '');
      expect(withoutBuildInfo(served)).toBe(withoutBuildInfo((await sampledApp(fixtureFlags('suprox'))).sample.text));
      expect(served).toMatch(/^nodejs_version_info\{version="v20\./m);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('judges the host with check as the exporter run from source does', async () => {
    const result = run(executable, ['check', ...fixtureFlags('suprox-trouble')], nodeless);
    let fromSource = '';
    const status = await runCheck(configFor(['check', ...fixtureFlags('suprox-trouble')]), silentLogger, (text) => (fromSource += text));
    const withoutHeader = (text: string) => text.replace(/^vfio-exporter check, .*\n/, '');
    expect(withoutHeader(result.stdout)).toBe(withoutHeader(fromSource));
    expect(result.stdout).toMatch(/00:17.0 .*\n.*driver: ahci/);
    expect(result.status).toBe(status);
    expect(status).toBe(1);
  });

  it('writes a support bundle with nothing else installed', () => {
    const result = run(executable, ['capture', 'bundle.tar.gz', ...fixtureFlags('suprox')], nodeless);
    expect(result.status).toBe(0);
    const listing = run('/usr/bin/tar', ['-tzf', path.join(work, 'bundle.tar.gz')]).stdout.split('\n');
    expect(listing).toContain('sys/bus/pci/devices/0000:00:17.0');
  });
});

describe('the .deb', () => {
  const dpkgDeb = (...args: string[]): string => execFileSync('dpkg-deb', args, { encoding: 'utf8' });

  it('installs the executable, the service, its defaults and the docs the README lists', () => {
    const files = dpkgDeb('--contents', deb)
      .split('\n')
      .filter((line) => line.startsWith('-'))
      .map((line) => line.replace(/^.* \.(\/\S+)$/, '$1'))
      .sort();
    expect(files).toEqual([
      '/etc/default/vfio-exporter',
      '/lib/systemd/system/vfio-exporter.service',
      '/usr/bin/vfio-exporter',
      '/usr/share/doc/vfio-exporter/changelog.Debian.gz',
      '/usr/share/doc/vfio-exporter/copyright',
      '/usr/share/lintian/overrides/vfio-exporter',
      '/usr/share/man/man1/vfio-exporter.1.gz',
    ]);
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    for (const file of files) expect(readme, file).toContain(`\`${file}\``);
    expect(dpkgDeb('--contents', deb)).toMatch(/^-rwxr-xr-x root\/root .* \.\/usr\/bin\/vfio-exporter$/m);
  });

  it('declares its conffile, dependencies and maintainer scripts', () => {
    expect(dpkgDeb('--field', deb, 'Package', 'Version', 'Depends')).toBe(
      `Package: vfio-exporter\nVersion: ${version}-1\nDepends: adduser, libc6 (>= 2.28), libgcc-s1 (>= 3.4), libstdc++6 (>= 5.2)\n`,
    );
    expect(dpkgDeb('--info', deb, 'conffiles')).toBe('/etc/default/vfio-exporter\n');
    const control = path.join(work, 'control');
    execFileSync('dpkg-deb', ['--control', deb, control]);
    for (const script of ['postinst', 'prerm', 'postrm']) {
      expect(run('/bin/sh', ['-n', path.join(control, script)]).status, script).toBe(0);
    }
    const unpacked = path.join(work, 'unpacked');
    execFileSync('dpkg-deb', ['--extract', deb, unpacked]);
    expect(readFileSync(path.join(unpacked, 'etc/default/vfio-exporter'), 'utf8')).toMatch(/^ARGS=""$/m);
    expect(readFileSync(path.join(unpacked, 'lib/systemd/system/vfio-exporter.service'), 'utf8')).toBe(readFileSync(path.join(repoRoot, 'packaging/vfio-exporter.service'), 'utf8'));
  });

  it('creates the system user on configure and cleans up systemd state on purge', () => {
    // Stand-ins for the tools the scripts call, each logging its arguments.
    const stubs = path.join(work, 'stubs');
    mkdirSync(stubs, { recursive: true });
    const log = path.join(work, 'calls.log');
    for (const tool of ['adduser', 'deb-systemd-helper', 'deb-systemd-invoke', 'systemctl', 'getent']) {
      const exit = tool === 'getent' ? 2 : 0;
      writeFileSync(path.join(stubs, tool), `#!/bin/sh\necho "${tool} $*" >> "${log}"\nexit ${exit}\n`);
      chmodSync(path.join(stubs, tool), 0o755);
    }
    const control = path.join(work, 'control');
    if (!existsSync(control)) execFileSync('dpkg-deb', ['--control', deb, control]);
    const env = { PATH: `${stubs}:/usr/bin:/bin` };
    expect(run('/bin/sh', ['-e', path.join(control, 'postinst'), 'configure', ''], env).status).toBe(0);
    const configured = readFileSync(log, 'utf8');
    expect(configured).toContain('getent passwd vfio-exporter\n');
    expect(configured).toContain('adduser --quiet --system --group --no-create-home --home /nonexistent vfio-exporter\n');
    expect(configured).toContain('deb-systemd-helper unmask vfio-exporter.service\n');
    expect(configured).toContain('deb-systemd-helper enable vfio-exporter.service\n');

    rmSync(log);
    expect(run('/bin/sh', ['-e', path.join(control, 'postrm'), 'purge'], env).status).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe('deb-systemd-helper purge vfio-exporter.service\ndeb-systemd-helper unmask vfio-exporter.service\n');
  });

  it('is lintian-clean, bar the overrides it ships with their reasons', () => {
    const result = run('lintian', ['--fail-on', 'error,warning', deb]);
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  }, 120_000);
});
