import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { pino } from 'pino';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadLibsrt } from '../../src/srt/libsrt.js';
import { SrtReject, SrtRuntime, type SrtConnection, type SrtError, type SrtHandshake, type SrtListener } from '../../src/srt/runtime.js';
import { probeStreams } from '../helpers/ffmpeg.js';

const execFileAsync = promisify(execFile);
const REPO_ROOT = new URL('../../', import.meta.url).pathname;
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

// ------------------------------------------------------------------ helpers

interface Proc {
  proc: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

const procs = new Set<ChildProcess>();

function run(command: string, args: string[], stdout: 'ignore' | number = 'ignore'): Proc {
  const proc = spawn(command, args, { stdio: ['ignore', stdout, 'pipe'] });
  procs.add(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    proc.once('error', (err) => resolve({ code: -1, signal: null, stderr: `${stderr}\n${err.message}` }));
    proc.once('exit', (code, signal) => {
      procs.delete(proc);
      resolve({ code, signal, stderr });
    });
  });
  return { proc, done };
}

/** ffmpeg pushing testsrc2 (H.264 yuv420p) as MPEG-TS to an SRT URL, in real time. */
function ffmpegToSrt(url: string, seconds: number, video: string[] = []): Proc {
  return run('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '25',
    ...video,
    '-f', 'mpegts', url,
  ]);
}

/** ffmpeg's SRT options: latency in MICROseconds. */
function srtUrl(port: number, params: Record<string, string | number>): string {
  const query = Object.entries({ mode: 'caller', latency: 200_000, ...params })
    .map(([k, v]) => `${k}=${String(v)}`)
    .join('&');
  return `srt://127.0.0.1:${port}?${query}`;
}

/** A UDP port nobody uses right now (for tools that need one given). */
async function freeUdpPort(): Promise<number> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const { port } = sock.address();
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  return port;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function closedOf(conn: SrtConnection): Promise<SrtError | undefined> {
  return new Promise((resolve) => {
    if (conn.state === 'closed') resolve(undefined);
    conn.once('closed', resolve);
  });
}

/** Everything a listener received, per connection. */
interface Received {
  conns: SrtConnection[];
  chunks: Map<SrtConnection, Buffer[]>;
  handshakes: SrtHandshake[];
  rejected: Array<{ h: SrtHandshake; reason: number }>;
}

function collector(): Received & { onConnection: (c: SrtConnection) => void } {
  const r: Received = { conns: [], chunks: new Map(), handshakes: [], rejected: [] };
  return {
    ...r,
    onConnection: (c) => {
      r.conns.push(c);
      const list: Buffer[] = [];
      r.chunks.set(c, list);
      c.on('data', (chunk) => list.push(chunk));
    },
  };
}

const bytesOf = (chunks: Buffer[] | undefined) => (chunks ?? []).reduce((n, c) => n + c.length, 0);

/** Sends `messages` in 1316-byte pieces, paced, so that live mode's send buffer never fills. */
async function sendPaced(conn: SrtConnection, messages: Buffer[], perTick = 20, tickMs = 5): Promise<number> {
  let refused = 0;
  for (let i = 0; i < messages.length; i += perTick) {
    for (const m of messages.slice(i, i + perTick)) if (!conn.send(m)) refused += 1;
    await sleep(tickMs);
  }
  return refused;
}

function split1316(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += 1316) out.push(data.subarray(i, Math.min(i + 1316, data.length)));
  return out;
}

async function makeTsFile(file: string, seconds: number): Promise<Buffer> {
  await execFileAsync('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25', '-f', 'mpegts', file,
  ]);
  return readFile(file);
}

// ------------------------------------------------------------------ suite

let runtime: SrtRuntime;
let dir: string;
const listeners: SrtListener[] = [];

beforeAll(async () => {
  runtime = SrtRuntime.open(logger);
  dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-'));
});

