import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultMixinConfig, describeSelector, parseMixinConfig } from '../src/mixin/config.js';
import { generateMixin } from '../src/mixin/generate.js';
import { dedent, renderRules } from '../src/mixin/rules-yaml.js';
import { tempDir } from './helpers/alerting.js';
import { repoRoot } from './helpers/fixtures.js';

describe('the checked-in rules and dashboards', () => {
  it.each([...generateMixin({ ...defaultMixinConfig })])('%s is what src/mixin generates with the default config', (file, generated) => {
    const checkedIn = readFileSync(path.join(repoRoot, file), 'utf8');
    // Equal text, not just equal values: a hand edit of the file is lost at the next generation.
    expect(checkedIn, `${file} differs from src/mixin: edit src/mixin and run npm run mixin`).toBe(generated);
  });
});

describe('the rule file writer', () => {
  it('quotes what YAML would read otherwise, and refuses an annotations anchor no rule declares', () => {
    const text = renderRules('header', [{ name: 'g', rules: [{ record: 'r:x', expr: 'x{a="#b"} # c: d' }] }]);
    expect(text).toContain(`expr: 'x{a="#b"} # c: d'`);
    expect(() =>
      renderRules('h', [{ name: 'g', rules: [{ alert: 'A', expr: 'x', severity: 'warning', annotations: 'nosuch' }] }]),
    ).toThrow(/no rule declares the annotations anchor nosuch/);
  });

  it('dedents template literals and leaves one-liners alone', () => {
    expect(dedent('\n    a\n      b\n    c')).toBe('a\n  b\nc');
    expect(dedent('  a')).toBe('  a');
  });
});

describe('mixin settings', () => {
  it('keeps the defaults for an empty file and reads sizes and durations as the flags do', () => {
    expect(parseMixinConfig('')).toEqual(defaultMixinConfig);
    expect(parseMixinConfig('host_reserve: 2GiB\nmemory_drain_warning: 20m\nsample_stale: 90s\nfleet_labels: [cluster]')).toMatchObject({
      hostReserveBytes: 2 * 1024 ** 3,
      memoryDrainWarningSeconds: 1200,
      sampleStaleSeconds: 90,
      fleetLabels: ['cluster'],
    });
  });

  it('names the setting at fault', () => {
    expect(() => parseMixinConfig('host_reserv: 2GiB')).toThrow(/unknown setting host_reserv/);
    expect(() => parseMixinConfig('exporter_selector: pve-hosts')).toThrow(/exporter_selector: expected label matchers/);
    expect(() => parseMixinConfig('fleet_labels: [cluster, instance]')).toThrow(/fleet_labels: .*instance/);
    expect(() => parseMixinConfig('memory_pressure_full_ratio: 5')).toThrow(/memory_pressure_full_ratio/);
    expect(() => parseMixinConfig('memory_drain_critical: 20m')).toThrow(/must not exceed memory_drain_warning/);
  });

  it('describes the exporter selector in words for the annotations', () => {
    expect(describeSelector('job=~".*vfio.*"')).toBe('a job whose name contains "vfio"');
    expect(describeSelector('job="pve-hosts"')).toBe('the job "pve-hosts"');
    expect(describeSelector('job="a", env="b"')).toBe('a target matching {job="a", env="b"}');
  });
});

describe('vfio-exporter mixin', () => {
  const mixin = (args: string[]) =>
    spawnSync(path.join(repoRoot, 'node_modules/.bin/tsx'), [path.join(repoRoot, 'src/main.ts'), 'mixin', ...args], { encoding: 'utf8', timeout: 30_000 });

  it('writes the files readable by all, replacing a link planted at a file name without writing through it', () => {
    const dir = tempDir('vfio-mixin-out-');
    try {
      mkdirSync(path.join(dir.dir, 'alerts'));
      const victim = path.join(dir.dir, 'victim');
      writeFileSync(victim, 'keep');
      symlinkSync(victim, path.join(dir.dir, 'alerts/vfio.rules.yml'));
      const result = mixin(['--out', dir.dir]);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(readFileSync(victim, 'utf8')).toBe('keep');
      const rules = path.join(dir.dir, 'alerts/vfio.rules.yml');
      expect(lstatSync(rules).isFile()).toBe(true);
      expect(readFileSync(rules, 'utf8')).toBe(readFileSync(path.join(repoRoot, 'alerts/vfio.rules.yml'), 'utf8'));
      // 0644 as the umask lets it (the command runs with this process's umask).
      expect(statSync(path.join(dir.dir, 'grafana/vfio-fleet.json')).mode & 0o777).toBe(0o644 & ~process.umask());
    } finally {
      dir.remove();
    }
  });

  it('refuses a directory that is a link, a bad settings file and a missing --out, writing nothing', () => {
    const dir = tempDir('vfio-mixin-out-');
    try {
      const elsewhere = path.join(dir.dir, 'elsewhere');
      mkdirSync(elsewhere);
      mkdirSync(path.join(dir.dir, 'out'));
      symlinkSync(elsewhere, path.join(dir.dir, 'out/grafana'));
      const linked = mixin(['--out', path.join(dir.dir, 'out')]);
      expect(linked.stderr).toMatch(/grafana: not a directory \(a symbolic link\)/);
      expect(linked.status).toBe(1);
      expect(readdirSync(path.join(dir.dir, 'out'))).toEqual(['grafana']);
      const settings = path.join(dir.dir, 'bad.yml');
      writeFileSync(settings, 'fleet_labels: cluster\n');
      const bad = mixin(['--config', settings, '--out', path.join(dir.dir, 'other')]);
      expect(bad.stderr).toMatch(/bad\.yml: fleet_labels: expected a list/);
      expect(bad.status).toBe(2);
      expect(mixin([]).stderr).toMatch(/--out is required/);
      expect(readdirSync(elsewhere)).toEqual([]);
      expect(existsSync(path.join(dir.dir, 'other'))).toBe(false);
    } finally {
      dir.remove();
    }
  });
});
