import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { oomCollector } from '../src/collectors/oom.js';
import { KmsgFollower, type KmsgReadLimits } from '../src/host/kmsg.js';
import { maxKmsgLineLength, type KmsgRecord } from '../src/parse/kmsg.js';
import { silentLogger } from '../src/log.js';
import { configFor } from './helpers/fixtures.js';
import { copyHost } from './helpers/tmp-host.js';
import { within } from './helpers/within.js';

const followers: KmsgFollower[] = [];
const tmpDirs: string[] = [];
afterEach(async () => {
  await Promise.all(followers.splice(0).map((follower) => follower.close()));
  for (const dir of tmpDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tmpFile(name = 'kmsg'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-kmsg-limits-'));
  tmpDirs.push(dir);
  return path.join(dir, name);
}

function follow(file: string, limits?: KmsgReadLimits) {
  const seen = { records: [] as KmsgRecord[], malformed: [] as string[], opened: 0, cut: 0 };
  const follower = new KmsgFollower(
    file,
    {
      opened: () => seen.opened++,
      record: (record) => seen.records.push(record),
      malformed: (text) => seen.malformed.push(text),
      overrun: () => undefined,
      cut: () => seen.cut++,
    },
    limits,
  );
  followers.push(follower);
  return { follower, seen };
}

const records = (from: number, to: number): string => {
  let text = '';
  for (let sequence = from; sequence <= to; sequence++) text += `6,${sequence},${sequence * 1000},-;vmbr0: port 6(tap101i0) entered disabled state\n`;
  return text;
};

describe('kernel log reads are bounded per poll', () => {
  it('/dev/zero as the kernel log: a poll ends after the byte limit, the rest is read at the next one, the event loop turns meanwhile', async () => {
    const { follower, seen } = follow('/dev/zero', { bytes: 4 * 1024 * 1024, records: 1024 * 1024 });
    let turned = false;
    setImmediate(() => (turned = true));
    const poll = follower.poll();
    expect(turned).toBe(false);
    expect(await within(10_000, poll)).toBe(false);
    expect(turned).toBe(true);
    // 64 KiB per read: 64 reads, each NULs and no record.
    expect(seen.malformed).toHaveLength(64);
    expect(seen.malformed.every((text) => text.length <= maxKmsgLineLength)).toBe(true);
    expect(await within(10_000, follower.poll())).toBe(false);
    expect(seen.malformed).toHaveLength(128);
    expect(seen.records).toEqual([]);
  });

  it('/dev/zero as --path.kmsg: the oom collector finishes its sample, fails it with a clear error, and vmstat is still read', async () => {
    const { flags } = copyHost('suprox');
    const settings = { sampleIntervalSeconds: 15, qmpTimeoutSeconds: 2, vmReadTimeoutSeconds: 2.5 };
    const collector = oomCollector.create(settings, silentLogger);
    try {
      const { paths } = configFor([...flags, '--path.kmsg=/dev/zero']);
      const collected = await within(20_000, collector.collect({ paths, log: silentLogger, settings, previous: undefined }));
      expect(collected.errors).toEqual([expect.stringMatching(/^\/dev\/zero: not read to its end within this sample's limit/)]);
      expect(collected.facts.vmstatOomKills).toBe(1);
      // Never read to its end: no kernel log counts, rather than partial ones that would jump later.
      expect(collected.facts.kernelLog).toBeUndefined();
    } finally {
      await collector.close?.();
    }
  });

  it('a dump larger than the byte limit is read over several polls, every record once and in order', async () => {
    const file = tmpFile();
    writeFileSync(file, records(1, 2500));
    // 154 KiB: records are cut at the end of a poll and completed at the next.
    const { follower, seen } = follow(file, { bytes: 60 * 1024, records: 1024 * 1024 });
    const polls: boolean[] = [];
    for (let poll = 0; poll < 10 && polls.at(-1) !== true; poll++) polls.push(await follower.poll());
    expect(polls).toEqual([false, false, true]);
    expect(seen.records.map((record) => record.sequence)).toEqual(Array.from({ length: 2500 }, (_value, index) => index + 1));
  });

  it('text without newlines is not held whole: the overlong line is reported cut short, the record after it is read', async () => {
    const file = tmpFile();
    writeFileSync(file, Buffer.alloc(8 * 1024 * 1024, 'x'));
    appendFileSync(file, '\n6,7,7000,-;after the binary\n');
    const { follower, seen } = follow(file);
    expect(await follower.poll()).toBe(true);
    expect(seen.malformed.map((text) => text.length)).toEqual([maxKmsgLineLength]);
    expect(seen.records.map((record) => record.message)).toEqual(['after the binary']);
  });

  it('a dump truncated in place (copytruncate) is read again from its start; one rotated away is followed to the new file', async () => {
    const file = tmpFile();
    writeFileSync(file, records(1, 3) + '6,4,4000,-;cut mid-');
    const { follower, seen } = follow(file);
    await follower.poll();
    truncateSync(file, 0);
    appendFileSync(file, records(5, 6));
    await follower.poll();
    expect(seen.records.map((record) => record.sequence)).toEqual([1, 2, 3, 5, 6]);
    expect(seen.cut).toBe(1);

    renameSync(file, file + '.1');
    appendFileSync(file + '.1', records(7, 7));
    writeFileSync(file, records(8, 9));
    await follower.poll();
    // The rest of the rotated file first, then the new one.
    expect(seen.records.map((record) => record.sequence)).toEqual([1, 2, 3, 5, 6, 7, 8, 9]);
    expect(seen.opened).toBe(3);
    expect(seen.cut).toBe(1);
  });
});
