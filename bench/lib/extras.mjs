// The flowrelay-only measurements: SRT ingest against srt-live-transmit, RSS with idle
// flows, start time with many configured flows.
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { startProbe } from './clients.mjs';
import { machineBusySeconds, round } from './measure.mjs';
import { HOST, cpuDelta, cpuSample, freePort, memory, procTree, rssSampler, sleep, start, stop } from './procs.mjs';
import { flowrelayConfig, spawnFlowrelay, tempDir, writeConfig } from './servers.mjs';

const MIB = 1024 * 1024;
const SRT_KEY = 'bench-srt-publish-key-01';

function udpSink() {
  const socket = createSocket('udp4');
  let bytes = 0;
  socket.on('message', (m) => (bytes += m.length));
  socket.on('error', () => undefined);
  return new Promise((resolve) =>
    socket.bind(0, HOST, () =>
      resolve({ port: socket.address().port, bytes: () => bytes, close: () => new Promise((r) => socket.close(() => r())) }),
    ),
  );
}

async function freeUdpPort() {
  const s = await udpSink();
  await s.close();
  return s.port;
}

/** ffmpeg sending the TS fixture over SRT in real time; `sent()` is its byte count (-progress total_size). */
function srtPublisher(ts, url) {
  let total = 0;
  let at = 0;
  const child = start(
    'ffmpeg',
    ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', ts, '-c', 'copy', '-f', 'mpegts', '-progress', 'pipe:1', '-stats_period', '0.1', url],
    {
      label: 'ffmpeg srt publisher',
      onLine: (line) => {
        const m = /^total_size=(\d+)/.exec(line);
        if (m) {
          total = Number(m[1]);
          at = performance.now();
        }
      },
    },
  );
  return { child, sent: () => ({ bytes: total, at }) };
}

/** CPU seconds per gigabit of one SRT receiver over a window, with ffmpeg publishing into it. */
async function srtWindow(label, receiverPid, publisher, warmupMs, windowMs) {
  const deadline = Date.now() + 10_000;
  while (publisher.sent().bytes < 1_000_000) {
    if (publisher.child.exitCode !== null) throw new Error(`${label}: ffmpeg exited: ${publisher.child.tail}`);
    if (Date.now() > deadline) throw new Error(`${label}: ffmpeg sent nothing within 10 s: ${publisher.child.tail}`);
    await sleep(100);
  }
  await sleep(warmupMs);
  const pids = procTree(receiverPid);
  const s0 = publisher.sent();
  const m0 = machineBusySeconds();
  const c0 = cpuSample(pids);
  const sampler = rssSampler(receiverPid);
  await sleep(windowMs);
  const c1 = cpuSample(pids);
  const m1 = machineBusySeconds();
  const s1 = publisher.sent();
  const mem = sampler.stop();
  if (publisher.child.exitCode !== null) throw new Error(`${label}: ffmpeg exited during the window: ${publisher.child.tail}`);
  const seconds = (s1.at - s0.at) / 1000;
  const gbit = ((s1.bytes - s0.bytes) * 8) / 1e9;
  const { cpu, sched, ticks } = cpuDelta(c0, c1);
  return {
    windowS: round(seconds, 2),
    cpuS: round(cpu, 3),
    cpuCheck: { schedS: round(sched, 3), ticksS: round(ticks, 2) },
    receivedGbit: round(gbit, 4),
    mbitPerS: round((gbit * 1000) / seconds, 2),
    cpuPerGbit: gbit > 0 ? round(cpu / gbit, 4) : null,
    rssMiB: round(mem.peakRss / MIB, 1),
    machineBusyCores: round((m1 - m0) / (windowMs / 1000), 2),
  };
}

