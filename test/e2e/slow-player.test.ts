import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { flowYaml, playKey, publishKey, startInProcess } from '../helpers/daemon.js';
import { play, probeStreams, probeVideoPackets, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';
import { RawRtmp } from '../helpers/raw-rtmp.js';

const SECONDS = 8;

describe('a player that stops reading', () => {
  it('skips to keyframes with the drops counted, while the publisher and a normal player lose nothing', async () => {
    const logs: Record<string, unknown>[] = [];
    const daemon = await startInProcess(`flows:\n${flowYaml('heavy')}`, ', maxPlayerBacklog: 256Ki', logs);
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-slow-'));
      const hub = daemon.app.registry.get('heavy')!.hub;
      const normal = play(daemon.url(playKey('heavy')), join(dir, 'normal.flv'));
      const stuck = await RawRtmp.open(daemon.port);
      await stuck.play(playKey('heavy'));
      await waitFor(() => hub.readerCount === 2, 'both players attached');
      // Stop reading: the kernel buffers fill, then the daemon's socket queue grows.
      stuck.socket.pause();

      // Lossless H.264 is tens of Mbit/s: far more than the loopback buffers can hide.
      const publisher = publish(daemon.url(publishKey('heavy')), { seconds: SECONDS, width: 1280, height: 720, lossless: true });
      const pub = await publisher.done;
      expect(pub.code, pub.stderr).toBe(0);
      const normalDone = await normal.done;
      expect(normalDone.code, normalDone.stderr).toBe(0);
      // The flow's counters show the loss while the player is still connected.
      expect(hub.counters.playerSkips).toBeGreaterThan(0);
      expect(hub.counters.playerFramesDropped).toBeGreaterThan(0);
      stuck.destroy();
      type Report = { dropped: { messages: number; bytes: number; skips: number }; bytesOut: number };
      const reports = () => logs.filter((l) => l.msg === 'player disconnected') as unknown as Report[];
      await waitFor(() => reports().length === 2, 'both players reported');
      const [stuckReport, normalReport] = [...reports()].sort((a, b) => b.dropped.bytes - a.dropped.bytes) as [Report, Report];
      // The stuck reader fell behind, skipped to keyframes, and its loss was counted...
      expect(stuckReport.dropped.skips).toBeGreaterThan(0);
      expect(stuckReport.dropped.bytes).toBeGreaterThan(1_000_000);
      // ...while the normal reader never had to skip.
      expect(normalReport.dropped.skips).toBe(0);
      // And the flow's counters add up what its players lost.
      expect(hub.counters.playerSkips).toBe(stuckReport.dropped.skips);
      expect(hub.counters.playerFramesDropped).toBe(stuckReport.dropped.messages);

      // The normal player got every frame, starting on a keyframe, in order.
      const streams = await probeStreams(join(dir, 'normal.flv'));
      expect(videoFrames(streams)).toBeGreaterThanOrEqual(SECONDS * 25 - 2);
      const packets = await probeVideoPackets(join(dir, 'normal.flv'));
      expect(packets[0]?.flags).toMatch(/^K/);
    } finally {
      await daemon.close();
    }
  });

  it('a player joining a cached GOP far larger than maxPlayerBacklog gets all of it, and a live stream after it', async () => {
    const daemon = await startInProcess(`flows:\n${flowYaml('big')}`, ', maxPlayerBacklog: 64Ki');
    try {
      const hub = daemon.app.registry.get('big')!.hub;
      const publisher = await RawRtmp.open(daemon.port);
      await publisher.publish(publishKey('big'));
      await waitFor(() => hub.live, 'publisher live');
      // A keyframe alone 64 times the limit: the replay burst is not the player falling behind.
      const keyframe = Buffer.alloc(4 * 1024 * 1024, 0x11);
      keyframe.set([0x17, 0x01, 0, 0, 0]);
      publisher.media(9, 0, keyframe);
      publisher.media(9, 40, Buffer.from([0x27, 0x01, 0, 0, 0, 0x22]));
      await waitFor(() => hub.counters.videoFrames === 2, 'the GOP arrived');

      const players = await Promise.all([0, 1].map(async () => {
        const player = await RawRtmp.open(daemon.port);
        await player.play(playKey('big'));
        return player;
      }));
      await waitFor(() => players.every((p) => p.bytesReceived > keyframe.length), 'both players got the whole GOP');
      // Live frames after the burst reach them too: the burst's credit is gone once it drained.
      const before = players.map((p) => p.bytesReceived);
      for (let t = 80; t <= 400; t += 40) publisher.media(9, t, Buffer.alloc(16 * 1024, 0x27));
      await waitFor(() => players.every((p, i) => p.bytesReceived - before[i]! >= 9 * 16 * 1024), 'live frames after the burst');
      expect(hub.readerCount).toBe(2);
      for (const p of players) p.destroy();
      publisher.destroy();
    } finally {
      await daemon.close();
    }
  });

  it('ffmpeg joining mid-GOP with a GOP far above maxPlayerBacklog plays every frame from the keyframe', async () => {
    const daemon = await startInProcess(`flows:\n${flowYaml('longgop')}`, ', maxPlayerBacklog: 64Ki');
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-longgop-'));
      const flow = daemon.app.registry.get('longgop')!;
      // One keyframe for the whole 8 s: a player that skipped would get nothing more.
      // Lossless H.264: megabytes of GOP, more than the loopback buffers take at once.
      const publisher = publish(daemon.url(publishKey('longgop')), { seconds: SECONDS, width: 1280, height: 720, lossless: true, gop: SECONDS * 25 });
      await waitFor(() => flow.hub.counters.videoFrames >= 75, 'three seconds of the GOP cached');
      const player = play(daemon.url(playKey('longgop')), join(dir, 'joined.flv'));
      expect((await publisher.done).code).toBe(0);
      expect((await player.done).code).toBe(0);
      const packets = await probeVideoPackets(join(dir, 'joined.flv'));
      expect(packets[0]?.flags).toMatch(/^K/);
      expect(packets.length).toBeGreaterThanOrEqual(SECONDS * 25 - 2);
    } finally {
      await daemon.close();
    }
  });
});
