import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readlink } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListenerReport } from '../../src/policy/connection-admission.js';
import { flowYaml, outputTo, playKey, publishKey, reconfigure, spawnDaemon, startInProcess, tempConfig, type SpawnedDaemon } from '../helpers/daemon.js';
import { delay, play, probeStreams, publish, videoFrames, waitFor, type Proc } from '../helpers/ffmpeg.js';
import { readFlvFile, type FlvFileTag } from '../helpers/flv-file.js';
import { liveInstances } from '../helpers/heap-census.js';
import { makeTestFlv } from '../helpers/media-sync.js';
import { freePort } from '../helpers/peers.js';
import { RawRtmp } from '../helpers/raw-rtmp.js';
import { freeUdpPort, recordSrt, srtUrl } from '../helpers/srt-tools.js';

const TOKEN = 'frt_churn-write-token-for-tests-000000000000';
const STEADY_SECONDS = 30;
const RTMP_CYCLES = 60;
const SRT_CYCLES = 2;
const FLOW_CYCLES = 12;

/** One API call on a connection of its own (agent: false), so no keep-alive socket stays open in the daemon. */
function api<T>(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; result: T }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { host: '127.0.0.1', port, method, path, agent: false, headers: { authorization: `Bearer ${TOKEN}`, ...(payload && { 'content-type': 'application/json' }) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, result: (JSON.parse(text) as { result: T }).result }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The daemon's open file descriptors, by what they point at (socket:[...], anon_inode:[eventpoll], files). */
async function openFds(pid: number): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    // An fd closed between the listing and the link (an API connection ending) is not open.
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
    if (target !== undefined) out.push(target);
  }
  return out;
}

/**
 * The fds once two readings 200 ms apart agree: the API call just made closes its socket
 * a moment after answering, and a baseline must not catch it half-closed. Bounded.
 */
async function settledFds(pid: number): Promise<string[]> {
  let before = await openFds(pid);
  for (let i = 0; i < 25; i++) {
    await delay(200);
    const now = await openFds(pid);
    if (JSON.stringify(fdKinds(now)) === JSON.stringify(fdKinds(before))) return now;
    before = now;
  }
  return before;
}

