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

      // The normal player got every frame, starting on a keyframe, in order.
      const streams = await probeStreams(join(dir, 'normal.flv'));
      expect(videoFrames(streams)).toBeGreaterThanOrEqual(SECONDS * 25 - 2);
      const packets = await probeVideoPackets(join(dir, 'normal.flv'));
      expect(packets[0]?.flags).toMatch(/^K/);
    } finally {
      await daemon.close();
    }
  });

  it('a player closed while the cached GOP is replayed to it is removed from the flow', async () => {
    const daemon = await startInProcess(`flows:\n${flowYaml('big')}`, ', maxPlayerBacklog: 64Ki');
    try {
      const hub = daemon.app.registry.get('big')!.hub;
      const publisher = await RawRtmp.open(daemon.port);
      await publisher.publish(publishKey('big'));
      await waitFor(() => hub.live, 'publisher live');
      // A GOP whose keyframe alone is far past twice the players' backlog limit: the
      // replay to a joining player stops at the next message, inside addReader.
      const keyframe = Buffer.alloc(4 * 1024 * 1024, 0x11);
      keyframe.set([0x17, 0x01, 0, 0, 0]);
      publisher.media(9, 0, keyframe);
      publisher.media(9, 40, Buffer.from([0x27, 0x01, 0, 0, 0, 0x22]));
      await waitFor(() => hub.counters.videoFrames === 2, 'the GOP arrived');

      for (let i = 0; i < 3; i++) {
        const player = await RawRtmp.open(daemon.port);
        await player.play(playKey('big'));
        expect(await player.closedWithin(10_000), `player ${i} closed as stuck`).toBe(true);
      }
      await waitFor(() => hub.readerCount === 0, 'no reader left in the flow');
      publisher.destroy();
    } finally {
      await daemon.close();
    }
  });
});
