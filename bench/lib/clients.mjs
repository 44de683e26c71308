// The load the servers get: the probe process (real-time publisher + latency reader,
// bench/probe.mjs) and rtmpdump readers.
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { URL, fileURLToPath } from 'node:url';
import { clientSockets, sleep, start, stop, stopAll } from './procs.mjs';

const PROBE = fileURLToPath(new URL('../probe.mjs', import.meta.url));

/** Starts bench/probe.mjs; `request` sends a command and waits for the answer. */
export function startProbe(label = 'probe') {
  const child = start(process.execPath, [PROBE], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], label });
  const waiting = [];
  let error = null;
  child.on('message', (m) => {
    if (m.ev === 'error') {
      error = m.message;
      for (const w of waiting.splice(0)) w.reject(new Error(`${label}: ${m.message}`));
      return;
    }
    const i = waiting.findIndex((w) => w.ev === m.ev);
    if (i >= 0) waiting.splice(i, 1)[0].resolve(m);
  });
  void child.exited.then(() => {
    for (const w of waiting.splice(0)) w.reject(new Error(`${label} exited: ${error ?? child.tail}`));
  });
  const request = (message, ev, timeoutMs = 25_000) =>
    new Promise((resolve, reject) => {
      if (error) return reject(new Error(`${label}: ${error}`));
      const timer = setTimeout(() => reject(new Error(`${label}: no '${ev}' within ${timeoutMs} ms`)), timeoutMs);
      waiting.push({
        ev,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.send(message);
    });
  return {
    child,
    /** Publishes flv to every url; with playUrl, resolves once that reader gets media. */
    start: (flv, urls, playUrl) => request({ cmd: 'start', flv, urls, playUrl }, 'ready'),
    mark: () => request({ cmd: 'mark' }, 'marked'),
    collect: () => request({ cmd: 'collect' }, 'stats'),
    async stop() {
      if (child.connected) child.send({ cmd: 'stop' });
      await Promise.race([child.exited, sleep(1_500)]);
      await stop(child, 500);
    },
  };
}

/** rtmpdump readers of one URL; more can be added. */
export function readerPool(url) {
  const readers = [];
  return {
    get size() {
      return readers.length;
    },
    add(n) {
      for (let i = 0; i < n; i++) readers.push(start('rtmpdump', ['-q', '-r', url, '--live', '-o', '/dev/null'], { stdio: ['ignore', 'ignore', 'pipe'], label: 'rtmpdump' }));
    },
    alive: () => readers.filter((r) => r.exitCode === null && r.signalCode === null).length,
    lastError: () => readers.find((r) => r.exitCode !== null)?.tail ?? '',
    stop: () => stopAll(readers.splice(0), 500),
    pids: () => readers.map((r) => r.pid),
  };
}

/**
 * Client-side sockets to the server's port that are receiving media: the readers (ours
 * and rtmpdump). A publisher's socket sends more than it receives.
 */
export function readerSockets(port) {
  const out = new Map();
  for (const [local, s] of clientSockets(port)) if (s.received > s.sent) out.set(local, s.received);
  return out;
}

/** Waits until `count` reader sockets have each received at least minBytes; bounded by timeoutMs. */
export async function waitForReaders(port, count, minBytes, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let flowing = 0;
  while (Date.now() < deadline) {
    flowing = [...readerSockets(port).values()].filter((b) => b >= minBytes).length;
    if (flowing >= count) return flowing;
    await sleep(200);
  }
  return flowing;
}