/** Counts by kind: sockets and other inodes are told apart, not their numbers. */
function fdKinds(fds: string[]): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const fd of fds) {
    const kind = fd.replace(/\[\d+\]$/, '');
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

/**
 * A publisher that connects, sends a second of real media (as fast as the socket takes
 * it) and is then dropped by the test: the way encoders vanish in the field.
 */
async function rawPublisher(port: number, key: string, tags: FlvFileTag[]): Promise<RawRtmp> {
  const c = await RawRtmp.open(port);
  await c.publish(key);
  for (const tag of tags) c.media(tag.type as 8 | 9, tag.timestamp, tag.body);
  return c;
}

/** One publisher with three players; who leaves first, and how, changes with `i`. */
async function rtmpCycle(port: number, tags: FlvFileTag[], i: number): Promise<void> {
  const publisher = await rawPublisher(port, publishKey('churn'), tags);
  const players = await Promise.all([0, 1, 2].map(async () => {
    const p = await RawRtmp.open(port);
    await p.play(playKey('churn'));
    return p;
  }));
  // Each player gets the cached GOP (far more than 10 kB) once the publisher is live.
  await waitFor(() => players.every((p) => p.bytesReceived > 10_000), `cycle ${i}: players receiving`, 10_000);
  // A connection that gives up before the handshake, and one that sends garbage.
  (await RawRtmp.open(port)).destroy();
  (await RawRtmp.open(port)).write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  const leave = (c: RawRtmp) => (i % 2 === 0 ? c.destroy() : c.socket.end());
  if (i % 3 === 0) {
    leave(publisher);
    for (const p of players) leave(p);
  } else {
    for (const p of players) leave(p);
    leave(publisher);
  }
}

/** The first second of the test source: sequence headers, a keyframe and what follows it. */
async function firstSecond(dir: string): Promise<FlvFileTag[]> {
  makeTestFlv(join(dir, 'source.flv'));
  const file = await readFlvFile(join(dir, 'source.flv'));
  return file.tags.filter((t) => (t.type === 8 || t.type === 9) && t.timestamp < 1_000);
}

/**
 * Sessions that come and go must leave nothing behind (operators see stale sessions and
 * memory that grows over days in other relays). A spawned daemon takes hundreds of
 * publishers and players that connect and vanish, SRT players that are killed, and flows
 * created and deleted through the API with an output that never connects; afterwards its
 * listeners, file descriptors and flows are back where they started, and a steady
 * stream through the same daemon lost nothing.
 */
describe('churn leaves nothing behind', () => {
  let daemon: SpawnedDaemon;
  let apiPort: number;
  let srtPort: number;
  let dir: string;
  let steadyPublisher: Proc;
  let steadyPlayer: Proc;
  let tags: FlvFileTag[];
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flowrelay-churn-'));
    tags = await firstSecond(dir);
    apiPort = await freePort();
    srtPort = await freeUdpPort();
    const sha = createHash('sha256').update(TOKEN).digest('hex');
    const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0", handshakeTimeoutMs: 2000 }
srt: { listen: "127.0.0.1:${srtPort}" }
api:
  listen: "127.0.0.1:${apiPort}"
  tokens: [{ name: ops, scope: write, sha256: ${sha} }]
flows:
${flowYaml('steady')}${flowYaml('churn')}`);
    cleanup = cfg.cleanup;
    daemon = await spawnDaemon(cfg.file);
    // Logged once everything listens, the API included.
    await daemon.waitForLine(/"msg":"flowrelay started"/);
    steadyPlayer = play(daemon.url(playKey('steady')), join(dir, 'steady.flv'));
    steadyPublisher = publish(daemon.url(publishKey('steady')), { seconds: STEADY_SECONDS });
  });

  afterAll(async () => {
    steadyPublisher?.proc.kill('SIGKILL');
    steadyPlayer?.proc.kill('SIGKILL');
    daemon?.proc.kill('SIGTERM');
    await daemon?.exited;
    await cleanup?.();
  });

  /** GET /v1/listeners, kept for the checks that follow (waitFor's refresh). */
  let listeners: ListenerReport[] = [];
  const fetchListeners = async () => {
    listeners = (await api<ListenerReport[]>(apiPort, 'GET', '/v1/listeners')).result;
  };
  const connections = (protocol: ListenerReport['protocol']) => listeners.find((l) => l.protocol === protocol)!.connections;
  const untilConnections = (want: { rtmp?: number; srt?: number }, what: string) =>
    waitFor(() => (want.rtmp === undefined || connections('rtmp') === want.rtmp) && (want.srt === undefined || connections('srt') === want.srt), what, 15_000, fetchListeners);
  it('RTMP, SRT and API churn: connections, file descriptors and flows return to where they were; the steady stream is whole', async () => {
    await untilConnections({ rtmp: 2 }, 'steady publisher and player connected');
    // One cycle of each kind first, so that whatever the daemon opens once (the SRT
    // runtime's epoll, an output's first connect attempt, the config thread of the first
    // API edit) is in the baseline.
    await rtmpCycle(daemon.port, tags, 1);
    await untilConnections({ rtmp: 2 }, 'warm-up cycle gone');
    expect((await api(apiPort, 'PATCH', '/v1/flows/churn', { meta: { warm: 'up' } })).status).toBe(200);
    const baseline = await settledFds(daemon.proc.pid!);

    for (let i = 0; i < RTMP_CYCLES; i++) {
      await rtmpCycle(daemon.port, tags, i);
      // Every few cycles, wait for the daemon to catch up, so the caps are never what stops a cycle.
      if (i % 10 === 9) await untilConnections({ rtmp: 2 }, `cycle ${i}: sessions closed`);
    }

    const srtPlay = srtUrl(srtPort, { mode: 'caller', streamId: `#!::r=steady,m=request,s=${playKey('steady')}` });
    for (let i = 0; i < SRT_CYCLES; i++) {
      // The last cycle's players must be gone first, or their slots would pass for the new ones.
      await untilConnections({ srt: 0 }, `SRT cycle ${i}: previous players released`);
      const players = [0, 1].map((n) => recordSrt(srtPlay, join(dir, `srt-${i}-${n}.ts`), 20));
      await untilConnections({ srt: 2 }, `SRT cycle ${i}: two players`);
      // One vanishes without a goodbye (libsrt notices by the peer idle timeout), one says goodbye.
      players[0]!.proc.kill('SIGKILL');
      players[1]!.proc.kill('SIGINT');
      await Promise.all(players.map((p) => p.done));
    }

    for (let i = 0; i < FLOW_CYCLES; i++) {
      const id = `temp-${i}`;
      const created = await api(apiPort, 'POST', '/v1/flows', {
        id,
        inputs: [{ name: 'main', type: 'rtmp-push', streamKey: publishKey(id) }],
        playback: { key: playKey(id) },
        // Nothing listens there: the output keeps retrying until its flow is deleted.
        outputs: [{ name: 'nowhere', type: 'rtmp', url: `rtmp://127.0.0.1:${await freePort()}/live`, streamKey: 'never-reached-0000' }],
      });
      expect(created.status).toBe(201);
      const publisher = await rawPublisher(daemon.port, publishKey(id), tags);
      const player = await RawRtmp.open(daemon.port);
      await player.play(playKey(id));
      await waitFor(() => player.bytesReceived > 10_000, `${id}: player receiving`, 10_000);
      expect((await api(apiPort, 'DELETE', `/v1/flows/${id}`)).status).toBe(200);
      // Deleting the flow disconnects its publisher and player.
      expect(await publisher.closedWithin(5_000)).toBe(true);
      expect(await player.closedWithin(5_000)).toBe(true);
    }

    await untilConnections({ rtmp: 2, srt: 0 }, 'every churned connection released');
    const flows = (await api<{ id: string }[]>(apiPort, 'GET', '/v1/flows')).result.map((f) => f.id).sort();
    expect(flows).toEqual(['churn', 'steady']);
    const churn = (await api<{ readers: number; live: boolean }>(apiPort, 'GET', '/v1/flows/churn/status')).result;
    expect(churn).toMatchObject({ live: false, readers: 0 });
    // Sockets close a moment after the API says so: poll until the kinds match, then compare.
    let now = await openFds(daemon.proc.pid!);
    const deadline = Date.now() + 10_000;
    while (JSON.stringify(fdKinds(now)) !== JSON.stringify(fdKinds(baseline)) && Date.now() < deadline) {
      await delay(100);
      now = await openFds(daemon.proc.pid!);
    }
    expect(fdKinds(now)).toEqual(fdKinds(baseline));
    await fetchListeners();
    const refusals = listeners.map((l) => [l.protocol, l.refusals]);
    expect(refusals).toEqual([['rtmp', {}], ['srt', {}]]);

    // The steady stream went on through all of it: every frame of its publisher arrived.
    expect((await steadyPublisher.done).code).toBe(0);
    expect((await steadyPlayer.done).code).toBe(0);
    expect(videoFrames(await probeStreams(join(dir, 'steady.flv')))).toBeGreaterThanOrEqual(STEADY_SECONDS * 25 - 2);
    expect(daemon.lines.filter((l) => /"level":(50|60)/.test(l))).toEqual([]);
  }, 120_000);
});

