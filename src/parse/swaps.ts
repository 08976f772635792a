import { unescapeOctal } from './mountinfo.js';

/** One active swap area from /proc/swaps. */
export interface SwapArea {
  /** Path as swapon was given it, e.g. `/dev/sdb2`, `/dev/dm-1`, `/swapfile`. */
  filename: string;
  /** `partition` (a block device) or `file`. */
  type: string;
}

/**
 * Parses /proc/swaps: a header line, then `Filename Type Size Used Priority` per area, whitespace-separated
 * (mm/swapfile.c swap_show; the path is escaped with `\040`-style octal for spaces, as in mountinfo).
 */
export function parseSwaps(text: string): SwapArea[] {
  const lines = text.split('\n');
  if (!lines[0]?.startsWith('Filename')) throw new Error('not /proc/swaps: no Filename header');
  return lines
    .slice(1)
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [filename, type] = line.trim().split(/\s+/);
      if (!filename || !type) throw new Error(`not a swap line: ${JSON.stringify(line)}`);
      return { filename: unescapeOctal(filename), type };
    });
}
