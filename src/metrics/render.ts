import type { AnyCollectorDefinition, CollectorDefinition, CollectorName, Snapshot } from '../collectors/types.js';
import { createExposition, emptyExposition } from './sink.js';

export interface BuildInfo {
  version: string;
  revision: string;
  nodejs: string;
}

/** Rendered text per facts object: a collector that hands back the same facts (nothing changed) is not rendered again. */
const renderedFacts = new WeakMap<object, string>();

const renderFacts = <Name extends CollectorName>(definition: CollectorDefinition<Name>, snapshot: Snapshot): string | undefined => {
  const facts = snapshot.facts[definition.name];
  if (facts === undefined) return undefined;
  let text = renderedFacts.get(facts);
  if (text === undefined) {
    const exposition = createExposition();
    definition.render(facts, exposition.sink);
    text = exposition.text();
    renderedFacts.set(facts, text);
  }
  return text;
};

/**
 * Renders one snapshot to the text exposition format. Called once per sample, so a scrape only
 * concatenates strings: /metrics never waits on host I/O or on metric construction. Each collector's
 * families are one block; blocks are joined with the blank line that separates families.
 */
export function renderSnapshot(snapshot: Snapshot, definitions: readonly AnyCollectorDefinition[], build: BuildInfo): string {
  const blocks: string[] = [];
  for (const definition of definitions) {
    const text = renderFacts(definition as CollectorDefinition<CollectorName>, snapshot);
    if (text !== undefined && text !== emptyExposition) blocks.push(text);
  }
  const { sink, text } = createExposition();
  const success = sink.gauge('vfio_collector_success', '1 when the collector ran without errors in the last sample.', ['collector']);
  const duration = sink.gauge('vfio_collector_duration_seconds', 'How long the collector took in the last sample.', ['collector']);
  for (const outcome of snapshot.outcomes) {
    success({ collector: outcome.name }, outcome.success ? 1 : 0);
    duration({ collector: outcome.name }, outcome.durationSeconds);
  }
  sink.gauge('vfio_last_sample_timestamp_seconds', 'When the last sample started, seconds since the epoch.')({}, snapshot.takenAtMs / 1000);
  sink.gauge('vfio_exporter_build_info', 'Exporter build; value is always 1.', ['version', 'revision', 'nodejs'])(
    { version: build.version, revision: build.revision, nodejs: build.nodejs },
    1,
  );
  blocks.push(text());
  return blocks.join('\n');
}