/**
 * The same churn inside the test process, where a heap snapshot can be taken: once every
 * connection has closed and the added flows are gone, nothing still references their
 * sessions, players, SRT connections, flows or outputs. A closure or map that kept one
 * alive would keep its buffers too, and that is how memory grows over days.
 */
describe('churn in process: no connection object outlives its connection', () => {
  it('after publishers, players, SRT players and flows with outputs came and went, the heap holds none of their objects', async () => {
    const daemon = await startInProcess(`srt: { listen: "127.0.0.1:0" }\nflows:\n${flowYaml('churn')}`);
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-churn-heap-'));
      const tags = await firstSecond(dir);
      const open = () => daemon.app.listeners().reduce((n, l) => n + l.connections, 0);
      for (let i = 0; i < 40; i++) {
        await rtmpCycle(daemon.port, tags, i);
        if (i % 10 === 9) await waitFor(() => open() === 0, `cycle ${i}: sessions closed`, 15_000);
      }

      const deadPort = await freePort();
      for (let i = 0; i < 4; i++) {
        const id = `temp-${i}`;
        await reconfigure(daemon, `${flowYaml('churn')}${flowYaml(id, { outputs: [outputTo('nowhere', deadPort, 'elsewhere')] })}`);
        const publisher = await rawPublisher(daemon.port, publishKey(id), tags);
        const player = await RawRtmp.open(daemon.port);
        await player.play(playKey(id));
        await waitFor(() => player.bytesReceived > 10_000, `${id}: player receiving`, 10_000);
        await reconfigure(daemon, flowYaml('churn'));
        expect(await publisher.closedWithin(5_000)).toBe(true);
        expect(await player.closedWithin(5_000)).toBe(true);
      }

      // SRT players of a live flow: one killed, one that says goodbye.
      const publisher = await rawPublisher(daemon.port, publishKey('churn'), tags);
      const srtPlay = srtUrl(daemon.app.srtPort()!, { mode: 'caller', streamId: `#!::r=churn,m=request,s=${playKey('churn')}` });
      const players = [0, 1].map((n) => recordSrt(srtPlay, join(dir, `srt-${n}.ts`), 20));
      await waitFor(() => daemon.app.listeners().find((l) => l.protocol === 'srt')!.connections === 2, 'two SRT players', 15_000);
      players[0]!.proc.kill('SIGKILL');
      players[1]!.proc.kill('SIGINT');
      await Promise.all(players.map((p) => p.done));
      publisher.destroy();

      await waitFor(() => open() === 0, 'every connection closed', 15_000);
      expect(daemon.app.registry.list().map((f) => f.id)).toEqual(['churn']);
      const counts = await liveInstances(['RtmpSession', 'RtmpPlayer', 'ChunkDecoder', 'SrtConnection', 'TsOverSrtSink', 'Flow', 'StreamHub', 'SupervisedOutput', 'SupervisedInput', 'RtmpClientConnection', 'ReconnectSupervisor', 'OutputFeed', 'ReaderGate']);
      expect(counts).toEqual({
        RtmpSession: 0, RtmpPlayer: 0, ChunkDecoder: 0, SrtConnection: 0, TsOverSrtSink: 0,
        // The one configured flow and its hub.
        Flow: 1, StreamHub: 1,
        SupervisedOutput: 0, SupervisedInput: 0, RtmpClientConnection: 0, ReconnectSupervisor: 0, OutputFeed: 0, ReaderGate: 0,
      });
    } finally {
      await daemon.close();
    }
  }, 90_000);
});
