import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAmf0, type AmfValue } from '../../src/protocol/amf/amf0.js';
import { ChunkDecoder, type RtmpMessage } from '../../src/protocol/rtmp/chunk-decoder.js';
import { encodeChunks } from '../../src/protocol/rtmp/chunk-encoder.js';
import { decodeCommand, type RtmpCommand } from '../../src/protocol/rtmp/command.js';
import { parseUserControl, pingRequest, setChunkSize, setPeerBandwidth, streamEof, windowAckSize } from '../../src/protocol/rtmp/control.js';
import { ServerHandshake } from '../../src/protocol/rtmp/handshake.js';
import { RtmpClientConnection } from '../../src/rtmp/client/connection.js';
import { commandMessage, onStatus, resultMessage } from '../../src/rtmp/replies.js';
import type { RtmpClientError, RtmpClientOptions } from '../../src/rtmp/client/types.js';
import { parseRtmpUrl } from '../../src/rtmp/client/url.js';
import { flowYaml, playKey, publishKey, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { delay, play, probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';
import { flvTagBytes, isVideoFrame, readFlvFile, type FlvFileTag } from '../helpers/flv-file.js';
import { freePort, nginxRtmpAvailable, startNginxRtmp, startNodeMediaServer, type RtmpPeer } from '../helpers/peers.js';
import { closedPort, tcpStatesTo, throttlingProxy } from '../helpers/tcp-tools.js';

const execFileAsync = promisify(execFile);

interface Received {
  media: { kind: 'audio' | 'video'; timestamp: number; payload: Buffer }[];
  metadata: Buffer[];
  data: Buffer[];
  streamEnds: string[];
  readyCount: number;
  closedCount: number;
}

interface TestClient {
  conn: RtmpClientConnection;
  received: Received;
  /** Rejects with the close error if the connection closes before it is ready. */
  ready: Promise<void>;
  closed: Promise<RtmpClientError | undefined>;
  /** Every log line the connection wrote (debug level). */
  logs: string[];
}

function startClient(url: string, mode: 'publish' | 'play', overrides: Partial<RtmpClientOptions> = {}): TestClient {
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
  const received: Received = { media: [], metadata: [], data: [], streamEnds: [], readyCount: 0, closedCount: 0 };
  let onReady!: () => void;
  let onNotReady!: (err: Error) => void;
  let onClosed!: (err: RtmpClientError | undefined) => void;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onNotReady = reject;
  });
  ready.catch(() => undefined);
  const closed = new Promise<RtmpClientError | undefined>((resolve) => (onClosed = resolve));
  const conn = new RtmpClientConnection(
    {
      target: parseRtmpUrl(url),
      mode,
      connectTimeoutMs: 5_000,
      handshakeTimeoutMs: 5_000,
      chunkSize: 4096,
      maxMessageSize: 8 * 1024 * 1024,
      logger,
      ...overrides,
    },
    {
      ready: () => {
        received.readyCount += 1;
        onReady();
      },
      media: (kind, timestamp, payload) => void received.media.push({ kind, timestamp, payload }),
      metadata: (_timestamp, payload) => void received.metadata.push(payload),
      data: (_timestamp, payload) => void received.data.push(payload),
      streamEnd: (reason) => void received.streamEnds.push(reason),
      closed: (err) => {
        received.closedCount += 1;
        onNotReady(err ?? new Error('closed by us before ready'));
        onClosed(err);
      },
    },
  );
  conn.start();
  return { conn, received, ready, closed, logs };
}

/** Sends FLV file tags through a publishing connection, in real time by their timestamps. */
async function sendTags(conn: RtmpClientConnection, tags: FlvFileTag[]): Promise<void> {
  const start = Date.now();
  const first = tags[0]?.timestamp ?? 0;
  for (const tag of tags) {
    const wait = start + (tag.timestamp - first) - Date.now();
    if (wait > 5) await delay(wait);
    if (tag.type === 18) conn.sendMetadata(tag.timestamp, tag.body);
    else if (tag.type === 8) conn.sendMedia('audio', tag.timestamp, tag.body);
    else if (tag.type === 9) conn.sendMedia('video', tag.timestamp, tag.body);
  }
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Live handles of the kinds a client connection owns; compared before and after one. */
function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = { Timeout: 0, TCPSocketWrap: 0, TLSWrap: 0 };
  for (const kind of process.getActiveResourcesInfo()) if (kind in counts) counts[kind]! += 1;
  return counts;
}

