/**
 * A flood of basic-auth logins with unknown users and random passwords, at a fixed rate (an open loop:
 * requests go out on schedule whatever the answers), in a process of its own so that its work does not
 * delay the scrapes the soak measures. Prints one JSON line of counts per status when it gets SIGTERM.
 *
 *   node --import tsx bench/login-flood.ts <url> <requests per second> <connections>
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { get } from './http.js';

const [url, rateArg, connectionsArg] = process.argv.slice(2);
if (!url) throw new Error('usage: login-flood.ts <url> <requests per second> <connections>');
const rate = Number(rateArg ?? 200);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connectionsArg ?? 50) });
const statuses = new Map<string, number>();
const count = (status: string): void => void statuses.set(status, (statuses.get(status) ?? 0) + 1);

const login = (): void => {
  const credentials = Buffer.from(`intruder-${randomBytes(4).toString('hex')}:${randomBytes(8).toString('hex')}`).toString('base64');
  get(url, { agent, discardBody: true, timeoutMs: 30_000, headers: { Authorization: `Basic ${credentials}` } }).then(
    ({ status }) => count(String(status)),
    () => count('error'),
  );
};
// Ten batches a second: a timer per request would be delayed by the answers it waits for.
const timer = setInterval(() => {
  for (let index = 0; index < rate / 10; index++) login();
}, 100);
process.once('SIGTERM', () => {
  clearInterval(timer);
  process.stdout.write(JSON.stringify(Object.fromEntries(statuses)) + '\n');
  process.exit(0);
});
