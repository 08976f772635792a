/**
 * Host reads under a deadline, one per key at a time. A read through the thread pool cannot be cancelled: one
 * that hangs (pmxcfs without quorum, /proc/<pid>/cmdline behind a held mmap lock) goes on holding its thread.
 * Past the deadline its caller gets an error and moves on; the read is not started again while it hangs, and a
 * later caller is answered from it, or told at once that it still hangs.
 */
export class BoundedReads {
  private readonly pending = new Map<string, { read: Promise<unknown>; startedMs: number }>();

  constructor(private readonly timeoutSeconds: number) {}

  run<T>(key: string, read: () => Promise<T>): Promise<T> {
    let entry = this.pending.get(key);
    if (entry === undefined) {
      const started = { read: read(), startedMs: Date.now() };
      entry = started;
      this.pending.set(key, started);
      void started.read.catch(() => undefined).finally(() => {
        if (this.pending.get(key) === started) this.pending.delete(key);
      });
    }
    const { read: inFlight, startedMs } = entry;
    const remainingMs = startedMs + this.timeoutSeconds * 1000 - Date.now();
    if (remainingMs <= 0) return Promise.reject(noAnswer(key, this.timeoutSeconds));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(noAnswer(key, this.timeoutSeconds)), remainingMs);
      (inFlight as Promise<T>).then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }
}

// The same words while the read hangs: the sampler logs an error when it appears, not every sample it persists.
const noAnswer = (key: string, seconds: number): Error =>
  Object.assign(new Error(`${key}: no answer within ${seconds}s; not read again until it answers`), { code: 'ETIMEDOUT' });

const sharedByPaths = new WeakMap<object, BoundedReads>();

/**
 * One set of bounded reads per host tree, shared by the collectors that read the same files (the vm collector,
 * and the oom collector at start for the QEMU processes): a file that hangs holds one thread, not one per reader.
 */
export function sharedBoundedReads(paths: object, timeoutSeconds: number): BoundedReads {
  let reads = sharedByPaths.get(paths);
  if (reads === undefined) {
    reads = new BoundedReads(timeoutSeconds);
    sharedByPaths.set(paths, reads);
  }
  return reads;
}