const isAvcSequenceHeader = (p: Buffer): boolean => (p[0]! & 0x0f) === 7 && p[1] === 0;
const isAacSequenceHeader = (p: Buffer): boolean => p[0]! >> 4 === 10 && p[1] === 0;

let dir: string;
let flvFile: string;
let sourceTags: FlvFileTag[];
let sourceVideoFrames: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flowrelay-rtmp-client-'));
  flvFile = join(dir, 'source.flv');
  // The exact shape encoders send: H.264 with a keyframe per second + AAC, muxed by ffmpeg.
  await execFileAsync('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine',
    '-t', '4', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25', '-c:a', 'aac',
    '-f', 'flv', flvFile,
  ]);
  sourceTags = (await readFlvFile(flvFile)).tags;
  sourceVideoFrames = sourceTags.filter(isVideoFrame).length;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('RTMP client against the daemon', () => {
  let daemon: InProcessDaemon;
  beforeAll(async () => {
    daemon = await startInProcess(`flows:\n${flowYaml('push')}${flowYaml('pull')}${flowYaml('refuse')}`);
  });
  afterAll(async () => {
    await daemon.close();
  });

  it('publishes an ffmpeg-made FLV file; an ffmpeg player records every frame', async () => {
    expect(sourceVideoFrames).toBe(100);
    const out = join(dir, 'published.flv');
    const recorder = play(daemon.url(playKey('push')), out);
    const hub = daemon.app.registry.get('push')!.hub;
    await waitFor(() => hub.readerCount === 1, 'ffmpeg player attached');

    const client = startClient(daemon.url(publishKey('push')), 'publish');
    await client.ready;
    expect(client.conn.state).toBe('ready');
    await sendTags(client.conn, sourceTags);
    client.conn.close('file sent');
    client.conn.close('twice is fine');
    expect(await client.closed).toBeUndefined();
    expect(client.conn.state).toBe('closed');

    const done = await recorder.done;
    expect(done.code, done.stderr).toBe(0);
    const streams = await probeStreams(out);
    const video = streams.find((s) => s.codec_type === 'video');
    expect(video).toMatchObject({ codec_name: 'h264', width: 640, height: 360 });
    expect(streams.find((s) => s.codec_type === 'audio')?.codec_name).toBe('aac');
    expect(videoFrames(streams)).toBe(sourceVideoFrames);

    const fileSize = (await readFile(flvFile)).length;
    expect(client.conn.bytesOut).toBeGreaterThan(fileSize * 0.9);
    expect(client.conn.bytesIn).toBeGreaterThan(0);
    expect(client.received.readyCount).toBe(1);
    expect(client.received.closedCount).toBe(1);
    // Steps are logged, the stream key never is.
    expect(client.logs.some((l) => l.includes('publish started'))).toBe(true);
    expect(client.logs.join('\n')).not.toContain(publishKey('push'));
  });

  it('plays what ffmpeg publishes: metadata, sequence headers, every frame, and the end of the stream', async () => {
    const client = startClient(daemon.url(playKey('pull')), 'play');
    await client.ready;
    const seconds = 3;
    const pub = await publish(daemon.url(publishKey('pull')), { seconds }).done;
    expect(pub.code, pub.stderr).toBe(0);
    await waitFor(() => client.received.streamEnds.length > 0, 'streamEnd after the publisher left');

    const { media, metadata, streamEnds } = client.received;
    expect(streamEnds).toEqual(['NetStream.Play.UnpublishNotify']);
    expect(metadata.length).toBeGreaterThanOrEqual(1);
    expect(metadata[0]!.includes(Buffer.from('onMetaData'))).toBe(true);
    expect(metadata[0]!.includes(Buffer.from('@setDataFrame'))).toBe(false);
    const video = media.filter((m) => m.kind === 'video');
    const audio = media.filter((m) => m.kind === 'audio');
    expect(video.some((m) => isAvcSequenceHeader(m.payload))).toBe(true);
    expect(audio.some((m) => isAacSequenceHeader(m.payload))).toBe(true);
    expect(video.filter((m) => isVideoFrame({ type: 9, body: m.payload })).length).toBe(seconds * 25);
    const times = video.map((m) => m.timestamp);
    expect(times).toEqual([...times].sort((a, b) => a - b));

    // The connection stays up after the stream ended; closing it is ours to do.
    expect(client.conn.state).toBe('ready');
    client.conn.close('test done');
    expect(await client.closed).toBeUndefined();
    expect(client.received.streamEnds).toHaveLength(1);
    expect(client.logs.join('\n')).not.toContain(playKey('pull'));
  });

  it('reports a refused stream key as REJECTED with the server status, without the key', async () => {
    const client = startClient(daemon.url('wrong-secret-key'), 'publish');
    const err = await client.closed;
    expect(err?.code).toBe('REJECTED');
    expect(err?.message).toContain('NetStream.Publish.BadName');
    expect(err?.message).not.toContain('wrong-secret-key');
    await expect(client.ready).rejects.toBe(err);
    expect(client.received.readyCount).toBe(0);
    expect(client.received.closedCount).toBe(1);
  });

  it('reports an unknown playback key as REJECTED', async () => {
    const err = await startClient(daemon.url('no-such-play-key'), 'play').closed;
    expect(err?.code).toBe('REJECTED');
    expect(err?.message).toContain('NetStream.Play.StreamNotFound');
  });

  it('ignores media sent before ready and after close', async () => {
    const client = startClient(daemon.url(publishKey('refuse')), 'publish');
    client.conn.sendMedia('video', 0, Buffer.from([0x17, 0x01, 0, 0, 0]));
    expect(client.conn.bytesOut).toBe(0);
    await client.ready;
    client.conn.close('done');
    const before = client.conn.bytesOut;
    client.conn.sendMedia('video', 0, Buffer.from([0x17, 0x01, 0, 0, 0]));
    expect(client.conn.bytesOut).toBe(before);
    expect(await client.closed).toBeUndefined();
  });
});

