import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixtures.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'vfio-npm-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm install -g', () => {
  it('puts a working vfio-exporter on PATH from the packed tarball', () => {
    const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    // `npm pack` runs `prepare`, which builds dist/.
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 })) as [{ filename: string; files: { path: string }[] }];
    const shipped = packed[0].files.map((file) => file.path);
    expect(shipped).toContain('dist/src/main.js');
    expect(shipped).toContain('dist/package.json');
    expect(shipped.filter((file) => file.startsWith('test/') || file.startsWith('src/') || file.startsWith('dist/test/'))).toEqual([]);

    const prefix = path.join(work, 'prefix');
    // The cache already holds every dependency (npm ci ran); go to the registry only for what it lacks.
    execFileSync('npm', ['install', '--global', '--prefer-offline', '--no-audit', '--no-fund', '--prefix', prefix, path.join(work, packed[0].filename)], { encoding: 'utf8', timeout: 180_000 });
    const result = spawnSync(path.join(prefix, 'bin/vfio-exporter'), ['--version'], { cwd: work, encoding: 'utf8', timeout: 20_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(new RegExp(`^vfio-exporter ${version.replace(/\./g, '\\.')} \\(revision unknown, node v`));
    expect(result.status).toBe(0);
  }, 300_000);
});
