/** Removes what differs between runs (durations, timestamps, the Node.js version, process metrics). */
export function normaliseExposition(text: string): string {
  const volatileFamilies = /^(# (HELP|TYPE) )?(process_|nodejs_)/;
  return text
    .split('\n')
    .filter((line) => !volatileFamilies.test(line))
    .map((line) =>
      line
        .replace(/^(vfio_collector_duration_seconds\{[^}]*\}) .*$/, '$1 <duration>')
        .replace(/^(vfio_last_sample_timestamp_seconds) .*$/, '$1 <timestamp>')
        .replace(/nodejs="[^"]*"/, 'nodejs="<version>"'),
    )
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd() + '\n';
}