describe('RTMP client failures', () => {
  it('reports a refused TCP connection as CONNECT_FAILED', async () => {
    const err = await startClient(`rtmp://127.0.0.1:${await closedPort()}/live/key`, 'publish').closed;
    expect(err?.code).toBe('CONNECT_FAILED');
    expect(err?.message).toMatch(/ECONNREFUSED/);
  });

  it('times out a server that accepts and never answers, leaving no timer or socket behind', async () => {
    const serverSockets: Promise<void>[] = [];
    const server = createServer((socket: Socket) => {
      // Reading is what lets the server see the peer's FIN (a paused socket never ends).
      socket.on('error', () => undefined).resume();
      serverSockets.push(new Promise((resolve) => socket.once('close', () => resolve())));
    });
    const port = await listen(server);
    try {
      const baseline = handleCounts();
      const started = Date.now();
      const client = startClient(`rtmp://127.0.0.1:${port}/live/secret`, 'publish', { handshakeTimeoutMs: 300 });
      const err = await client.closed;
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(err?.code).toBe('HANDSHAKE_TIMEOUT');
      expect(err?.message).toMatch(/within 300 ms \(waiting for the RTMP handshake\)/);
      expect(err?.message).not.toContain('secret');
      expect(client.conn.state).toBe('closed');
      expect(serverSockets).toHaveLength(1);
      await serverSockets[0];
      await new Promise((resolve) => setImmediate(resolve));
      // Other code in the process may drop timers meanwhile, never add ours.
      const after = handleCounts();
      for (const kind of Object.keys(baseline)) expect(after[kind], kind).toBeLessThanOrEqual(baseline[kind]!);
      expect(client.received.closedCount).toBe(1);
    } finally {
      await closeServer(server);
    }
  });

  it('counts the TLS handshake in the connect timeout (CONNECT_TIMEOUT)', async () => {
    const server = createServer((socket: Socket) => void socket.on('error', () => undefined).resume());
    const port = await listen(server);
    try {
      const err = await startClient(`rtmps://127.0.0.1:${port}/live/key`, 'publish', { connectTimeoutMs: 300, tls: { rejectUnauthorized: true } }).closed;
      expect(err?.code).toBe('CONNECT_TIMEOUT');
      expect(err?.message).toMatch(/no TLS connection .* within 300 ms/);
    } finally {
      await closeServer(server);
    }
  });

  it('reports a server that closes mid-handshake as CLOSED_BY_PEER and a non-RTMP answer as PROTOCOL_ERROR', async () => {
    const closing = createServer((socket: Socket) => socket.destroy());
    const garbage = createServer((socket: Socket) => {
      socket.on('error', () => undefined).resume();
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    const [closingPort, garbagePort] = [await listen(closing), await listen(garbage)];
    try {
      const closed = await startClient(`rtmp://127.0.0.1:${closingPort}/live/key`, 'play').closed;
      expect(closed?.code).toBe('CLOSED_BY_PEER');
      const bad = await startClient(`rtmp://127.0.0.1:${garbagePort}/live/key`, 'play').closed;
      expect(bad?.code).toBe('PROTOCOL_ERROR');
      expect(bad?.message).toMatch(/RTMP_HANDSHAKE/);
    } finally {
      await Promise.all([closeServer(closing), closeServer(garbage)]);
    }
  });
});

describe('RTMPS client', () => {
  let daemon: InProcessDaemon;
  let cert: Buffer;
  let tlsPort: number;
  beforeAll(async () => {
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    // Node checks IP addresses against the subjectAltName only, never the CN.
    await execFileAsync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ]);
    cert = await readFile(certFile);
    daemon = await startInProcess(`flows:\n${flowYaml('tls')}`, `, tls: { listen: "127.0.0.1:0", cert: ${JSON.stringify(certFile)}, key: ${JSON.stringify(keyFile)} }`);
    tlsPort = daemon.app.addresses().find((a) => a.protocol === 'rtmps')!.address.port;
  });
  afterAll(async () => {
    await daemon.close();
  });

  const url = (): string => `rtmps://127.0.0.1:${tlsPort}/live/${publishKey('tls')}`;

  it('refuses a self-signed certificate that is not trusted (TLS_FAILED)', async () => {
    const err = await startClient(url(), 'publish', { tls: { rejectUnauthorized: true } }).closed;
    expect(err?.code).toBe('TLS_FAILED');
    expect(err?.message).toMatch(/self-signed certificate/);
    expect(err?.message).not.toContain(publishKey('tls'));
  });

  it('publishes when the certificate is given as an extra CA', async () => {
    const client = startClient(url(), 'publish', { tls: { ca: cert, rejectUnauthorized: true } });
    await client.ready;
    await waitFor(() => daemon.app.registry.get('tls')!.hub.live, 'flow live');
    client.conn.close('done');
    expect(await client.closed).toBeUndefined();
  });

  it('abort() resets the TCP connection under TLS: nothing queued toward a server that stopped reading is left', async () => {
    // The server stops reading after 64 KiB: the published media piles up in the client.
    const proxy = await throttlingProxy(tlsPort, 64 * 1024, 1);
    try {
      const client = startClient(`rtmps://127.0.0.1:${proxy.port}/live/${publishKey('tls')}`, 'publish', { tls: { ca: cert, rejectUnauthorized: true } });
      await client.ready;
      for (let round = 0; round < 20 && client.conn.writableLength < 2 * 1024 * 1024; round++) {
        for (const tag of sourceTags) if (tag.type === 9) client.conn.sendMedia('video', tag.timestamp + round * 4000, tag.body);
      }
      expect(client.conn.writableLength).toBeGreaterThan(1024 * 1024);
      client.conn.abort('server stopped reading');
      expect(await client.closed).toBeUndefined();
      await waitFor(() => !tcpStatesTo(proxy.port).includes('ESTABLISHED'), 'the connection closed', 5_000);
      // A graceful close leaves the socket in FIN_WAIT1, holding what the server does not read.
      expect(tcpStatesTo(proxy.port)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('publishes when verification is turned off', async () => {
    const client = startClient(url(), 'publish', { tls: { rejectUnauthorized: false } });
    await client.ready;
    client.conn.close('done');
    expect(await client.closed).toBeUndefined();
  });
});

// CI installs nginx through scripts/setup.sh: there a missing nginx fails the test.
const nginxSkip = !nginxRtmpAvailable() && !process.env.CI;

describe.each([
  // nginx-rtmp (no publish_notify) ends a stream for players with StreamEOF alone.
  { name: 'nginx-rtmp', skip: nginxSkip, start: () => startNginxRtmp(), streamEnd: 'StreamEOF' },
  // node-media-server keeps players attached through a grace period instead.
  { name: 'node-media-server', skip: false, start: () => startNodeMediaServer(), streamEnd: undefined },
])('RTMP client against $name', ({ skip, start, streamEnd }) => {
  let peer: RtmpPeer;
  beforeAll(async () => {
    if (!skip) peer = await start();
  });
  afterAll(async () => {
    await peer?.stop();
  });

  it.skipIf(skip)('publishes the FLV file; an ffmpeg player and our play client receive every frame', async () => {
    const streamUrl = peer.url('live', 'relay-test');
    const out = join(dir, `${peer.name}.flv`);
    const publisher = startClient(streamUrl, 'publish');
    await publisher.ready;
    const player = startClient(streamUrl, 'play');
    await player.ready;
    // Neither peer ends an ffmpeg player when the publisher leaves: a short read timeout does.
    const recorder = play(streamUrl, out, ['-rw_timeout', '2000000']);
    // Players must be attached before the first keyframe goes out; ffmpeg says nothing when it is.
    await delay(1_000);
    await sendTags(publisher.conn, sourceTags);
    publisher.conn.close('file sent');
    expect(await publisher.closed).toBeUndefined();

    const done = await recorder.done;
    expect(done.code, `${done.stderr}\n${peer.logs()}`).toBe(0);
    const streams = await probeStreams(out);
    expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(videoFrames(streams)).toBe(sourceVideoFrames);

    const frames = (): number => player.received.media.filter((m) => m.kind === 'video' && isVideoFrame({ type: 9, body: m.payload })).length;
    await waitFor(() => frames() === sourceVideoFrames, 'every frame at our play client');
    expect(player.received.metadata.length).toBeGreaterThanOrEqual(1);
    if (streamEnd) {
      await waitFor(() => player.received.streamEnds.length > 0, 'streamEnd');
      expect(player.received.streamEnds).toEqual([streamEnd]);
    }
    player.conn.close('done');
    expect(await player.closed).toBeUndefined();
  });
});

describe('RTMP client against ffmpeg as the server', () => {
  it('publishes to ffmpeg -listen (a plain handshake server: C2 must echo its S1)', async () => {
    const port = await freePort();
    const out = join(dir, 'ffmpeg-server.flv');
    const server = spawnFfmpegServer(port, out);
    // ffmpeg accepts exactly one connection, so no probing: retry until it listens.
    let client = startClient(`rtmp://127.0.0.1:${port}/live/stream`, 'publish');
    const deadline = Date.now() + 10_000;
    while (!(await client.ready.then(() => true, () => false))) {
      const err = await client.closed;
      if (err?.code !== 'CONNECT_FAILED' || Date.now() > deadline) throw err ?? new Error('closed before ready');
      await delay(50);
      client = startClient(`rtmp://127.0.0.1:${port}/live/stream`, 'publish');
    }
    await sendTags(client.conn, sourceTags);
    client.conn.close('file sent');
    expect(await client.closed).toBeUndefined();
    const done = await server.done;
    expect(done.code, done.stderr).toBe(0);
    const streams = await probeStreams(out);
    expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(videoFrames(streams)).toBe(sourceVideoFrames);
  });
});

function spawnFfmpegServer(port: number, out: string): { done: Promise<{ code: number | null; stderr: string }> } {
  const proc = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-listen', '1', '-i', `rtmp://127.0.0.1:${port}/live/stream`, '-c', 'copy', '-f', 'flv', '-y', out], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    proc.once('error', (err) => resolve({ code: -1, stderr: err.message }));
    proc.once('exit', (code) => resolve({ code, stderr }));
  });
  return { done };
}

/**
 * One connection to a scripted RTMP server: our own server handshake and chunk decoder,
 * with replies the test chooses, to drive the client through what servers in the field
 * do and our daemon does not (no Play.Start, aggregates, _error to FCPublish, small ack
 * windows, keys echoed in statuses).
 */
class ScriptedPeer {
  readonly messages: RtmpMessage[] = [];
  readonly closed: Promise<void>;
  private handshake: ServerHandshake | undefined = new ServerHandshake();
  private readonly decoder = new ChunkDecoder();

  constructor(
    readonly socket: Socket,
    onCommand: (peer: ScriptedPeer, command: RtmpCommand, message: RtmpMessage) => void,
  ) {
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      if (this.handshake) {
        const progress = this.handshake.feed(chunk);
        if (progress.output) socket.write(progress.output);
        if (!progress.done) return;
        this.handshake = undefined;
        chunk = progress.rest;
      }
      this.decoder.feed(chunk, (message) => {
        this.messages.push(message);
        if (message.typeId === 20) onCommand(this, decodeCommand(message.payload), message);
      });
    });
  }

  commands(): RtmpCommand[] {
    return this.messages.filter((m) => m.typeId === 20).map((m) => decodeCommand(m.payload));
  }

  send(...buffers: Buffer[]): void {
    for (const b of buffers) this.socket.write(b);
  }
}

