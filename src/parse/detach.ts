/**
 * A copy of `text` that keeps no larger string alive. V8 makes a substring of a long string (a line of
 * pci.ids, a field of a 1 MB chunk of the kernel log) as a slice that holds the whole parent: a name kept
 * for the life of the process would keep the whole file, or the whole chunk, in memory.
 */
export const detached = (text: string): string => Buffer.from(text, 'utf8').toString('utf8');

/** `value` with each of its own string fields detached. */
export const withDetachedStrings = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).map(([key, field]) => [key, typeof field === 'string' ? detached(field) : field])) as T;
