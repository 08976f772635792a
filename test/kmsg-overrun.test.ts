import { describe, expect, it, vi } from 'vitest';
import { KmsgFollower, type KmsgReadLimits } from '../src/host/kmsg.js';
import type { KmsgRecord } from '../src/parse/kmsg.js';

// What read() on /dev/kmsg returns, one entry per call: a record's text, or an errno. Overrunning the real
// ring would take flooding the machine's kernel log, so the device is /dev/null with read() scripted.
const reads = vi.hoisted(() => [] as (string | NodeJS.ErrnoException)[]);
const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: scripted`), { code });

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return {
    ...actual,
    readSync: (_fd: number, buffer: Buffer) => {
      const next = reads.shift() ?? errno('EAGAIN');
      if (typeof next !== 'string') throw next;
      return buffer.write(next);
    },
  };
});

function followScripted(script: (string | NodeJS.ErrnoException)[], limits?: KmsgReadLimits) {
  reads.splice(0, reads.length, ...script);
  const seen = { records: [] as KmsgRecord[], malformed: [] as string[], overruns: 0 };
  const follower = new KmsgFollower('/dev/null', {
    record: (record) => seen.records.push(record),
    malformed: (text) => seen.malformed.push(text),
    overrun: () => seen.overruns++,
    opened: () => undefined,
    cut: () => undefined,
  }, limits);
  return { follower, seen };
}

describe('kernel log device reads', () => {
  it('counts EPIPE as an overrun and reads on from the oldest record still held', async () => {
    const { follower, seen } = followScripted(['6,1,10,-;one\n', errno('EPIPE'), '6,5,50,-;five\n SUBSYSTEM=pci\n', 'garbage\n']);
    await follower.poll();
    expect(seen.records.map((record) => [record.sequence, record.message, record.properties])).toEqual([
      [1, 'one', {}],
      [5, 'five', { SUBSYSTEM: 'pci' }],
    ]);
    expect(seen.overruns).toBe(1);
    expect(seen.malformed).toEqual(['garbage\n']);
    await follower.close();
  });

  it('reports a read error with the path and reopens at the next poll', async () => {
    const { follower, seen } = followScripted(['6,1,10,-;one\n', errno('EINVAL')]);
    await expect(follower.poll()).rejects.toThrow('/dev/null: EINVAL: scripted');
    reads.push('6,2,20,-;two\n');
    await follower.poll();
    expect(seen.records.map((record) => record.sequence)).toEqual([1, 2]);
    await follower.close();
  });

  it('reads at most the record limit per poll and the rest at the next, so a flooding kernel costs a bounded share of a core', async () => {
    const script = Array.from({ length: 10 }, (_value, index) => `6,${index + 1},${index}0,-;record ${index + 1}\n`);
    const { follower, seen } = followScripted(script, { bytes: 1024 * 1024, records: 4 });
    expect(await follower.poll()).toBe(false);
    expect(seen.records.map((record) => record.sequence)).toEqual([1, 2, 3, 4]);
    expect(await follower.poll()).toBe(false);
    expect(await follower.poll()).toBe(true);
    expect(seen.records.map((record) => record.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await follower.close();
  });
});