async function scriptedServer(onCommand: (peer: ScriptedPeer, command: RtmpCommand, message: RtmpMessage) => void): Promise<{ port: number; peers: ScriptedPeer[]; close: () => Promise<void> }> {
  const peers: ScriptedPeer[] = [];
  const server = createServer((socket) => void peers.push(new ScriptedPeer(socket, onCommand)));
  const port = await listen(server);
  return {
    port,
    peers,
    close: async () => {
      for (const p of peers) p.socket.destroy();
      await closeServer(server);
    },
  };
}

const connectSuccess = (command: RtmpCommand, chunkSize = 128): Buffer =>
  resultMessage(chunkSize, command.transactionId, { fmsVer: 'FMS/3,0,1,123', capabilities: 31 }, { level: 'status', code: 'NetConnection.Connect.Success', description: 'ok' });
const callFailed = (command: RtmpCommand): Buffer =>
  commandMessage(128, 0, '_error', command.transactionId, null, { level: 'error', code: 'NetConnection.Call.Failed', description: 'Method not found' });
const media = (typeId: 8 | 9 | 18 | 22, timestamp: number, payload: Buffer, chunkSize = 128): Buffer =>
  encodeChunks({ csid: typeId === 8 ? 4 : 6, typeId, streamId: 1, timestamp, payload }, chunkSize);

