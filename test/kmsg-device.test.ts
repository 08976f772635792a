import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { KernelLogTally } from '../src/collectors/oom-tally.js';
import { KmsgFollower } from '../src/host/kmsg.js';
import type { KmsgRecord } from '../src/parse/kmsg.js';
import { fixtureFlags, hostDir, sampledApp } from './helpers/fixtures.js';
import { within } from './helpers/within.js';

const kmsgReadable = ((): boolean => {
  try {
    accessSync('/dev/kmsg', constants.R_OK);
    return true;
  } catch {
    return false;
  }
})();
if (!kmsgReadable) console.warn('skipping /dev/kmsg tests: /dev/kmsg is not readable here (needs root or CAP_SYSLOG)');

const followers: KmsgFollower[] = [];
const tmpDirs: string[] = [];
afterEach(async () => {
  await Promise.all(followers.splice(0).map((follower) => follower.close()));
  for (const dir of tmpDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function follow(file: string, onRecord: (record: KmsgRecord) => void = () => undefined): KmsgFollower {
  const follower = new KmsgFollower(file, { opened: () => undefined, record: onRecord, malformed: () => undefined, overrun: () => undefined, cut: () => undefined });
  followers.push(follower);
  return follower;
}

/** Many fs calls at once (they all go through libuv's thread pool) and a full sample plus scrape of a fixture host. */
async function exporterWork(): Promise<number> {
  const file = path.join(hostDir('suprox'), 'proc/vmstat');
  const reads = await Promise.all(Array.from({ length: 200 }, () => readFile(file, 'utf8')));
  const { app, sampler } = await sampledApp(fixtureFlags('suprox'));
  const { text } = await request(app).get('/metrics').expect(200);
  await sampler.stop();
  expect(text).toContain('vfio_oom_kills_total 1');
  return reads.length;
}

// More followers than libuv has pool threads: if any of them held a pool thread in a blocking read, the pool would starve.
const threadPoolSize = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4);

describe('kernel log follower', () => {
  it.skipIf(!kmsgReadable)('waits on the real /dev/kmsg without taking a thread-pool thread: fs calls and a scrape finish meanwhile', async () => {
    const waiting = Array.from({ length: threadPoolSize + 1 }, () => follow('/dev/kmsg'));
    await within(10_000, Promise.all(waiting.map((follower) => follower.poll())));
    for (const follower of waiting) follower.startPolling(5, (error) => expect.fail(String(error)));
    expect(await within(10_000, exporterWork())).toBe(200);
  });

  it('follows a FIFO: records written later are read, pieces cut anywhere, nothing else waits for them', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-kmsg-fifo-'));
    tmpDirs.push(dir);
    const fifo = path.join(dir, 'kmsg');
    execFileSync('mkfifo', [fifo]);
    const seen: KmsgRecord[] = [];
    const readers = Array.from({ length: threadPoolSize + 1 }, (_value, index) => follow(fifo, index === 0 ? (record) => seen.push(record) : undefined));
    await readers[0]!.poll();
    readers[0]!.startPolling(5, (error) => expect.fail(String(error)));
    // A writer that has not written yet: the follower must not sit in read() for it.
    const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      expect(await within(10_000, exporterWork())).toBe(200);
      await writer.write('6,1,100,-;first\n SUBSYSTEM=pci\n6,2,20');
      await writer.write('0,-;second\n');
      const deadline = Date.now() + 5000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(seen.map((record) => [record.sequence, record.message, record.properties])).toEqual([
        [1, 'first', { SUBSYSTEM: 'pci' }],
        [2, 'second', {}],
      ]);
    } finally {
      await writer.close();
    }
  });

  it.skipIf(!kmsgReadable)('two followers of the real ring arrive at the same counts', async () => {
    const tallies = [new KernelLogTally(), new KernelLogTally()];
    const context = { vms: [], bootTimeSeconds: 0 };
    const [first, second] = tallies.map((tally) => follow('/dev/kmsg', (record) => tally.add(record, context)));
    // Something else may log between the two reads; read both again until they agree (bounded).
    for (let attempt = 0; attempt < 5; attempt++) {
      await first!.poll();
      await second!.poll();
      await first!.poll();
      if (tallies[0]!.facts().records === tallies[1]!.facts().records) break;
    }
    expect(tallies[0]!.facts().records).toBeGreaterThan(0);
    expect(tallies[1]!.facts()).toEqual(tallies[0]!.facts());
  });
});
