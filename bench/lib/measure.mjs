// One measurement window over a running server: its CPU and memory from /proc, the bytes
// its readers received from the kernel's tcp_info, and the probe's latency samples.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { readerSockets } from './clients.mjs';
import { CLK_TCK, cpuDelta, cpuSample, cpuSeconds, procTree, rssSampler, sleep } from './procs.mjs';

/** Busy CPU seconds of the whole machine (all cores) so far, from /proc/stat. */
export function machineBusySeconds() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...
  const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
  return busy / CLK_TCK;
}

const MIB = 1024 * 1024;

/**
 * Measures `windowMs` of a fan-out: server CPU seconds (process tree), peak RSS, bytes
 * delivered to readers (client-side socket counters), readers at real-time pace (>= 90 %
 * of the fixture's bytes for the window) and the probe's latency.
 */
export async function fanoutWindow({ server, probe, readers, expectedReaders, bytesPerSecond, windowMs }) {
  const pids0 = procTree(server.pid);
  const readerPids = readers.pids();
  const readersCpu0 = cpuSeconds(readerPids);
  const sock0 = readerSockets(server.port);
  await probe.mark();
  const machine0 = machineBusySeconds();
  const cpu0 = cpuSample(pids0);
  const t0 = performance.now();
  const sampler = rssSampler(server.pid);
  await sleep(windowMs);
  const cpu1 = cpuSample([...new Set([...pids0, ...procTree(server.pid)])]);
  const t1 = performance.now();
  const machine1 = machineBusySeconds();
  const mem = sampler.stop();
  const stats = await probe.collect();
  const sock1 = readerSockets(server.port);
  const readersCpu = cpuSeconds(readerPids) - readersCpu0;

  const seconds = (t1 - t0) / 1000;
  const expected = bytesPerSecond * seconds;
  let delivered = 0;
  let atPace = 0;
  const perReader = [];
  for (const [local, before] of sock0) {
    const after = sock1.get(local);
    const got = after === undefined ? 0 : after - before;
    delivered += Math.max(0, got);
    perReader.push(got);
    if (after !== undefined && got >= 0.9 * expected) atPace++;
  }
  // A reader that connected during the window counts for its bytes, never as at pace.
  for (const [local, after] of sock1) if (!sock0.has(local)) delivered += after;
  const { cpu, sched, ticks } = cpuDelta(cpu0, cpu1);
  const gbit = (delivered * 8) / 1e9;
  perReader.sort((a, b) => a - b);
  return {
    windowS: round(seconds, 2),
    cpuS: round(cpu, 3),
    cpuCheck: { schedS: round(sched, 3), ticksS: round(ticks, 2) },
    deliveredGbit: round(gbit, 4),
    cpuPerGbit: gbit > 0 ? round(cpu / gbit, 4) : null,
    rssMiB: round(mem.peakRss / MIB, 1),
    hwmMiB: round(mem.hwm / MIB, 1),
    readers: expectedReaders,
    readersSeen: sock0.size,
    readersAtPace: atPace,
    minReaderShare: perReader.length ? round(perReader[0] / expected, 3) : null,
    latencyMs: {
      p50: roundOrNull(stats.latency.p50, 2),
      p99: roundOrNull(stats.latency.p99, 2),
      max: roundOrNull(stats.latency.max, 2),
      samples: stats.latency.count,
      unmatched: stats.latency.unmatched,
    },
    probe: { publisherMaxLateMs: round(stats.maxLateMs, 1), publisherMaxBacklog: stats.maxBacklog, readerClosed: stats.readerClosed, publishersAlive: stats.publishersAlive, publisherClosed: stats.publisherClosed },
    readersCpuS: round(readersCpu, 2),
    machineBusyCores: round((machine1 - machine0) / seconds, 2),
  };
}

export function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function roundOrNull(x, digits) {
  return x === null || x === undefined ? null : round(x, digits);
}
