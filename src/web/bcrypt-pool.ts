import { createRequire } from 'node:module';
import { getAsset, isSea } from 'node:sea';
import { Worker } from 'node:worker_threads';

/** The single executable has no node_modules: it carries bcryptjs's CommonJS build as this asset (packaging/sea-config.json). */
export const seaBcryptAsset = 'bcryptjs.js';

export class BcryptBusyError extends Error {}

interface BcryptRequest {
  id: number;
  password: string;
  hash: string;
}

interface BcryptReply {
  id: number;
  match: boolean;
}

/**
 * The worker's code, CommonJS evaluated as a string, so that the same code runs from the built files,
 * from the TypeScript sources and from the single executable. `loadBcrypt` is an expression giving bcryptjs.
 */
const workerCode = (loadBcrypt: string): string => `
const { parentPort, workerData } = require('node:worker_threads');
// On Linux this lowers the priority of this thread only (setpriority(2) on the calling thread): under a
// flood of logins the main thread, which answers scrapes, gets the CPU first.
require('node:os').setPriority(10);
const bcrypt = ${loadBcrypt};
parentPort.on('message', ({ id, password, hash }) => parentPort.postMessage({ id, match: bcrypt.compareSync(password, hash) }));
`;

function startWorker(): Worker {
  if (!isSea()) return new Worker(workerCode(`require(${JSON.stringify(createRequire(import.meta.url).resolve('bcryptjs'))})`), { eval: true });
  const loadFromAsset = `(() => { const module = { exports: {} }; new Function('exports', 'module', 'require', workerData)(module.exports, module, require); return module.exports; })()`;
  return new Worker(workerCode(loadFromAsset), { eval: true, workerData: getAsset(seaBcryptAsset, 'utf8') });
}

interface Job extends BcryptRequest {
  settle: (match: boolean) => void;
  fail: (error: Error) => void;
}

/**
 * bcrypt comparisons on one worker thread, one at a time, at most `maxWaiting` queued behind it. bcryptjs's
 * async API would still run on the event loop (in 100 ms slices) and libuv's pool runs only node:crypto's
 * own work, so a thread of our own keeps scrapes free of bcrypt. One thread bounds the CPU a flood of
 * logins can take to one core; the queue bounds how long a login waits (`maxWaiting` × the cost of one
 * compare) and what a flood holds in memory: beyond it, compare() fails at once with BcryptBusyError.
 * The thread is created on the first compare and does not keep the process alive.
 */
export class BcryptPool {
  private worker: Worker | undefined;
  private running: Job | undefined;
  private readonly waiting: Job[] = [];
  private nextId = 0;

  constructor(readonly maxWaiting: number) {}

  compare(password: string, hash: string): Promise<boolean> {
    if (this.running && this.waiting.length >= this.maxWaiting) return Promise.reject(new BcryptBusyError('too many password checks waiting'));
    return new Promise((settle, fail) => {
      this.waiting.push({ id: this.nextId++, password, hash, settle, fail });
      this.startNext();
    });
  }

  /** Ends the thread; waiting checks fail. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new Error('password checks stopped'));
    await worker?.terminate();
  }

  private startNext(): void {
    if (this.running) return;
    const job = this.waiting.shift();
    if (!job) return;
    this.running = job;
    const request: BcryptRequest = { id: job.id, password: job.password, hash: job.hash };
    this.thread().postMessage(request);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker();
    worker.unref();
    worker.on('message', (reply: BcryptReply) => {
      const job = this.running;
      if (job?.id !== reply.id) return;
      this.running = undefined;
      job.settle(reply.match);
      this.startNext();
    });
    // A thread that dies takes its job with it; the next compare starts a new one.
    const lost = (error: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failAll(error);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`bcrypt worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error): void {
    const jobs = [...(this.running ? [this.running] : []), ...this.waiting.splice(0)];
    this.running = undefined;
    for (const job of jobs) job.fail(error);
  }
}
