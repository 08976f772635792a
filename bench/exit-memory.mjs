// Preloaded with `node --import` by the benchmark: when the process exits, one stderr line with its peak
// and final resident set (/proc/self/status) and its V8 heap, as JSON after `exit-memory `.
/* global process -- Node's, in a plain ES module outside the TypeScript project */
import { readFileSync } from 'node:fs';

process.on('exit', () => {
  const status = readFileSync('/proc/self/status', 'utf8');
  const bytes = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  const { heapUsed, heapTotal } = process.memoryUsage();
  process.stderr.write(`exit-memory ${JSON.stringify({ rss: bytes('VmRSS'), peak: bytes('VmHWM'), anon: bytes('RssAnon'), file: bytes('RssFile'), heapUsed, heapTotal })}\n`);
});
