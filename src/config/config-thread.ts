import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseConfigText } from './load.js';
import { prepareEdit } from './prepare-edit.js';

/** What the config thread does: parsing and validating whole config texts. */
export const CONFIG_JOBS = { parse: parseConfigText, prepareEdit };
type Jobs = typeof CONFIG_JOBS;
export type ConfigJob = keyof Jobs;

export interface ConfigJobRequest {
  id: number;
  job: ConfigJob;
  args: unknown[];
}
export type ConfigJobReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; message: string };

/**
 * Runs config parsing and API edits on a worker thread. A reload or an API edit of a file
 * with 1,000 flows parses YAML for hundreds of milliseconds at a time; on the main thread
 * that stalled every stream for as long. The worker starts at first use and is unref'd
 * (it never keeps the process up). Under the test runner the sources are TypeScript,
 * which a worker cannot load: there the jobs run in this thread, as the same functions.
 */
export class ConfigThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  private nextId = 1;
  private readonly script = fileURLToPath(new URL('./config-thread-worker.js', import.meta.url));
  private readonly threaded = existsSync(this.script);

  run<K extends ConfigJob>(job: K, ...args: Parameters<Jobs[K]>): Promise<ReturnType<Jobs[K]>> {
    if (!this.threaded) return Promise.resolve((CONFIG_JOBS[job] as (...a: unknown[]) => ReturnType<Jobs[K]>)(...args));
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ id, job, args } satisfies ConfigJobRequest);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.script);
    worker.unref();
    worker.on('message', (reply: ConfigJobReply) => {
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.ok) waiting?.resolve(reply.result);
      else waiting?.reject(new Error(reply.message));
    });
    // A worker that dies fails what it had; the next job starts a new one.
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiting of this.pending.values()) waiting.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the config thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }
}