/** An aggregate message body: FLV tags with timestamps relative to the first. */
function aggregate(tags: { type: number; timestamp: number; body: Buffer }[]): Buffer {
  return Buffer.concat(tags.map(flvTagBytes));
}

function userControls(peer: ScriptedPeer): ReturnType<typeof parseUserControl>[] {
  return peer.messages.filter((m) => m.typeId === 4).map((m) => parseUserControl(m.payload));
}

describe('RTMP client against scripted servers', () => {
  it('plays from a server that skips Play.Start, sends aggregates, a small ack window and pings', async () => {
    const server = await scriptedServer((peer, command) => {
      if (command.name === 'connect') peer.send(windowAckSize(1000), setPeerBandwidth(2500, 2), pingRequest(1234), setChunkSize(4096), connectSuccess(command, 4096));
      else if (command.name === 'createStream') peer.send(resultMessage(4096, command.transactionId, null, 1));
      else if (command.name === 'play') {
        peer.send(
          media(9, 0, Buffer.from([0x17, 0, 0, 0, 0, 1, 2, 3]), 4096),
          media(18, 0, encodeAmf0(['|RtmpSampleAccess', true, true]), 4096),
          media(18, 0, encodeAmf0(['@setDataFrame', 'onMetaData', { width: 640 }]), 4096),
          media(22, 1000, aggregate([{ type: 8, timestamp: 500, body: Buffer.from([0xaf, 1, 9]) }, { type: 9, timestamp: 540, body: Buffer.from([0x27, 1, 0, 0, 0, 5]) }]), 4096),
          media(18, 1040, encodeAmf0(['onCuePoint', { name: 'cue' }]), 4096),
          media(9, 1080, Buffer.concat([Buffer.from([0x27, 1, 0, 0, 0]), Buffer.alloc(3000)]), 4096),
        );
      }
    });
    try {
      const client = startClient(`rtmp://127.0.0.1:${server.port}/app/inst/stream-name?token=t`, 'play');
      await client.ready;
      await waitFor(() => client.received.media.length === 4, 'media');
      const peer = server.peers[0]!;

      const { received } = client;
      expect(received.media.map((m) => [m.kind, m.timestamp])).toEqual([['video', 0], ['audio', 1000], ['video', 1040], ['video', 1080]]);
      expect(received.metadata.map((m) => m.toString('latin1'))).toEqual([encodeAmf0(['onMetaData', { width: 640 }]).toString('latin1')]);
      expect(received.data).toEqual([encodeAmf0(['onCuePoint', { name: 'cue' }])]);

      // What the client said: chunk size first, a player's connect, play live-only on the created stream, a 3 s buffer.
      expect(peer.messages[0]).toMatchObject({ typeId: 1, payload: Buffer.from([0, 0, 0x10, 0]) });
      const [connect] = peer.commands();
      expect(connect).toMatchObject({ name: 'connect', transactionId: 1, commandObject: { app: 'app/inst', tcUrl: `rtmp://127.0.0.1:${server.port}/app/inst`, flashVer: 'LNX 9,0,124,2', videoCodecs: 252 } });
      const playMessage = peer.messages.find((m) => m.typeId === 20 && decodeCommand(m.payload).name === 'play')!;
      expect(playMessage).toMatchObject({ csid: 8, streamId: 1 });
      expect(decodeCommand(playMessage.payload).args).toEqual(['stream-name?token=t', -1000]);
      await waitFor(() => peer.messages.some((m) => m.typeId === 3), 'acknowledgement');
      const acks = peer.messages.filter((m) => m.typeId === 3).map((m) => m.payload.readUInt32BE(0));
      expect(acks[0]).toBeGreaterThanOrEqual(1000);
      expect(peer.messages.filter((m) => m.typeId === 5).map((m) => m.payload.readUInt32BE(0))).toEqual([2500]);
      expect(userControls(peer)).toEqual(expect.arrayContaining([{ event: 'pingResponse', timestamp: 1234 }, { event: 'setBufferLength', streamId: 1, bufferMs: 3000 }]));

      // Play.Stop and StreamEOF for one stop make one streamEnd; a new publish and stop make another.
      const roundTrip = async (token: number): Promise<void> => {
        peer.send(pingRequest(token));
        await waitFor(() => userControls(peer).some((e) => e?.event === 'pingResponse' && e.timestamp === token), `ping ${token}`);
      };
      peer.send(onStatus(4096, 1, 'status', 'NetStream.Play.Stop', 'stopped'), streamEof(1));
      await roundTrip(1);
      expect(received.streamEnds).toEqual(['NetStream.Play.Stop']);
      peer.send(onStatus(4096, 1, 'status', 'NetStream.Play.PublishNotify', 'back'), media(9, 2000, Buffer.from([0x17, 1, 0, 0, 0])), streamEof(1));
      await roundTrip(2);
      expect(received.streamEnds).toEqual(['NetStream.Play.Stop', 'StreamEOF']);
      expect(received.media.at(-1)?.timestamp).toBe(2000);
      expect(received.readyCount).toBe(1);

      client.conn.close('done');
      expect(await client.closed).toBeUndefined();
      await peer.closed;
      expect(peer.commands().map((c) => c.name)).toEqual(['connect', 'createStream', 'play', 'deleteStream']);
    } finally {
      await server.close();
    }
  });

  it('publishes to a server that refuses releaseStream and FCPublish; closes with FCUnpublish and deleteStream', async () => {
    const server = await scriptedServer((peer, command) => {
      if (command.name === 'connect') peer.send(connectSuccess(command));
      else if (command.name === 'releaseStream' || command.name === 'FCPublish') peer.send(callFailed(command));
      else if (command.name === 'createStream') peer.send(resultMessage(128, command.transactionId, null, 7));
      else if (command.name === 'publish') {
        peer.send(commandMessage(128, 0, 'onFCPublish', 0, null, { code: 'NetStream.Publish.Start' }), onStatus(128, 7, 'status', 'NetStream.Publish.Start', 'go'));
      }
    });
    try {
      const client = startClient(`rtmp://127.0.0.1:${server.port}/live/the-key`, 'publish');
      await client.ready;
      const peer = server.peers[0]!;
      const [connect] = peer.commands();
      expect(connect?.commandObject).toMatchObject({ app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; flowrelay)', tcUrl: `rtmp://127.0.0.1:${server.port}/live` });

      client.conn.sendMetadata(0, encodeAmf0(['onMetaData', { duration: 0 }]));
      client.conn.sendMedia('video', 0x1_000_000, Buffer.alloc(5000, 0x27));
      client.conn.sendMedia('audio', 10, Buffer.from([0xaf, 1, 2]));
      client.conn.sendData(11, encodeAmf0(['onTextData', { text: 'hi' }]));
      await waitFor(() => peer.messages.filter((m) => [8, 9, 18].includes(m.typeId)).length === 4, 'published messages');
      const published = peer.messages.filter((m) => [8, 9, 18].includes(m.typeId));
      expect(published.map((m) => [m.csid, m.typeId, m.streamId, m.timestamp, m.payload.length])).toEqual([
        [5, 18, 7, 0, encodeAmf0(['@setDataFrame', 'onMetaData', { duration: 0 }]).length],
        [6, 9, 7, 0x1_000_000, 5000],
        [4, 8, 7, 10, 3],
        [5, 18, 7, 11, encodeAmf0(['onTextData', { text: 'hi' }]).length],
      ]);
      expect(published[0]!.payload.equals(encodeAmf0(['@setDataFrame', 'onMetaData', { duration: 0 }]))).toBe(true);

      client.conn.close('done');
      expect(await client.closed).toBeUndefined();
      await peer.closed;
      const commands = peer.commands();
      expect(commands.map((c) => c.name)).toEqual(['connect', 'releaseStream', 'FCPublish', 'createStream', 'publish', 'FCUnpublish', 'deleteStream']);
      expect(commands.find((c) => c.name === 'publish')!.args).toEqual(['the-key', 'live']);
      expect(commands.find((c) => c.name === 'FCUnpublish')!.args).toEqual(['the-key']);
      expect(commands.find((c) => c.name === 'deleteStream')!.args).toEqual([7]);
    } finally {
      await server.close();
    }
  });

  it.each<[string, (peer: ScriptedPeer, command: RtmpCommand) => void, RegExp]>([
    [
      'an error status that echoes the key',
      (peer, command) => {
        if (command.name === 'connect') peer.send(connectSuccess(command));
        else if (command.name === 'createStream') peer.send(resultMessage(128, command.transactionId, null, 1));
        else if (command.name === 'publish') peer.send(onStatus(128, 1, 'error', 'NetStream.Publish.BadName', `Stream the-key?auth=x is already publishing`));
      },
      /refused publish: NetStream\.Publish\.BadName: Stream <key redacted> is already publishing/,
    ],
    [
      '_error to connect',
      (peer, command) => {
        if (command.name !== 'connect') return;
        const info: AmfValue = { level: 'error', code: 'NetConnection.Connect.Rejected', description: '[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ]' };
        peer.send(commandMessage(128, 0, '_error', command.transactionId, null, info));
      },
      /connect refused by .*: NetConnection\.Connect\.Rejected: \[ AccessManager\.Reject \]/,
    ],
  ])('reports %s as REJECTED', async (_name, script, message) => {
    const server = await scriptedServer(script);
    try {
      const client = startClient(`rtmp://127.0.0.1:${server.port}/live/the-key?auth=x`, 'publish');
      const err = await client.closed;
      expect(err?.code).toBe('REJECTED');
      expect(err?.message).toMatch(message);
      expect(err?.message).not.toContain('the-key');
    } finally {
      await server.close();
    }
  });
});
