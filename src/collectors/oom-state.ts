import { errorMessage } from '../host/fs.js';
import { kernelEventKinds } from '../parse/kernel-events.js';
import type { NewestRecord } from './kmsg-sequence.js';
import { sequenceBreakKinds, skipReasons, type KernelLogFacts, type KernelLogState, type ObservedKill, type OomKillCount } from './oom-tally.js';

/** What the oom collector keeps across restarts: the kernel log counts of one boot. */
export interface SavedKernelLog {
  bootId: string;
  state: KernelLogState;
}

const formatVersion = 1;
/** Far more label sets than a host produces; a file with more was not written by the exporter. */
const maxEntries = 10_000;

export const encodeSavedKernelLog = ({ bootId, state }: SavedKernelLog): string =>
  JSON.stringify({ version: formatVersion, bootId, newest: state.newest ?? null, facts: state.facts }) + '\n';

type Json = Record<string, unknown>;

const object = (value: unknown, what: string): Json => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what}: not an object`);
  return value as Json;
};

const count = (value: unknown, what: string): number => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new Error(`${what}: not a count`);
  return value;
};

const text = (value: unknown, what: string): string => {
  if (typeof value !== 'string') throw new Error(`${what}: not a string`);
  return value;
};

const list = (value: unknown, what: string): unknown[] => {
  if (!Array.isArray(value) || value.length > maxEntries) throw new Error(`${what}: not a list of at most ${maxEntries}`);
  return value;
};

const counts = <K extends string>(value: unknown, keys: readonly K[], what: string): Record<K, number> => {
  const fields = object(value, what);
  return Object.fromEntries(keys.map((key) => [key, count(fields[key] ?? 0, `${what}.${key}`)])) as Record<K, number>;
};

const optional = <T>(value: unknown, parse: (value: unknown) => T): T | undefined => (value === undefined || value === null ? undefined : parse(value));

function killCount(value: unknown): OomKillCount {
  const fields = object(value, 'killCounts[]');
  return { vmid: text(fields['vmid'], 'vmid'), comm: text(fields['comm'], 'comm'), constraint: text(fields['constraint'], 'constraint'), kills: count(fields['kills'], 'kills') };
}

function observedKill(value: unknown): ObservedKill {
  const fields = object(value, 'lastKills[]');
  const timestampSeconds = optional(fields['timestampSeconds'], (timestamp) => {
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp) || timestamp < 0) throw new Error('timestampSeconds: not a time');
    return timestamp;
  });
  return {
    vmid: text(fields['vmid'], 'vmid'),
    pid: count(fields['pid'], 'pid'),
    comm: text(fields['comm'], 'comm'),
    constraint: text(fields['constraint'], 'constraint'),
    timestampSeconds,
    rssBytes: count(fields['rssBytes'], 'rssBytes'),
    taskMemcg: optional(fields['taskMemcg'], (memcg) => text(memcg, 'taskMemcg')),
  };
}

function facts(value: unknown): KernelLogFacts {
  const fields = object(value, 'facts');
  return {
    records: count(fields['records'], 'records'),
    overruns: count(fields['overruns'], 'overruns'),
    parseErrors: count(fields['parseErrors'], 'parseErrors'),
    skipped: counts(fields['skipped'] ?? {}, skipReasons, 'skipped'),
    sequenceBreaks: counts(fields['sequenceBreaks'] ?? {}, sequenceBreakKinds, 'sequenceBreaks'),
    killCounts: list(fields['killCounts'], 'killCounts').map(killCount),
    lastKills: list(fields['lastKills'], 'lastKills').map(observedKill),
    kernelEvents: counts(fields['kernelEvents'], kernelEventKinds, 'kernelEvents'),
  };
}

function newest(value: unknown): NewestRecord {
  const fields = object(value, 'newest');
  return { sequence: count(fields['sequence'], 'newest.sequence'), micros: count(fields['micros'], 'newest.micros') };
}

/** The saved state, checked field by field; throws a message naming what is wrong. */
export function decodeSavedKernelLog(json: string): SavedKernelLog {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new Error(`not JSON: ${errorMessage(error)}`);
  }
  const fields = object(parsed, 'state');
  if (fields['version'] !== formatVersion) throw new Error(`version ${JSON.stringify(fields['version'])}, expected ${formatVersion}`);
  return {
    bootId: text(fields['bootId'], 'bootId'),
    state: { newest: optional(fields['newest'], newest), facts: facts(fields['facts']) },
  };
}
