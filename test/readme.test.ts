import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { valueFlags } from '../src/cli/flags.js';
import { allCollectors } from '../src/collectors/index.js';
import { repoRoot } from './helpers/fixtures.js';
import { ruleGroups } from './helpers/rules.js';

const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

describe('README', () => {
  it('documents every flag and every collector', () => {
    for (const flag of valueFlags) expect(readme, `--${flag.name}`).toContain(`\`--${flag.name}\``);
    for (const collector of allCollectors) expect(readme, collector.name).toContain(`| \`${collector.name}\` |`);
  });

  it('documents every metric the fixture hosts expose', () => {
    const names = new Set(
      readdirSync(path.join(repoRoot, 'test/golden')).flatMap((file) =>
        [...readFileSync(path.join(repoRoot, 'test/golden', file), 'utf8').matchAll(/^# TYPE (vfio_\w+) /gm)].map((match) => match[1]!),
      ),
    );
    expect(names.size).toBeGreaterThan(40);
    const undocumented = [...names].filter((name) => !readme.includes(`\`${name}\``));
    expect(undocumented).toEqual([]);
  });

  it('lists every rule group with its interval and every alert in the group that holds it', () => {
    const table = new Map(
      [...readme.matchAll(/^\| (`vfio\.[^|]+) \| ([^|]+) \| ([^|]+) \|$/gm)].flatMap(([, groups, interval, alerts]) =>
        [...groups!.matchAll(/`(vfio\.[a-z.]+)`/g)].map(([, group]) => [group!, { interval: interval!.trim(), alerts: alerts! }] as const),
      ),
    );
    const groups = ruleGroups();
    for (const group of groups) {
      const row = table.get(group.name);
      expect(row, group.name).toBeDefined();
      if (group.interval) expect(row!.interval, group.name).toBe(group.interval);
      else expect(row!.interval, group.name).toContain('evaluation_interval');
      // The 1-minute groups' row says what they watch in words; the others name their alerts.
      if (!row!.alerts.includes('`Vfio')) continue;
      for (const rule of group.rules) if (rule.alert) expect(row!.alerts, group.name).toContain(`\`${rule.alert}\``);
    }
    expect([...table.keys()].sort()).toEqual(groups.map((group) => group.name).sort());
  });

  it('shows the join with prometheus-pve-exporter that its promtool test checks', () => {
    const test = readFileSync(path.join(repoRoot, 'alerts/tests/pve-exporter-join.yml'), 'utf8');
    const expr = /- expr: \|\n((?: {10}.*\n)+)/.exec(test)![1]!.replace(/^ {10}/gm, '');
    expect(readme).toContain(`\`\`\`promql\n${expr}\`\`\``);
  });
});
