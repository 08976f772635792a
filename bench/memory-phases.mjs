// Where the memory of `serve` goes, phase by phase, in one process running the built exporter as main.js
// does: the heap after a full collection, V8's code space, Node's external memory, and the npm packages
// loaded so far. Not part of `npm run bench`; docs/performance.md shows a run.
//
//   npm run build && node --expose-gc bench/memory-phases.mjs [exporter flags...]
/* global process, URL -- Node's, in a plain ES module outside the TypeScript project */
import { get } from 'node:http';
import { createRequire } from 'node:module';
import { getHeapSpaceStatistics } from 'node:v8';

const dist = new URL('../dist/src/', import.meta.url);
const require = createRequire(import.meta.url);
const flags = process.argv.slice(2);
const dependencies = Object.keys(require('../package.json').dependencies);
const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);

const phase = (name) => {
  globalThis.gc();
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  const code = getHeapSpaceStatistics().find((space) => space.space_name === 'code_space')?.space_used_size ?? 0;
  const packages = new Set(Object.keys(require.cache).flatMap((file) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1] ?? []));
  const direct = dependencies.filter((dependency) => packages.has(dependency));
  process.stdout.write(`| ${name} | ${mib(rss)} | ${mib(heapUsed)} | ${mib(heapTotal)} | ${mib(code)} | ${mib(external)} | ${direct.join(', ')} (${packages.size} packages) |\n`);
};

process.stdout.write('| phase | RSS MiB | heap used | heap total | code space | external | CommonJS dependencies loaded |\n|---|---|---|---|---|---|---|\n');
phase('node started');
await import(new URL('threadpool.js', dist).href);
const { parseFlags } = await import(new URL('cli/flags.js', dist).href);
const { silentLogger } = await import(new URL('log.js', dist).href);
const result = parseFlags([...flags, '--web.listen-address=127.0.0.1:0'], process.env);
if (result.kind !== 'config') throw new Error(`not a config: ${result.kind}`);
phase('flags parsed');
const { startExporter } = await import(new URL('exporter.js', dist).href);
const exporter = await startExporter(result.config, silentLogger);
phase('listening (web stack loaded)');
await exporter.sampler.sample();
phase('first sample');
for (let index = 0; index < 20; index++) await exporter.sampler.sample();
const url = `http://127.0.0.1:${exporter.port}${result.config.telemetryPath}`;
const scrape = () => new Promise((resolve, reject) => get(url, { headers: { 'Accept-Encoding': 'gzip' } }, (response) => response.resume().on('end', resolve)).on('error', reject));
for (let index = 0; index < 3; index++) await scrape();
phase('20 samples, 3 gzip scrapes');
await exporter.close();
