// flowrelay's benchmark against nginx-rtmp and node-media-server 4.x / 2.7.x on this
// machine, in one run. Documented in the README, "Benchmark".
//
//   npm run bench                 quick mode (N = 1, 10, 50; 7 s windows)
//   npm run bench -- --full       full mode (N = 1, 10, 50, 100; 20 s windows)
//   options: --servers=a,b  --skip=fanout,srt,idle,start
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { readerPool, startProbe, waitForReaders } from './lib/clients.mjs';
import { idleFlows, srtIngest, startTime } from './lib/extras.mjs';
import { ensureFixtures, readFlv } from './lib/fixture.mjs';
import { fanoutWindow, round } from './lib/measure.mjs';
import { killAll, sleep } from './lib/procs.mjs';
import { extrasTable, fanoutTable, ratioTable, targets, targetsTable } from './lib/report.mjs';
import { FLOWRELAY, ROOT, SERVERS, mergeWritesSupported } from './lib/servers.mjs';

const MODES = {
  quick: { fixtureSeconds: 20, ns: [1, 10, 50], warmupMs: 1_000, windowMs: 7_000, srtWarmupMs: 1_000, srtWindowMs: 5_000, idleSettleMs: 1_500, idleWindowMs: 1_500, startRuns: 2 },
  full: { fixtureSeconds: 60, ns: [1, 10, 50, 100], warmupMs: 4_000, windowMs: 20_000, srtWarmupMs: 3_000, srtWindowMs: 20_000, idleSettleMs: 8_000, idleWindowMs: 8_000, startRuns: 3 },
};
const SECTIONS = ['fanout', 'srt', 'idle', 'start'];

function parseArgs(argv) {
  const opts = { mode: 'quick', servers: Object.keys(SERVERS), skip: new Set() };
  for (const a of argv) {
    if (a === '--full') opts.mode = 'full';
    else if (a === '--quick') opts.mode = 'quick';
    else if (a.startsWith('--servers=')) opts.servers = a.slice(10).split(',').filter(Boolean);
    else if (a.startsWith('--skip=')) opts.skip = new Set(a.slice(7).split(',').filter(Boolean));
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node bench/run.mjs [--full] [--servers=nginx-rtmp,nms4,nms2,flowrelay,flowrelay-merge50] [--skip=fanout,srt,idle,start]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const s of opts.servers) if (!SERVERS[s]) throw new Error(`unknown server ${s} (one of ${Object.keys(SERVERS).join(', ')})`);
  for (const s of opts.skip) if (!SECTIONS.includes(s)) throw new Error(`unknown section ${s} (one of ${SECTIONS.join(', ')})`);
  return opts;
}

const began = Date.now();
const log = (msg) => process.stderr.write(`[bench ${((Date.now() - began) / 1000).toFixed(0).padStart(3)} s] ${msg}\n`);

function version(cmd, args, re) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5_000 });
  const m = re.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  return m ? m[1] : null;
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? '?',
    cores: cpus.length,
    memGiB: round(os.totalmem() / 2 ** 30, 1),
    kernel: os.release(),
    node: process.version,
    ffmpeg: version('ffmpeg', ['-version'], /ffmpeg version (\S+)/),
    rtmpdump: version('rtmpdump', ['-h'], /RTMPDump (v\S+)/),
    srtLiveTransmit: version('srt-live-transmit', ['-version'], /(\d+\.\d+\.\d+)/),
    loadAvgAtStart: os.loadavg().map((x) => round(x, 2)),
  };
}

/** Throws when the server dropped the probe's publisher: every later number would be zero. */
async function assertPublishing(name, server, probe) {
  const stats = await probe.collect();
  if (stats.publishersAlive > 0) return;
  const lines = server.child.tail.trim().split('\n');
  const why = lines.filter((l) => /"level":(40|50|60)|error|warn/i.test(l)).at(-1) ?? lines.at(-1) ?? '';
  throw new Error(`${name} dropped the publisher (${stats.publisherClosed}); server log: ${why.slice(0, 300)}`);
}

