import type { KmsgRecord } from '../parse/kmsg.js';

/**
 * What a record's sequence number says about it:
 * - `new`: not read before; `new-boot`, `outlier`: not read before either, but the numbering broke (below);
 * - `seen`: read before (the ring replayed after a reopen or a restart, a dump holding records twice).
 */
export type SequenceVerdict = 'new' | 'new-boot' | 'outlier' | 'seen';

/** The newest record counted in the current boot; what a state file carries across restarts. */
export interface NewestRecord {
  sequence: number;
  /** Its timestamp, µs since boot. */
  micros: number;
}

/**
 * Records remembered by number and time, to tell a record read again from another boot's record with the
 * same number: slots by number, two records a slot (two boots). A ring replayed beyond these is still told
 * apart by the newest record alone.
 */
const rememberedSlots = 16384;

/** printk takes the timestamp before the sequence number, so across CPUs time may step back a little. */
const clockSlackMicros = 1_000_000;

/**
 * Tells new kernel log records from ones read before. Within one boot the kernel numbers records
 * 0, 1, 2… with non-decreasing timestamps (kernel/printk/printk_ringbuffer.c), and one read of
 * /dev/kmsg hands them out in order (devkmsg_read). So:
 * - a record remembered with the same number and (non-zero) time was read before, wherever it comes;
 * - a step back inside one read of the log is a new boot when time went back too (a dump spanning a
 *   reboot), else the record before it had a bogus, too high number; either way it is counted;
 * - at the start of a read, a number up to the newest counted is a replay — unless its time is later than
 *   the newest counted one's, which then had a bogus number: one outlier can hide at most a second.
 */
export class SequenceTracker {
  private newest: NewestRecord | undefined;
  /** The record before this one in the current read of the log; sequence -1 at the start of a read. */
  private previousSequence = -1;
  private previousMicros = 0;
  /** Two ways a slot: [sequence, micros] of the newer at 4·slot, of the older at 4·slot + 2; sequence -1 when empty. */
  private readonly slots = new Float64Array(rememberedSlots * 4).fill(-1);

  /** The log is read again from its start (opened, reopened, a dump replaced). */
  beginRead(): void {
    this.previousSequence = -1;
  }

  restore(newest: NewestRecord): void {
    this.newest = { ...newest };
  }

  current(): NewestRecord | undefined {
    return this.newest && { ...this.newest };
  }

  check({ sequence, monotonicMicros: micros }: KmsgRecord): SequenceVerdict {
    const previousSequence = this.previousSequence;
    const previousMicros = this.previousMicros;
    this.previousSequence = sequence;
    this.previousMicros = micros;
    if (this.remembers(sequence, micros)) return 'seen';
    const newest = this.newest;
    if (newest === undefined || sequence > newest.sequence) return this.accept(sequence, micros, 'new');
    if (previousSequence !== -1 && sequence <= previousSequence) {
      return this.accept(sequence, micros, micros + clockSlackMicros < previousMicros ? 'new-boot' : 'outlier');
    }
    return micros <= newest.micros + clockSlackMicros ? 'seen' : this.accept(sequence, micros, 'outlier');
  }

  /**
   * Records at time 0 are not told apart by it: every boot logs its first records before its clock runs,
   * with the same numbers. They are judged by the steps around them; no OOM kill is logged at time 0.
   */
  private remembers(sequence: number, micros: number): boolean {
    if (micros === 0) return false;
    const at = (sequence % rememberedSlots) * 4;
    const slots = this.slots;
    return (slots[at] === sequence && slots[at + 1] === micros) || (slots[at + 2] === sequence && slots[at + 3] === micros);
  }

  private accept(sequence: number, micros: number, verdict: SequenceVerdict): SequenceVerdict {
    if (this.newest === undefined) this.newest = { sequence, micros };
    else {
      this.newest.sequence = sequence;
      this.newest.micros = micros;
    }
    const at = (sequence % rememberedSlots) * 4;
    const slots = this.slots;
    slots[at + 2] = slots[at]!;
    slots[at + 3] = slots[at + 1]!;
    slots[at] = sequence;
    slots[at + 1] = micros;
    return verdict;
  }
}
