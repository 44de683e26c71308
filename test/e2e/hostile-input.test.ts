import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flowYaml, playKey, publishKey, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { play, probeStreams, publish, videoFrames, waitFor, type Proc } from '../helpers/ffmpeg.js';
import { RawRtmp } from '../helpers/raw-rtmp.js';

/** A chunk header on csid 3 (type 0) announcing `length` bytes of message `typeId`. */
function type0Header(typeId: number, length: number, csid = 3): Buffer {
  const b = Buffer.alloc(12);
  b[0] = csid;
  b.writeUIntBE(0, 1, 3);
  b.writeUIntBE(length, 4, 3);
  b[7] = typeId;
  b.writeUInt32LE(0, 8);
  return b;
}

function setChunkSizeMessage(size: number): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt32BE(size >>> 0, 0);
  return Buffer.concat([Buffer.from([0x02]), Buffer.from([0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]), body]);
}

/**
 * A handshake, then `bursts` of 2,000 ping requests (18 bytes each, each asking for an 18-byte
 * answer) from a peer that never reads; stops early when the connection is closed.
 */
async function pingFlood(c: RawRtmp, bursts: number): Promise<void> {
  await c.handshake();
  c.socket.pause();
  const ping = Buffer.concat([Buffer.from([0x02, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0]), Buffer.from([0, 6, 0, 0, 0, 1])]);
  const burst = Buffer.concat(Array.from({ length: 2000 }, () => ping));
  for (let i = 0; i < bursts && !c.socket.destroyed; i++) {
    if (!c.socket.write(burst)) await new Promise((r) => setTimeout(r, 5));
  }
}

const SECONDS = 12;

/**
 * Every hostile connection is closed on its own while a real stream carries on through
 * the same daemon from first frame to last.
 */
describe('hostile bytes close one connection, never the daemon', () => {
  let daemon: InProcessDaemon;
  let publisher: Proc;
  let player: Proc;
  let out: string;

  beforeAll(async () => {
    daemon = await startInProcess(`flows:\n${flowYaml('live')}`, ', handshakeTimeoutMs: 1500, maxMessageSize: 1Mi');
    const hub = daemon.app.registry.get('live')!.hub;
    out = join(await mkdtemp(join(tmpdir(), 'flowrelay-hostile-')), 'live.flv');
    player = play(daemon.url(playKey('live')), out);
    await waitFor(() => hub.readerCount === 1, 'player attached');
    publisher = publish(daemon.url(publishKey('live')), { seconds: SECONDS });
    await waitFor(() => hub.live, 'publisher live');
  });

  afterAll(async () => {
    publisher?.proc.kill('SIGKILL');
    player?.proc.kill('SIGKILL');
    await daemon?.close();
  });

  const cases: [string, (c: RawRtmp) => Promise<void> | void][] = [
    ['garbage instead of a handshake (an HTTP request)', (c) => c.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))],
    ['a truncated handshake (C0 and part of C1, then silence)', (c) => c.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(700)]))],
    ['a chunk size of 0', async (c) => { await c.handshake(); c.write(setChunkSizeMessage(0)); }],
    ['a chunk size above 2^31', async (c) => { await c.handshake(); c.write(setChunkSizeMessage(0x80000001)); }],
    ['a chunk size of 1 (a CPU and heap flood)', async (c) => { await c.handshake(); c.write(setChunkSizeMessage(1)); }],
    ['a large message before any publish was accepted', async (c) => { await c.handshake(); c.write(type0Header(9, 100_000)); }],
    ['ping requests from a peer that never reads the answers', async (c) => {
      // Bounded: at most 3000 bursts (about 108 MB of answers asked for), stops when closed.
      await pingFlood(c, 3000);
    }],
    ['a player that deleted its stream and then idles', async (c) => {
      await c.play(playKey('live'));
      c.write(c.command('deleteStream', 0, null, 1));
    }],
    ['a message length over the cap', async (c) => { await c.handshake(); c.write(type0Header(9, 0xfffff0)); }],
    ['an unknown message type', async (c) => { await c.handshake(); c.write(Buffer.concat([type0Header(7, 4), Buffer.alloc(4)])); }],
    ['a continuation chunk on a chunk stream never opened', async (c) => { await c.handshake(); c.write(Buffer.from([0xc9, 1, 2, 3])); }],
    ['AMF with a string length past the end', async (c) => {
      await c.handshake();
      const amf = Buffer.from([0x02, 0x00, 0x07, ...Buffer.from('connect'), 0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x03, 0x00, 0x03, ...Buffer.from('app'), 0x02, 0xff, 0xff, 0x41]);
      c.write(Buffer.concat([type0Header(20, amf.length), amf]));
    }],
    ['a command whose name is not a string', async (c) => {
      await c.handshake();
      const amf = Buffer.from([0x00, 0x40, 0x08, 0, 0, 0, 0, 0, 0, 0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
      c.write(Buffer.concat([type0Header(20, amf.length), amf]));
    }],
  ];

  for (const [name, attack] of cases) {
    it(`closes the connection on ${name}`, async () => {
      const conn = await RawRtmp.open(daemon.port);
      await attack(conn);
      expect(await conn.closedWithin(5_000)).toBe(true);
    });
  }

  it('a ping flood from a peer that never reads is cut off after a small backlog of answers, not the players\' allowance', async () => {
    // A long handshake timeout of its own: only the backlog rule can end this connection.
    const logs: Record<string, unknown>[] = [];
    const own = await startInProcess('flows: []\n', ', handshakeTimeoutMs: 60000', logs);
    try {
      const c = await RawRtmp.open(own.port);
      // 14 MB of answers asked for: more than the kernel's socket buffers take (a few MB),
      // less than the old limit, which let 17 MiB of 18-byte writes pile up.
      await pingFlood(c, 400);
      expect(await c.closedWithin(5_000)).toBe(true);
      expect(logs.some((l) => l.code === 'write_backlog')).toBe(true);
    } finally {
      await own.close();
    }
  });

  it('thousands of malformed connections from one client make one log line per reason, not one each', async () => {
    const logs: Record<string, unknown>[] = [];
    const own = await startInProcess('flows: []\n', '', logs);
    try {
      // 200 connections, 20 at a time, each with a bad RTMP version byte.
      for (let round = 0; round < 10; round++) {
        const conns = await Promise.all(Array.from({ length: 20 }, () => RawRtmp.open(own.port)));
        for (const c of conns) c.write(Buffer.concat([Buffer.from([0x47]), Buffer.alloc(1536)]));
        for (const c of conns) expect(await c.closedWithin(5_000)).toBe(true);
      }
      const warned = logs.filter((l) => l.level === 40 && l.code === 'RTMP_HANDSHAKE');
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({ remoteAddress: '127.0.0.1', msg: expect.stringMatching(/version/) });
    } finally {
      await own.close();
    }
  });

  it('kept the live stream whole through all of it', async () => {
    const pub = await publisher.done;
    expect(pub.code, pub.stderr).toBe(0);
    const played = await player.done;
    expect(played.code, played.stderr).toBe(0);
    const streams = await probeStreams(out);
    expect(videoFrames(streams)).toBeGreaterThanOrEqual(SECONDS * 25 - 2);
    // And the daemon still accepts new work.
    const after = await publish(daemon.url(publishKey('live')), { seconds: 1 }).done;
    expect(after.code, after.stderr).toBe(0);
  });
});
