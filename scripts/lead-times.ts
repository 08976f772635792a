/**
 * Lead times of the memory alerts on the drain scenarios of alerts/tests/drain.yml: for each leak,
 * how long before headroom is gone the first warning and the first page fire; for the busy but
 * healthy hosts, every alert that fires. Reads the rules given (default alerts/vfio.rules.yml), so
 * settings can be tried before they are changed; EVAL sets Prometheus' evaluation interval (default
 * that of the tests, 1m). Times are read to the minute.
 *
 *   [EVAL=15s] npx tsx scripts/lead-times.ts [rules.yml]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { drainTests, durationMinutes, scenarios } from '../test/helpers/drain-scenarios.js';
import { repoRoot } from '../test/helpers/fixtures.js';

const rulesFile = path.resolve(process.argv[2] ?? path.join(repoRoot, 'alerts/vfio.rules.yml'));
const evaluation = process.env['EVAL'];
const window = `${durationMinutes / 60}h`;

/** One query per question, each expecting nothing: promtool then prints what it got. */
const firstFiring = (instance: string, severity: string): string =>
  `min(min_over_time(timestamp(ALERTS{alertstate="firing",instance="${instance}",severity="${severity}"})[${window}:1m]))`;
const queries = scenarios.map(({ instance }) => ({
  warning: firstFiring(instance, 'warning'),
  critical: firstFiring(instance, 'critical'),
  firing: `count_over_time(ALERTS{alertstate="firing",instance="${instance}"}[${window}])`,
}));

const dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-lead-times-'));
try {
  const test = parse(drainTests()) as { rule_files: string[]; evaluation_interval: string; tests: { promql_expr_test: unknown[] }[] };
  test.rule_files = [rulesFile];
  if (evaluation) test.evaluation_interval = evaluation;
  test.tests[0]!.promql_expr_test = queries.flatMap((query) => Object.values(query)).map((expr) => ({ expr, eval_time: window, exp_samples: [] }));
  const file = path.join(dir, 'lead-times.yml');
  writeFileSync(file, stringify(test, { lineWidth: 0 }));
  const result = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8', maxBuffer: 64 * 1024 ** 2 });
  const output = result.stdout + result.stderr;
  // promtool names each failed query, then `got: {labels} value, {labels} value...`.
  const answers = new Map<string, string[]>();
  for (const block of output.split(/\n\s+expr: /).slice(1)) {
    const expr = JSON.parse(block.slice(0, block.indexOf(', time:'))) as string;
    const got = /got: (.*)$/m.exec(block)?.[1] ?? '';
    answers.set(expr, [...got.matchAll(/(\{[^}]*\}) (\S+?)(?:, |$)/g)].map((match) => `${match[1]} ${Number(match[2])}`));
  }
  if (answers.size === 0 && result.status !== 0) throw new Error(output);
  const firstAt = (expr: string): number | undefined => {
    const got = answers.get(expr)?.map((line) => Number(line.split(' ').pop()));
    return got && got.length > 0 ? Math.min(...got) / 60 : undefined;
  };
  console.log(`rules: ${path.relative(process.cwd(), rulesFile)}`);
  scenarios.forEach((scenario, index) => {
    const { warning, critical, firing } = queries[index]!;
    if (scenario.leak) {
      const lead = (minute: number | undefined): string => (minute === undefined ? 'never' : `${(scenario.leak!.exhaustedAt - minute).toFixed(2)} min before`);
      console.log(`${scenario.instance.padEnd(16)} first warning ${lead(firstAt(warning))}, first page ${lead(firstAt(critical))} headroom is gone`);
    } else {
      const alerts = answers.get(firing) ?? [];
      console.log(`${scenario.instance.padEnd(16)} ${alerts.length === 0 ? 'silent' : `fired: ${alerts.join('; ')}`}`);
    }
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
