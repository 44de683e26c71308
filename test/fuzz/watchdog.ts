/**
 * Hang detection that survives a real infinite loop, for the long fuzz: a codec stuck in
 * a loop never returns to the code that would time it. Before each run the input is copied
 * into shared memory; a watchdog thread notices when one run has been in flight too long,
 * writes that input to the findings folder and kills the process (a synchronous loop
 * cannot be interrupted any other way).
 */
import { Worker } from 'node:worker_threads';
import { MAX_INPUT } from './mutate.js';

const WATCHDOG_SOURCE = `
const { workerData } = require('node:worker_threads');
const { writeFileSync, writeSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');
const { control, bytes, names, dir, limitMs } = workerData;
const state = new Int32Array(control); // [armed, sequence, length, targetIndex, stop]
const data = new Uint8Array(bytes);
let seen = -1;
let since = Date.now();
const timer = setInterval(() => {
  if (Atomics.load(state, 4) === 1) { clearInterval(timer); return; }
  const seq = Atomics.load(state, 1);
  if (Atomics.load(state, 0) !== 1 || seq !== seen) { seen = seq; since = Date.now(); return; }
  if (Date.now() - since < limitMs) return;
  const target = names[Atomics.load(state, 3)];
  const input = Buffer.from(data.subarray(0, Atomics.load(state, 2)));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, target + '-hang-' + Date.now() + '.bin');
  writeFileSync(file, input);
  // fd 2 directly: a worker's process.stderr goes through the main thread, which is stuck.
  writeSync(2, '\\nFUZZ HANG: ' + target + ' has been stuck on one input for ' + (Date.now() - since) + ' ms.\\n' +
    'The input is in ' + file + '\\nAdd it to test/fuzz/corpus/' + target + '/ (see test/fuzz/README.md).\\n');
  process.kill(process.pid, 'SIGKILL');
}, 250);
`;

export class HangWatchdog {
  private readonly state: Int32Array;
  private readonly data: Uint8Array;
  private readonly worker: Worker;
  private seq = 0;

  constructor(
    private readonly names: readonly string[],
    dir: string,
    limitMs: number,
  ) {
    const control = new SharedArrayBuffer(5 * 4);
    const bytes = new SharedArrayBuffer(MAX_INPUT);
    this.state = new Int32Array(control);
    this.data = new Uint8Array(bytes);
    this.worker = new Worker(WATCHDOG_SOURCE, { eval: true, workerData: { control, bytes, names, dir, limitMs } });
    this.worker.unref();
  }

  /** Records the input about to run; call disarm() when it returns. */
  arm(target: string, input: Buffer): void {
    const n = Math.min(input.length, this.data.length);
    this.data.set(input.subarray(0, n));
    Atomics.store(this.state, 2, n);
    Atomics.store(this.state, 3, this.names.indexOf(target));
    Atomics.store(this.state, 1, ++this.seq);
    Atomics.store(this.state, 0, 1);
  }

  disarm(): void {
    Atomics.store(this.state, 0, 0);
  }

  async stop(): Promise<void> {
    Atomics.store(this.state, 4, 1);
    await this.worker.terminate();
  }
}
