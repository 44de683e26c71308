import { parentPort } from 'node:worker_threads';
import { CONFIG_JOBS, type ConfigJobReply, type ConfigJobRequest } from './config-thread.js';

/** The config thread's side (./config-thread.ts): one job per message, answered in order. */
parentPort?.on('message', ({ id, job, args }: ConfigJobRequest) => {
  let reply: ConfigJobReply;
  try {
    reply = { id, ok: true, result: (CONFIG_JOBS[job] as (...a: unknown[]) => unknown)(...args) };
  } catch (err) {
    reply = { id, ok: false, message: (err as Error).message };
  }
  parentPort?.postMessage(reply);
});
