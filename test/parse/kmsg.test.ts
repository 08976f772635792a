import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KmsgDumpParser, parseKmsgHeaderLine, parseKmsgRecord, unescapeKmsgText, type KmsgRecord } from '../../src/parse/kmsg.js';
import { fixturesDir } from '../helpers/fixtures.js';

const sample = (name: string): string => readFileSync(path.join(fixturesDir, 'kmsg', name), 'utf8');

function parseDump(...pieces: string[]): { records: KmsgRecord[]; malformed: string[]; parser: KmsgDumpParser } {
  const records: KmsgRecord[] = [];
  const malformed: string[] = [];
  const parser = new KmsgDumpParser({ record: (record) => records.push(record), malformed: (line) => malformed.push(line) });
  for (const piece of pieces) parser.push(piece);
  parser.flush();
  return { records, malformed, parser };
}

describe('kmsg record parser', () => {
  it('splits priority into facility and level and reads sequence, time and flags', () => {
    expect(parseKmsgHeaderLine('3,225,8037623241,-;Out of memory: Killed process 32969 (kvm)')).toEqual({
      level: 3,
      facility: 0,
      sequence: 225,
      monotonicMicros: 8037623241,
      flags: '-',
      message: 'Out of memory: Killed process 32969 (kvm)',
      properties: {},
    });
    const fromUserSpace = parseKmsgHeaderLine('30,112,1200000,-;systemd[1]: Hostname set to <suprox>.')!;
    expect([fromUserSpace.facility, fromUserSpace.level]).toEqual([3, 6]);
  });

  it('accepts extra header fields and a message holding semicolons and commas', () => {
    const record = parseKmsgHeaderLine('6,7,8,c,caller=T123;a;b,c')!;
    expect([record.flags, record.message]).toEqual(['c', 'a;b,c']);
  });

  it('rejects lines that are not record headers', () => {
    for (const line of ['', 'hello', '6,7;x', '6,x,8,-;m', '6,7,8;m', '-1,7,8,-;m', '6,7,8,;m', ' SUBSYSTEM=pci']) {
      expect(parseKmsgHeaderLine(line), line).toBeUndefined();
    }
  });

  it('decodes the kernel escapes: a literal backslash, control bytes, UTF-8 sequences', () => {
    expect(unescapeKmsgText('machine-qemu\\x5cx2d1\\x5cx2dwin10.scope')).toBe('machine-qemu\\x2d1\\x2dwin10.scope');
    expect(unescapeKmsgText('tab\\x09end')).toBe('tab\tend');
    expect(unescapeKmsgText('caf\\xc3\\xa9')).toBe('café');
    expect(unescapeKmsgText('no escapes')).toBe('no escapes');
    expect(unescapeKmsgText('half \\x escape \\xZZ')).toBe('half \\x escape \\xZZ');
  });

  it('turns invalid UTF-8, escaped or raw, into U+FFFD and keeps the rest', () => {
    expect(unescapeKmsgText('bad \\xff\\xfe bytes')).toBe('bad \uFFFD\uFFFD bytes');
    const raw = Buffer.concat([Buffer.from('6,1,2,-;raw '), Buffer.from([0xc3, 0x28]), Buffer.from(' end\n')]).toString('utf8');
    const { records } = parseDump(raw);
    expect(records[0]!.message).toBe('raw \uFFFD( end');
  });

  it('reads the continuation lines of a device read into properties', () => {
    const record = parseKmsgRecord('4,2013,902113778,-;vfio-pci 0000:01:00.0: BAR 3: can\'t reserve [mem 0xc0000000-0xc1ffffff 64bit pref]\n SUBSYSTEM=pci\n DEVICE=+pci:0000:01:00.0\n')!;
    expect(record.properties).toEqual({ SUBSYSTEM: 'pci', DEVICE: '+pci:0000:01:00.0' });
    expect(record.message).toBe("vfio-pci 0000:01:00.0: BAR 3: can't reserve [mem 0xc0000000-0xc1ffffff 64bit pref]");
  });

  it('keeps a 10 KB record whole', () => {
    const long = 'x'.repeat(10 * 1024);
    expect(parseKmsgRecord(`6,9,10,-;${long}\n`)!.message).toBe(long);
    expect(parseDump(`6,9,10,-;${long}\n6,10,11,-;next\n`).records.map((record) => record.message.length)).toEqual([10240, 4]);
  });
});

describe('kmsg dump parser', () => {
  it('gives the same records however the text is cut into pieces', () => {
    const text = sample('passthrough-trouble.txt') + sample('pr-cont-split.txt');
    const whole = parseDump(text);
    expect(whole.records).toHaveLength(23);
    expect(whole.malformed).toEqual([]);
    for (let cut = 1; cut < text.length; cut += 7) {
      expect(parseDump(text.slice(0, cut), text.slice(cut)).records, `cut at ${cut}`).toEqual(whole.records);
    }
    expect(parseDump(...text.split('')).records).toEqual(whole.records);
  });

  it('attaches continuation lines to the record before them', () => {
    const { records } = parseDump(sample('passthrough-trouble.txt'));
    const amd = records.find((record) => record.sequence === 2012)!;
    expect(amd.properties).toEqual({ SUBSYSTEM: 'iommu', DEVICE: '+iommu:ivhd0' });
    expect(records.find((record) => record.sequence === 2011)!.properties).toEqual({});
  });

  it('holds a last record cut mid-way until its newline comes', () => {
    const first = parseDump('6,1,2,-;whole\n3,2,3,-;Out of memory: Killed process 32969 (kvm) total-vm:1733');
    expect(first.records.map((record) => record.message)).toEqual(['whole']);
    first.parser.push('9840kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB\n');
    first.parser.flush();
    expect(first.records.map((record) => record.message)).toEqual([
      'whole',
      'Out of memory: Killed process 32969 (kvm) total-vm:17339840kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB',
    ]);
  });

  it('counts a line cut mid-way in the middle of a dump as malformed and reads on', () => {
    const { records, malformed } = parseDump('6,1,2,-;before\n6,2\n6,3,4,-;after\n');
    expect(records.map((record) => record.message)).toEqual(['before', 'after']);
    expect(malformed).toEqual(['6,2']);
  });

  it('reads a fixture host dump without a malformed line', () => {
    const { records, malformed } = parseDump(readFileSync(path.join(fixturesDir, 'hosts/suprox/kmsg'), 'utf8'));
    expect(malformed).toEqual([]);
    expect(records.map((record) => record.sequence)).toEqual(records.map((_record, index) => index));
  });
});