afterEach(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await runtime?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function listen(options: Partial<Parameters<SrtRuntime['listen']>[0]> & Pick<Parameters<SrtRuntime['listen']>[0], 'onConnection'>): SrtListener {
  const l = runtime.listen({ host: '127.0.0.1', port: 0, latencyMs: 200, ...options });
  listeners.push(l);
  return l;
}

describe('libsrt loading', () => {
  it('reports a missing library with the dlopen error', () => {
    expect(() => loadLibsrt(['libsrt-definitely-missing.so.9'])).toThrow(
      expect.objectContaining({ code: 'SRT_UNAVAILABLE', message: expect.stringMatching(/^libsrt 1\.5 was not found \(install libsrt1\.5-openssl\): .*libsrt-definitely-missing/) }),
    );
    const info = runtime.info();
    expect(info.version).toMatch(/^1\.5\./);
  });

  it('refuses a port that is taken, with a clear message', async () => {
    const first = listen({ onConnection: () => undefined });
    expect(() => runtime.listen({ host: '127.0.0.1', port: first.port, latencyMs: 120, onConnection: () => undefined })).toThrow(
      expect.objectContaining({ name: 'SrtError', message: expect.stringContaining(`SRT port 127.0.0.1:${first.port} is not available`) }),
    );
    // A UDP port held by another socket (another process, in real life).
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    try {
      expect(() => runtime.listen({ host: '127.0.0.1', port: udp.address().port, latencyMs: 120, onConnection: () => undefined })).toThrow(/is not available/);
    } finally {
      udp.close();
    }
    expect(() => runtime.listen({ host: 'localhost', port: 0, latencyMs: 120, onConnection: () => undefined })).toThrow(/must be an IP address/);
    expect(() => runtime.listen({ host: '127.0.0.1', port: 0, latencyMs: 120, passphrase: 'short', onConnection: () => undefined })).toThrow(/10 to 79/);
  });
});

describe('SRT runtime against ffmpeg and srt-live-transmit', () => {
  it('(a) ffmpeg caller into our listener: stream id and peer seen in the handshake, a valid TS received', async () => {
    const got = collector();
    const passphrase = 'a-good-passphrase-42';
    const l = listen({
      passphrase,
      pbkeylen: 16,
      onHandshake: (h) => {
        got.handshakes.push(h);
        return { accept: true };
      },
      onConnection: got.onConnection,
    });
    const ff = ffmpegToSrt(srtUrl(l.port, { streamid: '#!::r=demo,m=publish', passphrase, pbkeylen: 16 }), 4);
    await waitFor('a connection', () => got.conns.length === 1);
    const conn = got.conns[0]!;
    const closed = closedOf(conn);
    await waitFor('data', () => bytesOf(got.chunks.get(conn)) > 20_000);
    const live = conn.stats();
    expect(live.byteRecvTotal).toBeGreaterThan(0);
    expect(live.rcvLatencyMs).toBeGreaterThanOrEqual(200);
    expect(live.msRTT).toBeGreaterThanOrEqual(0);
    const result = await ff.done;
    expect(result.code, result.stderr).toBe(0);
    const error = await closed;
    expect(error?.code).toBe('SRT_ECONNLOST'); // the peer went away

    expect(got.handshakes).toHaveLength(1);
    expect(got.handshakes[0]!.streamId).toBe('#!::r=demo,m=publish');
    expect(got.handshakes[0]!.peer).toMatchObject({ address: '127.0.0.1', family: 4 });
    expect(got.handshakes[0]!.peer.port).toBeGreaterThan(0);
    expect(conn.streamId).toBe('#!::r=demo,m=publish');
    expect(conn.peer).toEqual(got.handshakes[0]!.peer);

    const chunks = got.chunks.get(conn)!;
    expect(chunks.length).toBeGreaterThan(50);
    expect(chunks.every((c) => c.length <= 1316 && c.length % 188 === 0 && c[0] === 0x47)).toBe(true);
    const file = join(dir, 'a.ts');
    await writeFile(file, Buffer.concat(chunks));
    const streams = await probeStreams(file);
    expect(streams.find((s) => s.codec_type === 'video')?.codec_name).toBe('h264');
    expect(Number(streams.find((s) => s.codec_type === 'video')?.nb_read_frames)).toBeGreaterThan(50);

    // After close: our counters are current, libsrt's are the last reading taken while connected.
    const stats = conn.stats();
    expect(stats.messagesReceived).toBe(chunks.length);
    expect(stats.bytesReceived).toBe(bytesOf(chunks));
    expect(stats.byteRecvTotal).toBe(live.byteRecvTotal);
  });

  it('(b) a wrong per-connection passphrase fails the caller; the listener accepts a correct one right after', async () => {
    const got = collector();
    const l = listen({
      onHandshake: (h) => {
        got.handshakes.push(h);
        return { accept: true, passphrase: 'the-right-passphrase', pbkeylen: 16 };
      },
      onConnection: got.onConnection,
    });
    const bad = ffmpegToSrt(srtUrl(l.port, { streamid: 'studio-a', passphrase: 'a-wrong-passphrase', pbkeylen: 16 }), 3);
    const badResult = await Promise.race([bad.done, sleep(15_000).then(() => ({ code: 'hung', signal: null, stderr: '' }))]);
    expect(badResult.code).not.toBe(0);
    expect(badResult.code).not.toBe('hung');
    expect(got.conns).toHaveLength(0);

    const good = ffmpegToSrt(srtUrl(l.port, { streamid: 'studio-a', passphrase: 'the-right-passphrase', pbkeylen: 16 }), 2);
    await waitFor('the good caller', () => got.conns.length === 1);
    const goodResult = await good.done;
    expect(goodResult.code, goodResult.stderr).toBe(0);
    await waitFor('data', () => bytesOf(got.chunks.get(got.conns[0]!)) > 10_000);
    expect(got.handshakes.length).toBeGreaterThanOrEqual(2);
  });

  it('(c) a 1404 from onHandshake fails ffmpeg, and our own caller sees reason 1404', async () => {
    const got = collector();
    const l = listen({
      onHandshake: (h) => (h.streamId === 'known' ? { accept: true } : { accept: false, reason: SrtReject.NotFound }),
      onConnection: got.onConnection,
      onRejected: (h, reason) => got.rejected.push({ h, reason }),
    });
    const ff = ffmpegToSrt(srtUrl(l.port, { streamid: 'unknown-flow' }), 3);
    const result = await Promise.race([ff.done, sleep(15_000).then(() => ({ code: 'hung', signal: null, stderr: '' }))]);
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBe('hung');
    await waitFor('onRejected', () => got.rejected.length >= 1);
    expect(got.rejected[0]).toMatchObject({ reason: 1404, h: { streamId: 'unknown-flow', peer: { address: '127.0.0.1' } } });

    const caller = runtime.call({ host: '127.0.0.1', port: l.port, streamId: 'nope', latencyMs: 120, connectTimeoutMs: 3000 });
    let connected = false;
    caller.on('connected', () => (connected = true));
    const error = await closedOf(caller);
    expect(connected).toBe(false);
    expect(error).toMatchObject({ name: 'SrtError', code: 'SRT_ECONNREJ', rejectReason: 1404 });
    expect(error!.message).toContain('1404 (not found: no such stream)');

    // And the same listener still takes a caller it knows.
    const ok = runtime.call({ host: '127.0.0.1', port: l.port, streamId: 'known', latencyMs: 120, connectTimeoutMs: 3000 });
    await new Promise<void>((resolve, reject) => {
      ok.once('connected', resolve);
      ok.once('closed', (e) => reject(e ?? new Error('closed')));
    });
    expect(ok.state).toBe('connected');
    await waitFor('accepted side', () => got.conns.length === 1);
    expect(got.conns[0]!.streamId).toBe('known');
    ok.close();
  });

  it('(c2) a caller with no listener times out; a host name is resolved', async () => {
    const port = await freeUdpPort();
    const conn = runtime.call({ host: 'localhost', port, latencyMs: 120, connectTimeoutMs: 1000 });
    const started = Date.now();
    const error = await closedOf(conn);
    expect(error?.code).toBe('SRT_ENOSERVER');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(conn.peer.address).toMatch(/^(127\.0\.0\.1|::1)$/);
  });

  it('(d) call() to srt-live-transmit: a TS file sent in 1316-byte messages arrives as a valid TS', async () => {
    const input = await makeTsFile(join(dir, 'd-in.ts'), 3);
    const port = await freeUdpPort();
    const outFile = join(dir, 'd-out.ts');
    const out = await open(outFile, 'w');
    // Explicit mode=listener (pitfall 8: never leave the mode to guesswork).
    const slt = run('srt-live-transmit', ['-q', '-a:no', `srt://:${port}?mode=listener&latency=200`, 'file://con'], out.fd);
    try {
      let conn: SrtConnection | undefined;
      for (let attempt = 0; attempt < 20 && !conn; attempt++) {
        const c = runtime.call({ host: '127.0.0.1', port, streamId: 'to-slt', latencyMs: 200, connectTimeoutMs: 1000 });
        const outcome = await new Promise<'connected' | 'closed'>((resolve) => {
          c.once('connected', () => resolve('connected'));
          c.once('closed', () => resolve('closed'));
        });
        if (outcome === 'connected') conn = c;
        else await sleep(100);
      }
      expect(conn).toBeDefined();
      const refused = await sendPaced(conn!, split1316(input));
      expect(refused).toBe(0);
      expect(conn!.stats().byteSentTotal).toBeGreaterThanOrEqual(input.length);
      await sleep(800); // latency + delivery
      conn!.close();
      await Promise.race([slt.done, sleep(5000)]);
    } finally {
      slt.proc.kill('SIGINT');
      await Promise.race([slt.done, sleep(3000)]);
      await out.close();
    }
    const output = await readFile(outFile);
    expect(output.length).toBeGreaterThanOrEqual(input.length * 0.95);
    expect(output.subarray(0, 188 * 50).equals(input.subarray(0, 188 * 50))).toBe(true);
    const streams = await probeStreams(outFile);
    expect(streams.find((s) => s.codec_type === 'video')?.codec_name).toBe('h264');
  });

  it('(e) two callers at once: each connection gets its own data (and its own latency)', async () => {
    const got = collector();
    const l = listen({ onConnection: got.onConnection, onHandshake: (h) => (h.streamId === 'a' ? { accept: true, latencyMs: 333 } : { accept: true }) });
    const a = runtime.call({ host: '127.0.0.1', port: l.port, streamId: 'a', latencyMs: 120, connectTimeoutMs: 3000 });
    const b = runtime.call({ host: '127.0.0.1', port: l.port, streamId: 'b', latencyMs: 120, connectTimeoutMs: 3000 });
    await Promise.all([a, b].map((c) => new Promise<void>((resolve, reject) => {
      c.once('connected', resolve);
      c.once('closed', (e) => reject(e ?? new Error('closed')));
    })));
    await waitFor('both accepted', () => got.conns.length === 2);
    const message = (tag: number, i: number) => {
      const m = Buffer.alloc(1316, tag);
      m.writeUInt32BE(i, 0);
      return m;
    };
    const N = 400;
    await Promise.all([
      sendPaced(a, Array.from({ length: N }, (_, i) => message(0xaa, i))),
      sendPaced(b, Array.from({ length: N }, (_, i) => message(0xbb, i))),
    ]);
    const byId = (id: string) => got.chunks.get(got.conns.find((c) => c.streamId === id)!)!;
    await waitFor('all messages', () => byId('a').length === N && byId('b').length === N);
    for (const [id, tag] of [['a', 0xaa], ['b', 0xbb]] as const) {
      const list = byId(id);
      expect(list.every((m, i) => m.length === 1316 && m.readUInt32BE(0) === i && m[1315] === tag)).toBe(true);
    }
    // Latency negotiates to the larger side: 333 set in onHandshake for 'a', the listener's 200 for 'b'.
    const accepted = (id: string) => got.conns.find((c) => c.streamId === id)!;
    expect(accepted('a').stats().rcvLatencyMs).toBe(333);
    expect(accepted('b').stats().rcvLatencyMs).toBe(200);
    expect(a.stats().peerLatencyMs).toBe(333);
    expect(a.stats()).toMatchObject({ sendDrops: 0 });
    // Callers share one local UDP port (one libsrt multiplexer, whose threads are not
    // created and joined per connection attempt), also after every caller has closed.
    const sharedPort = accepted('a').peer.port;
    expect(accepted('b').peer.port).toBe(sharedPort);
    a.close();
    b.close();
    const c = runtime.call({ host: '127.0.0.1', port: l.port, streamId: 'c', latencyMs: 120, connectTimeoutMs: 3000 });
    await new Promise<void>((resolve, reject) => {
      c.once('connected', resolve);
      c.once('closed', (e) => reject(e ?? new Error('closed')));
    });
    await waitFor('third accepted', () => got.conns.length === 3);
    expect(got.conns[2]!.peer.port).toBe(sharedPort);
    c.close();
  });

  it('(f) the event loop stays responsive while ffmpeg sends ~10 Mbit/s', async () => {
    const got = collector();
    const l = listen({ onConnection: got.onConnection });
    const seconds = 8;
    const ff = ffmpegToSrt(srtUrl(l.port, { streamid: 'load' }), seconds, ['-b:v', '10M', '-minrate', '10M', '-maxrate', '10M', '-bufsize', '2M', '-x264-params', 'nal-hrd=cbr:force-cfr=1']);
    await waitFor('connection', () => got.conns.length === 1);
    const conn = got.conns[0]!;
    await waitFor('data flowing', () => bytesOf(got.chunks.get(conn)) > 500_000);
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const bytes0 = conn.stats().bytesReceived;
    await sleep(4000);
    const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    histogram.disable();
    const mbps = ((conn.stats().bytesReceived - bytes0) * 8) / elapsedS / 1e6;
    const p99 = histogram.percentile(99) / 1e6;
    const cpuPct = ((cpu.user + cpu.system) / 1e6 / elapsedS) * 100;
    console.log(`SRT receive ${mbps.toFixed(1)} Mbit/s: event-loop delay p50 ${(histogram.percentile(50) / 1e6).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${(histogram.max / 1e6).toFixed(2)} ms; CPU ${cpuPct.toFixed(1)}% of a core (whole test process)`);
    expect(mbps).toBeGreaterThan(5);
    expect(p99).toBeLessThan(50);
    ff.proc.kill('SIGKILL');
    await closedOf(conn);
  });

  it('(i) dual-stack listener on "::": an IPv4 caller shows as IPv4, an IPv6 one as IPv6', async (ctx) => {
    const v6 = createSocket('udp6');
    const hasV6 = await new Promise<boolean>((resolve) => {
      v6.once('error', () => resolve(false));
      v6.bind(0, '::1', () => resolve(true));
    });
    v6.close();
    if (!hasV6) ctx.skip();
    const got = collector();
    const l = listen({ host: '::', onConnection: got.onConnection, onHandshake: (h) => (got.handshakes.push(h), { accept: true }) });
    for (const host of ['127.0.0.1', '::1']) {
      const c = runtime.call({ host, port: l.port, streamId: host, latencyMs: 120, connectTimeoutMs: 3000 });
      await new Promise<void>((resolve, reject) => {
        c.once('connected', resolve);
        c.once('closed', (e) => reject(e ?? new Error('closed')));
      });
      expect(c.peer).toEqual({ address: host, port: l.port, family: host === '::1' ? 6 : 4 });
      await waitFor('accepted', () => got.conns.some((x) => x.streamId === host));
      c.close();
    }
    expect(got.conns.map((c) => [c.streamId, c.peer.address, c.peer.family])).toEqual([
      ['127.0.0.1', '127.0.0.1', 4],
      ['::1', '::1', 6],
    ]);
    expect(got.handshakes.map((h) => h.peer.address)).toEqual(['127.0.0.1', '::1']);
  });
});

describe('closing the runtime', () => {
  it('(g) close() with connections open: closed events fire, nothing is left running', async () => {
    const before = new Set(process.getActiveResourcesInfo());
    const rt = SrtRuntime.open(logger);
    const got = collector();
    const l = rt.listen({ host: '127.0.0.1', port: 0, latencyMs: 120, onConnection: got.onConnection });
    const caller = rt.call({ host: '127.0.0.1', port: l.port, streamId: 'g', latencyMs: 120, connectTimeoutMs: 3000 });
    await new Promise<void>((resolve, reject) => {
      caller.once('connected', resolve);
      caller.once('closed', (e) => reject(e ?? new Error('closed')));
    });
    await waitFor('accepted', () => got.conns.length === 1);
    const pending = rt.call({ host: '192.0.2.1', port: 9, latencyMs: 120, connectTimeoutMs: 10_000 }); // TEST-NET: never answers
    const events: Array<[string, SrtError | undefined]> = [];
    for (const [name, c] of [['caller', caller], ['accepted', got.conns[0]!], ['pending', pending]] as const) {
      c.on('closed', (e) => events.push([name, e]));
    }
    caller.send(Buffer.alloc(188 * 7, 0x47));

    await rt.close();
    await rt.close(); // idempotent
    expect(events.map(([n]) => n).sort()).toEqual(['accepted', 'caller', 'pending']);
    expect(events.every(([, e]) => e === undefined)).toBe(true);
    expect(rt.info()).toMatchObject({ state: 'closed', listeners: 0, connections: 0, sockets: 0, waiting: false });
    expect(() => rt.call({ host: '127.0.0.1', port: 1, latencyMs: 120, connectTimeoutMs: 1000 })).toThrow(/closed/);
    expect(caller.send(Buffer.alloc(188))).toBe(false);
    await sleep(50);
    const left = process.getActiveResourcesInfo().filter((r) => !before.has(r));
    expect(left).not.toContain('Timeout');
  });

  it('(g2) a process that opened a runtime with open connections exits by itself after close()', async () => {
    const report = await runChild(`
const accepted = [];
const l = rt.listen({ host: '127.0.0.1', port: 0, latencyMs: 120, onConnection: (c) => accepted.push(c) });
const caller = rt.call({ host: '127.0.0.1', port: l.port, latencyMs: 120, connectTimeoutMs: 3000 });
const closed = [];
caller.on('closed', (e) => closed.push(['caller', e?.code ?? null]));
caller.on('connected', () => {
  const timer = setInterval(() => caller.send(Buffer.alloc(1316, 0x47)), 5);
  setTimeout(async () => {
    clearInterval(timer);
    for (const c of accepted) c.on('closed', (e) => closed.push(['accepted', e?.code ?? null]));
    await rt.close();
    report({ closed, received: accepted[0]?.stats().messagesReceived ?? 0 });
  }, 500);
});
`);
    const r = report as { closed: Array<[string, string | null]>; received: number };
    expect(r.closed.map(([n]) => n).sort()).toEqual(['accepted', 'caller']);
    expect(r.closed.every(([, code]) => code === null)).toBe(true);
    expect(r.received).toBeGreaterThan(10);
  });

  it('(h) closing a listener while a handshake waits for the main thread does not deadlock', async () => {
    // In a child process: the bug this guards against blocks the main thread for good,
    // which would hang the test runner instead of failing.
    const report = await runChild(`
const l = rt.listen({ host: '127.0.0.1', port: 0, latencyMs: 120, onConnection: () => report({ outcome: 'accepted' }), onHandshake: () => ({ accept: true }) });
const caller = rt.call({ host: '127.0.0.1', port: l.port, streamId: 'racer', latencyMs: 120, connectTimeoutMs: 3000 });
setImmediate(() => {
  // Hold the main thread: the caller's conclusion handshake reaches the listener, whose
  // receiver thread then waits in the listen callback (queued for this thread) while
  // holding the lock that srt_close on the listener takes.
  const until = Date.now() + 400;
  while (Date.now() < until) {}
  const closing = l.close();
  caller.once('closed', async (e) => {
    await closing;
    await rt.close();
    report({ outcome: 'closed', code: e?.code ?? null, reason: e?.rejectReason ?? null });
  });
});
`);
    expect(report).toMatchObject({ outcome: 'closed' });
    expect((report as { code: string }).code).toMatch(/SRT_ECONNREJ|SRT_ENOSERVER/);
  });
});

// ------------------------------------------------------------------ child processes

let childDir: string | undefined;

/**
 * Runs `body` in a fresh Node process with `rt` (an open SrtRuntime) and `report(json)` in
 * scope, and returns what it reported. The process must exit by itself within 10 s: the
 * timeout kills it and fails the test otherwise. The runtime's files are transpiled
 * (no type check) next to a link to node_modules.
 */
async function runChild(body: string): Promise<unknown> {
  if (!childDir) {
    const out = join(dir, 'child');
    await mkdir(join(out, 'src', 'srt'), { recursive: true });
    await mkdir(join(out, 'src', 'lib'), { recursive: true });
    await mkdir(join(out, 'src', 'protocol', 'srt'), { recursive: true });
    await symlink(join(REPO_ROOT, 'node_modules'), join(out, 'node_modules'));
    await writeFile(join(out, 'package.json'), '{"type":"module"}');
    for (const rel of ['src/lib/errors.ts', 'src/protocol/srt/stream-id.ts', ...['constants', 'connection', 'libsrt', 'runtime', 'sockaddr', 'types'].map((n) => `src/srt/${n}.ts`)]) {
      const source = await readFile(join(REPO_ROOT, rel), 'utf8');
      const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
      await writeFile(join(out, rel.replace(/\.ts$/, '.js')), js);
    }
    childDir = out;
  }
  const script = join(childDir, `child-${Math.random().toString(36).slice(2)}.js`);
  await writeFile(
    script,
    `import { pino } from 'pino';
import { SrtRuntime } from './src/srt/runtime.js';
const rt = SrtRuntime.open(pino({ level: 'silent' }));
const report = (value) => console.log(JSON.stringify(value));
${body}`,
  );
  const { stdout } = await execFileAsync(process.execPath, [script], { timeout: 10_000 });
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!);
}
