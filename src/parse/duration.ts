const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/** Prometheus-style durations: `15s`, `500ms`, `2m`, `1h30m`. Returns seconds. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const pattern = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let seconds = 0;
  let consumed = 0;
  for (const match of trimmed.matchAll(pattern)) {
    seconds += Number(match[1]) * units[match[2]!]!;
    consumed += match[0].length;
  }
  if (trimmed === '' || consumed !== trimmed.length) throw new Error(`not a duration: ${JSON.stringify(text)} (use e.g. 15s, 500ms, 2m)`);
  return seconds;
}
