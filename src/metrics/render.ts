import type { AnyCollectorDefinition, CollectorDefinition, CollectorName, Snapshot } from '../collectors/types.js';
import { createExposition, emptyExposition } from './sink.js';

export interface BuildInfo {
  version: string;
  revision: string;
  nodejs: string;
}

/**
 * Encoded text per facts object: a collector that hands back the same facts (nothing changed) is not
 * rendered again. The bytes are the only copy of the text: no string of it is kept.
 */
const renderedFacts = new WeakMap<object, Buffer | undefined>();

const renderFacts = <Name extends CollectorName>(definition: CollectorDefinition<Name>, snapshot: Snapshot): Buffer | undefined => {
  const facts = snapshot.facts[definition.name];
  if (facts === undefined) return undefined;
  if (!renderedFacts.has(facts)) {
    const exposition = createExposition();
    definition.render(facts, exposition.sink);
    const text = exposition.text();
    renderedFacts.set(facts, text === emptyExposition ? undefined : Buffer.from(text));
  }
  return renderedFacts.get(facts);
};

/** The blank line between two collectors' blocks (each block ends with a newline). */
const blockSeparator = Buffer.from('\n');

/**
 * Renders one snapshot to the text exposition format, as the chunks of bytes a scrape writes one after
 * another. Called once per sample, so a scrape never waits on host I/O or on metric construction. Each
 * collector's families are one block, separated by the blank line that separates families.
 */
export function renderSnapshot(snapshot: Snapshot, definitions: readonly AnyCollectorDefinition[], build: BuildInfo, hostReserveBytes?: number): Buffer[] {
  const blocks: Buffer[] = [];
  for (const definition of definitions) {
    const block = renderFacts(definition as CollectorDefinition<CollectorName>, snapshot);
    if (block !== undefined) blocks.push(block, blockSeparator);
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
  if (hostReserveBytes !== undefined)
    sink.gauge('vfio_exporter_host_reserve_bytes', '--memory.host-reserve, when set: the rules judge this host with it instead of vfio:config_host_reserve_bytes.')({}, hostReserveBytes);
  blocks.push(Buffer.from(text()));
  return blocks;
}
