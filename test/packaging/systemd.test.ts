import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { valueFlags } from '../../src/cli/flags.js';
import { findBinary, repoRoot } from '../helpers/fixtures.js';

const unitFile = path.join(repoRoot, 'packaging/vfio-exporter.service');
let root: string;

/**
 * A root for `systemd-analyze --root` holding this machine's systemd units, the service where the .deb
 * installs it and a stand-in for the executable it starts.
 */
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'vfio-systemd-'));
  mkdirSync(path.join(root, 'lib/systemd'), { recursive: true });
  cpSync('/lib/systemd/system', path.join(root, 'lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  cpSync(unitFile, path.join(root, 'lib/systemd/system/vfio-exporter.service'));
  mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  writeFileSync(path.join(root, 'usr/bin/vfio-exporter'), '#!/bin/sh\n');
  chmodSync(path.join(root, 'usr/bin/vfio-exporter'), 0o755);
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const analyze = (...args: string[]) => spawnSync(findBinary('systemd-analyze'), args, { encoding: 'utf8', timeout: 30_000 });

describe('the systemd service', () => {
  it('passes systemd-analyze verify without a single warning', () => {
    // --man=no: Documentation= names the man page the .deb ships, which is not installed on this machine.
    const result = analyze('verify', '--man=no', `--root=${root}`, 'vfio-exporter.service');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('is sandboxed: systemd rates its exposure below 3 of 10', () => {
    const result = analyze('security', '--offline=true', `--root=${root}`, 'vfio-exporter.service');
    const exposure = /Overall exposure level for vfio-exporter\.service: (\d+\.\d+)/.exec(result.stdout);
    expect(exposure, result.stdout + result.stderr).not.toBeNull();
    expect(Number(exposure![1])).toBeLessThan(3);
  });

  it('runs as its own user with only the capabilities the README explains', () => {
    const unit = readFileSync(unitFile, 'utf8');
    expect(unit).toMatch(/^User=vfio-exporter$/m);
    expect(unit).toMatch(/^AmbientCapabilities=CAP_SYSLOG CAP_DAC_READ_SEARCH$/m);
    expect(unit).toMatch(/^CapabilityBoundingSet=CAP_SYSLOG CAP_DAC_READ_SEARCH$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/vfio-exporter \$ARGS$/m);
    // Either would hide /dev/kmsg, the source of OOM kills.
    expect(unit).not.toMatch(/^(PrivateDevices|ProtectKernelLogs)=yes/m);
  });

  it('outlives the OOM kill it reports, yet stays killable; writes only the state directory the default --state.file names', () => {
    const unit = readFileSync(unitFile, 'utf8');
    const adjust = Number(/^OOMScoreAdjust=(-?\d+)$/m.exec(unit)?.[1]);
    expect(adjust).toBeLessThanOrEqual(-500);
    expect(adjust).toBeGreaterThan(-1000);
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
    expect(unit).toMatch(/^StateDirectory=vfio-exporter$/m);
    expect(unit).toMatch(/^StateDirectoryMode=0700$/m);
    const stateFlag = valueFlags.find((flag) => flag.name === 'state.file');
    expect(path.dirname(stateFlag!.defaultValue!)).toBe('/var/lib/vfio-exporter');
  });
});