/** One server: start it, publish, then step the readers up through ns, measuring each N. */
async function fanoutServer(name, fixture, mode, results) {
  let server;
  let probe;
  let readers;
  try {
    server = await SERVERS[name]();
    log(`${name}: ${server.description} on port ${server.port}`);
    probe = startProbe();
    await probe.start(fixture.file, [server.publishUrl], server.playUrl);
    readers = readerPool(server.playUrl);
    await sleep(500);
    for (const n of mode.ns) {
      await assertPublishing(name, server, probe);
      readers.add(n - 1 - readers.size);
      const flowing = await waitForReaders(server.port, n, 64 * 1024, 15_000);
      if (flowing < n) log(`${name}: only ${flowing}/${n} readers receiving (${readers.alive()} rtmpdump alive) ${readers.lastError().slice(-200)}`);
      await sleep(mode.warmupMs);
      const r = await fanoutWindow({ server, probe, readers, expectedReaders: n, bytesPerSecond: fixture.bytesPerSecond, windowMs: mode.windowMs });
      await assertPublishing(name, server, probe);
      results.fanout.push({ server: name, description: server.description, n, ...r });
      log(`${name} N=${n}: ${r.cpuPerGbit} CPU s/Gbit, ${r.rssMiB} MiB, ${r.readersAtPace}/${n} at pace, p50/p99 ${r.latencyMs.p50}/${r.latencyMs.p99} ms, machine ${r.machineBusyCores} cores busy`);
    }
  } catch (err) {
    log(`${name}: ${err.stack ?? err}`);
    results.fanout.push({ server: name, error: String(err.message ?? err) });
  } finally {
    await readers?.stop();
    await probe?.stop();
    await server?.stop();
  }
}

async function section(results, key, fn) {
  try {
    results[key] = await fn();
  } catch (err) {
    log(`${key}: ${err.stack ?? err}`);
    results[key] = { error: String(err.message ?? err).split('\n')[0] };
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const mode = MODES[opts.mode];
  const outDir = join(ROOT, 'bench-results');
  const fx = ensureFixtures(join(outDir, 'fixture'), mode.fixtureSeconds, log);
  const flv = readFlv(fx.flv);
  const fixture = { file: fx.flv, bytesPerSecond: flv.bytesPerSecond };
  log(`fixture ${round(flv.durationMs / 1000, 1)} s at ${round((flv.bytesPerSecond * 8) / 1e6, 2)} Mbit/s (tag bodies)`);

  const results = {
    date: new Date().toISOString(),
    mode: opts.mode,
    settings: { ...mode, flowrelayBin: FLOWRELAY, fixture: { seconds: mode.fixtureSeconds, mbitPerS: round((flv.bytesPerSecond * 8) / 1e6, 3) } },
    machine: machine(),
    fanout: [],
    skipped: [],
  };

  if (!opts.skip.has('fanout')) {
    for (const name of opts.servers) {
      if (name === 'flowrelay-merge50') {
        const check = mergeWritesSupported(50);
        if (!check.ok) {
          results.skipped.push({ server: name, why: 'not implemented (rtmp.mergeWritesMs is rejected by bin/flowrelay check)' });
          log(`${name}: skipped, rtmp.mergeWritesMs not accepted: ${check.output.split('\n').slice(-2).join(' ')}`);
          continue;
        }
      }
      await fanoutServer(name, fixture, mode, results);
    }
  }
  if (!opts.skip.has('srt')) {
    log('SRT ingest');
    await section(results, 'srt', () => srtIngest({ ts: fx.ts, warmupMs: mode.srtWarmupMs, windowMs: mode.srtWindowMs, log }));
  }
  if (!opts.skip.has('idle')) {
    log('100 idle flows');
    await section(results, 'idle', () => idleFlows({ flows: 100, tiny: fx.tiny, settleMs: mode.idleSettleMs, windowMs: mode.idleWindowMs, log }));
  }
  if (!opts.skip.has('start')) {
    log('start time, 1,000 flows');
    await section(results, 'start', () => startTime({ flows: 1_000, runs: mode.startRuns }));
  }
  results.targets = targets(results);
  results.elapsedS = round((Date.now() - began) / 1000, 1);

  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${results.date.replace(/:/g, '-').replace(/\..*/, '')}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);

  const m = results.machine;
  process.stdout.write(
    [
      `## flowrelay bench, ${opts.mode} mode, ${results.date}`,
      '',
      ...(process.env.FLOWRELAY_BIN ? [`flowrelay: ${FLOWRELAY} (FLOWRELAY_BIN)`, ''] : []),
      `${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node}, ffmpeg ${m.ffmpeg}; fixture 1080p30 H.264 + AAC at ${results.settings.fixture.mbitPerS} Mbit/s; window ${mode.windowMs / 1000} s after ${mode.warmupMs / 1000} s warm-up; load average at start ${m.loadAvgAtStart.join(' ')}.`,
      '',
      '### RTMP fan-out (one real-time publisher, N readers: the latency probe + N−1 rtmpdump)',
      '',
      fanoutTable(results),
      '',
      '### flowrelay ÷ peer (below 1: flowrelay is cheaper / smaller / sooner)',
      '',
      ratioTable(results),
      '',
      '### SRT, memory, start',
      '',
      extrasTable(results),
      '',
      '### Targets',
      '',
      targetsTable(results.targets),
      '',
      `JSON: ${file} (${results.elapsedS} s)`,
      '',
    ].join('\n'),
  );
}

try {
  await main();
} catch (err) {
  log(`failed: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  killAll();
}