export async function srtIngest({ ts, warmupMs, windowMs, log }) {
  const out = {};
  // flowrelay: one flow with an srt-listener input on the shared SRT port.
  {
    const dir = tempDir('srt');
    const rtmpPort = await freePort();
    const srtPort = await freeUdpPort();
    const config = flowrelayConfig({
      rtmpPort,
      dir,
      srt: { listen: `${HOST}:${srtPort}`, latencyMs: 120 },
      flows: [{ id: 'srtin', inputs: [{ name: 'main', type: 'srt-listener', streamKey: SRT_KEY }], playback: { key: 'bench-srt-play-key-0001' } }],
    });
    const { child } = await spawnFlowrelay(writeConfig(dir, config), { port: rtmpPort, label: 'flowrelay (srt)' });
    const url = `srt://${HOST}:${srtPort}?mode=caller&latency=120000&streamid=#!::r=srtin,m=publish,s=${SRT_KEY}`;
    const pub = srtPublisher(ts, url);
    try {
      log('  srt: flowrelay');
      out.flowrelay = await srtWindow('flowrelay', child.pid, pub, warmupMs, windowMs);
    } finally {
      await stop(pub.child, 1_000);
      await stop(child, 3_000);
    }
  }
  // srt-live-transmit relaying the same TS to a UDP port we read.
  {
    const srtPort = await freeUdpPort();
    const sink = await udpSink();
    const child = start('srt-live-transmit', ['-q', `srt://${HOST}:${srtPort}?mode=listener&latency=120`, `udp://${HOST}:${sink.port}`], { label: 'srt-live-transmit' });
    await sleep(300);
    const pub = srtPublisher(ts, `srt://${HOST}:${srtPort}?mode=caller&latency=120000`);
    try {
      log('  srt: srt-live-transmit');
      const b0 = sink.bytes();
      out.srtLiveTransmit = await srtWindow('srt-live-transmit', child.pid, pub, warmupMs, windowMs);
      out.srtLiveTransmit.forwardedGbit = round(((sink.bytes() - b0) * 8) / 1e9, 4);
    } finally {
      await stop(pub.child, 1_000);
      await stop(child, 1_000);
      await sink.close();
    }
  }
  out.ratio = out.flowrelay.cpuPerGbit && out.srtLiveTransmit.cpuPerGbit ? round(out.flowrelay.cpuPerGbit / out.srtLiveTransmit.cpuPerGbit, 2) : null;
  return out;
}

/** flowrelay's RSS with `flows` flows, each with one low-bitrate publisher (all from one probe process). */
export async function idleFlows({ flows, tiny, settleMs, windowMs, log }) {
  const dir = tempDir('idle');
  const rtmpPort = await freePort();
  const keys = Array.from({ length: flows }, (_, i) => `idle-publish-key-${String(i).padStart(5, '0')}`);
  const config = flowrelayConfig({
    rtmpPort,
    dir,
    flows: keys.map((key, i) => ({ id: `idle-${i}`, inputs: [{ name: 'main', type: 'rtmp-push', streamKey: key }], playback: { key: `idle-play-key-${String(i).padStart(6, '0')}` } })),
  });
  const { child } = await spawnFlowrelay(writeConfig(dir, config), { port: rtmpPort, label: 'flowrelay (idle flows)' });
  const probe = startProbe('idle publishers');
  try {
    await sleep(500);
    const before = memory(procTree(child.pid)).rss;
    log(`  ${flows} publishers connecting`);
    await probe.start(tiny, keys.map((k) => `rtmp://${HOST}:${rtmpPort}/live/${k}`));
    await sleep(settleMs);
    const sampler = rssSampler(child.pid);
    await sleep(windowMs);
    const mem = sampler.stop();
    const stats = await probe.collect();
    return {
      flows,
      publishersAlive: stats.publishersAlive,
      rssBeforePublishersMiB: round(before / MIB, 1),
      rssMiB: round(mem.peakRss / MIB, 1),
      hwmMiB: round(mem.hwm / MIB, 1),
    };
  } finally {
    await probe.stop();
    await stop(child, 3_000);
  }
}

/** ms from spawn to the "flowrelay started" log line with `flows` flows configured; median of `runs`. */
export async function startTime({ flows, runs }) {
  const dir = tempDir('start');
  const times = [];
  for (let r = 0; r < runs; r++) {
    const rtmpPort = await freePort();
    const config = flowrelayConfig({
      rtmpPort,
      dir,
      logLevel: 'info',
      flows: Array.from({ length: flows }, (_, i) => ({
        id: `flow-${i}`,
        inputs: [{ name: 'main', type: 'rtmp-push', streamKey: `start-publish-key-${String(i).padStart(5, '0')}` }],
        playback: { key: `start-play-key-${String(i).padStart(6, '0')}` },
      })),
    });
    const { child, readyMs } = await spawnFlowrelay(writeConfig(dir, config), { waitForLog: true, label: `flowrelay (${flows} flows)` });
    times.push(readyMs);
    await stop(child, 3_000);
  }
  times.sort((a, b) => a - b);
  return { flows, runs, readyMs: round(times[Math.floor(times.length / 2)], 0), allMs: times.map((t) => round(t, 0)) };
}
