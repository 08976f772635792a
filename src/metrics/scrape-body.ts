import { promisify } from 'node:util';
import { constants, crc32, deflateRaw as deflateRawCallback, deflateRawSync } from 'node:zlib';
import type { Registry } from 'prom-client';
import type { Sample } from '../sampler.js';

const deflateRaw = promisify(deflateRawCallback);

/** How old the process_* and nodejs_* text may be when a scrape reuses it. */
export const processMetricsMaxAgeMs = 1000;

/**
 * Whether a scraper's Accept-Encoding takes gzip at least as gladly as plain text (RFC 9110 §12.5.3):
 * gzip's weight, or `*`'s, above 0 and not below identity's (1 unless given).
 */
export function prefersGzip(acceptEncoding: string | undefined): boolean {
  if (acceptEncoding === undefined) return false;
  const weights = new Map<string, number>();
  for (const part of acceptEncoding.split(',')) {
    const [coding = '', ...parameters] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const q = parameters.find((parameter) => parameter.startsWith('q='));
    if (coding !== '') weights.set(coding, q === undefined ? 1 : Number(q.slice(2)) || 0);
  }
  const weight = (coding: string, fallback: number): number => weights.get(coding) ?? weights.get('*') ?? fallback;
  const gzip = weight('gzip', 0);
  return gzip > 0 && gzip >= weight('identity', 1);
}

/** RFC 1952 member header: deflate, no flags, no mtime, OS Unix. */
const gzipHeader = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);

interface SnapshotBody {
  chunks: readonly Buffer[];
  bytes: number;
  crc: number;
}

interface ProcessBody {
  plain: Buffer;
  /** Raw deflate blocks ending with the final block. */
  deflated: Buffer;
}

/**
 * The bytes of /metrics responses. A snapshot's text is the sample's chunks, encoded once when it was
 * rendered; each chunk is compressed once, when a scraper first asks for gzip (as Prometheus does), and
 * kept as long as the chunk: a sample in which only the VM block changed compresses only that block, and
 * a host with thousands of devices does not compress megabytes of unchanged PCI text every 15 s.
 * prom-client's process metrics are rendered at most once per `processMetricsMaxAgeMs` and shared by the
 * scrapes in between, so many scrapers at once cost little.
 *
 * A gzip body is one gzip member: each chunk's deflate blocks (flushed to a byte boundary, as pigz
 * joins blocks), then the process text's own blocks ending with the final one, then the CRC-32 of the
 * whole text. (Two gzip members one after the other are valid gzip too, but curl decodes only the first.)
 */
export function createScrapeBodies(
  processRegistry: Registry,
  now: () => number = Date.now,
): (sample: Sample | undefined, wantsGzip: boolean) => Promise<Buffer[]> {
  const snapshots = new WeakMap<Sample, SnapshotBody>();
  const deflatedChunks = new WeakMap<Buffer, Promise<Buffer>>();
  const noSnapshot: SnapshotBody = { chunks: [], bytes: 0, crc: 0 };
  let processText: { renderedAtMs: number; body: Promise<ProcessBody> } | undefined;

  const processBody = (): Promise<ProcessBody> => {
    if (!processText || now() - processText.renderedAtMs >= processMetricsMaxAgeMs) {
      const body = processRegistry.metrics().then((text) => {
        const plain = Buffer.from(text);
        return { plain, deflated: deflateRawSync(plain) };
      });
      processText = { renderedAtMs: now(), body };
      // A failed render is not kept: the next scrape tries again.
      body.catch(() => {
        if (processText?.body === body) processText = undefined;
      });
    }
    return processText.body;
  };

  const snapshotBody = (sample: Sample | undefined): SnapshotBody => {
    if (!sample) return noSnapshot;
    let body = snapshots.get(sample);
    if (!body) {
      const crc = sample.body.reduce((running, chunk) => crc32(chunk, running), 0);
      body = { chunks: sample.body, bytes: sample.body.reduce((total, chunk) => total + chunk.length, 0), crc };
      snapshots.set(sample, body);
    }
    return body;
  };

  const deflated = (chunk: Buffer): Promise<Buffer> => {
    let compressed = deflatedChunks.get(chunk);
    if (!compressed) {
      compressed = deflateRaw(chunk, { finishFlush: constants.Z_SYNC_FLUSH });
      deflatedChunks.set(chunk, compressed);
      // A failed compression is not kept: the next scrape tries again.
      compressed.catch(() => deflatedChunks.delete(chunk));
    }
    return compressed;
  };

  return async (sample, wantsGzip) => {
    const snapshot = snapshotBody(sample);
    const processPart = await processBody();
    if (!wantsGzip) return [...snapshot.chunks, processPart.plain];
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc32(processPart.plain, snapshot.crc), 0);
    trailer.writeUInt32LE((snapshot.bytes + processPart.plain.length) % 2 ** 32, 4);
    return [gzipHeader, ...(await Promise.all(snapshot.chunks.map(deflated))), processPart.deflated, trailer];
  };
}
