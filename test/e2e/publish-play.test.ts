import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flowYaml, playKey, publishKey, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { audioFrames, delay, play, probeLivePackets, probeStreams, probeVideoPackets, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';

const execFileAsync = promisify(execFile);
const SECONDS = 6;
const FPS = 25;

describe('RTMP publish and play with the real ffmpeg', () => {
  let daemon: InProcessDaemon;
  let dir: string;
  beforeAll(async () => {
    daemon = await startInProcess(`flows:\n${flowYaml('studio')}`);
    dir = await mkdtemp(join(tmpdir(), 'flowrelay-play-'));
  });
  afterAll(async () => daemon?.close());

  it('delivers H.264 + AAC to two players at once, and a late joiner starts on a keyframe', async () => {
    const hub = daemon.app.registry.get('studio')!.hub;
    const early = [play(daemon.url(playKey('studio')), join(dir, 'p1.flv')), play(daemon.url(playKey('studio')), join(dir, 'p2.flv'))];
    await waitFor(() => hub.readerCount === 2, 'two players attached');

    const publisher = publish(daemon.url(publishKey('studio')), { seconds: SECONDS, fps: FPS, gop: FPS });
    await waitFor(() => hub.live, 'publisher live');
    // Join in the middle of a GOP (keyframes every second, join at ~2.5 s).
    await delay(2_500);
    const late = play(daemon.url(playKey('studio')), join(dir, 'late.flv'));

    const pub = await publisher.done;
    expect(pub.code, pub.stderr).toBe(0);
    const results = await Promise.all([...early, late].map((p) => p.done));
    for (const r of results) expect(r.code, r.stderr).toBe(0);

    const sent = SECONDS * FPS;
    // The input and the hub count frames as a player does: not codec headers, not the end of sequence.
    const input = daemon.app.registry.get('studio')!.inputs.get('main')!;
    expect(input.frames).toBe(hub.counters.videoFrames + hub.counters.audioFrames);
    for (const name of ['p1.flv', 'p2.flv']) {
      const streams = await probeStreams(join(dir, name));
      expect(videoFrames(streams)).toBe(hub.counters.videoFrames);
      const video = streams.find((s) => s.codec_type === 'video');
      expect(video?.codec_name).toBe('h264');
      expect([video?.width, video?.height]).toEqual([640, 360]);
      expect(streams.find((s) => s.codec_type === 'audio')?.codec_name).toBe('aac');
      // Players attached before the publisher: they get every frame that was sent.
      expect(videoFrames(streams)).toBeGreaterThanOrEqual(sent - 2);
      expect(videoFrames(streams)).toBeLessThanOrEqual(sent);
      expect(audioFrames(streams)).toBeGreaterThan(SECONDS * 40);
    }

    const lateStreams = await probeStreams(join(dir, 'late.flv'));
    expect(lateStreams.find((s) => s.codec_type === 'video')?.codec_name).toBe('h264');
    expect(videoFrames(lateStreams)).toBeGreaterThan(FPS);
    expect(videoFrames(lateStreams)).toBeLessThan(sent);
    const packets = await probeVideoPackets(join(dir, 'late.flv'));
    expect(packets[0]?.flags).toMatch(/^K/);
    // Decode timestamps only move forward.
    const dts = packets.map((p) => Number(p.dts_time));
    for (let i = 1; i < dts.length; i++) expect(dts[i]).toBeGreaterThanOrEqual(dts[i - 1]!);
  });

  it("keeps timestamps moving across ffmpeg's 2^31 ms wrap (24.8 days of streaming): no frame repeats the last time", async () => {
    const hub = daemon.app.registry.get('studio')!.hub;
    const jumpsBefore = hub.counters.timestampJumps;
    // ffmpeg writes 31-bit RTMP timestamps: starting 7 s before 2^31 ms, it wraps to 0 mid-stream.
    const WRAP_S = 2 ** 31 / 1000;
    const publisher = publish(daemon.url(publishKey('studio')), { seconds: 12, fps: FPS, gop: FPS, tsOffsetSeconds: Math.floor(WRAP_S - 7) });
    await waitFor(() => hub.live, 'publisher live');
    const packets = await probeLivePackets(daemon.url(playKey('studio')));
    const pub = await publisher.done;
    expect(pub.code, pub.stderr).toBe(0);

    const video = packets.filter((p) => p.kind === 'video').map((p) => p.dtsMs);
    expect(video.length).toBeGreaterThan(9 * FPS);
    for (let i = 1; i < video.length; i++) expect(video[i], `video packet ${i}`).toBeGreaterThan(video[i - 1]!);
    // The player's time went past the wrap point instead of stopping at it.
    expect(video.at(-1)! - video[0]!).toBeGreaterThan(9_000);
    expect(hub.counters.timestampJumps - jumpsBefore).toBe(1);
  });

  it('carries messages far larger than the pre-publish cap (lossless 1080p keyframes)', async () => {
    const big = await startInProcess(`flows:\n${flowYaml('big')}`);
    try {
      const out = join(await mkdtemp(join(tmpdir(), 'flowrelay-big-')), 'b.flv');
      const hub = big.app.registry.get('big')!.hub;
      const player = play(big.url(playKey('big')), out);
      await waitFor(() => hub.readerCount === 1, 'player attached');
      const pub = await publish(big.url(publishKey('big')), { seconds: 3, width: 1920, height: 1080, lossless: true }).done;
      expect(pub.code, pub.stderr).toBe(0);
      expect((await player.done).code).toBe(0);
      const streams = await probeStreams(out);
      expect(streams.find((s) => s.codec_type === 'video')?.width).toBe(1920);
      expect(videoFrames(streams)).toBeGreaterThanOrEqual(3 * 25 - 2);
      expect(hub.counters.bytesIn / hub.counters.keyframes).toBeGreaterThan(128 * 1024);
    } finally {
      await big.close();
    }
  });

  it('with rtmp.mergeWritesMs, players still get every frame in order', async () => {
    const merged = await startInProcess(`flows:\n${flowYaml('merged')}`, ', mergeWritesMs: 50');
    try {
      const out = join(await mkdtemp(join(tmpdir(), 'flowrelay-merged-')), 'm.flv');
      const hub = merged.app.registry.get('merged')!.hub;
      const player = play(merged.url(playKey('merged')), out);
      await waitFor(() => hub.readerCount === 1, 'player attached');
      const pub = await publish(merged.url(publishKey('merged')), { seconds: 4 }).done;
      expect(pub.code, pub.stderr).toBe(0);
      expect((await player.done).code).toBe(0);
      expect(videoFrames(await probeStreams(out))).toBeGreaterThanOrEqual(4 * 25 - 2);
      const dts = (await probeVideoPackets(out)).map((p) => Number(p.dts_time));
      for (let i = 1; i < dts.length; i++) expect(dts[i]).toBeGreaterThanOrEqual(dts[i - 1]!);
    } finally {
      await merged.close();
    }
  });

  it('a player joining after the publisher reconnected sees only the video and audio streams (no phantom data stream)', async () => {
    // A flow of its own: its timeline starts at 0 (other tests here take studio's past 2^31 ms).
    const own = await startInProcess(`flows:\n${flowYaml('again')}`);
    try {
      const hub = own.app.registry.get('again')!.hub;
      expect((await publish(own.url(publishKey('again')), { seconds: 2 }).done).code).toBe(0);
      await waitFor(() => !hub.live, 'first publish over');
      const again = publish(own.url(publishKey('again')), { seconds: 6 });
      await waitFor(() => hub.counters.videoFrames > 100, 'second publish under way');
      const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-rw_timeout', '15000000', '-show_entries', 'stream=codec_type', '-of', 'csv=p=0', own.url(playKey('again'))]);
      expect(stdout.trim().split('\n').sort()).toEqual(['audio', 'video']);
      expect((await again.done).code).toBe(0);
    } finally {
      await own.close();
    }
  });

  it('refuses a wrong key without disturbing a live flow, then accepts the right key', async () => {
    const other = await startInProcess(`flows:\n${flowYaml('alpha')}${flowYaml('beta')}`);
    try {
      const dirOut = await mkdtemp(join(tmpdir(), 'flowrelay-wrongkey-'));
      const alphaHub = other.app.registry.get('alpha')!.hub;
      const player = play(other.url(playKey('alpha')), join(dirOut, 'alpha.flv'));
      await waitFor(() => alphaHub.readerCount === 1, 'player attached');
      const alpha = publish(other.url(publishKey('alpha')), { seconds: 5 });
      await waitFor(() => alphaHub.live, 'alpha live');

      const wrong = await publish(other.url('not-a-configured-key-123'), { seconds: 2 }).done;
      expect(wrong.code).not.toBe(0);
      // The key a player uses is not a publish key either.
      const playKeyAsPublish = await publish(other.url(playKey('beta')), { seconds: 2 }).done;
      expect(playKeyAsPublish.code).not.toBe(0);
      // Counted by the listener, as SRT counts an unknown flow.
      expect(other.app.listeners().find((l) => l.protocol === 'rtmp')!.refusals).toEqual({ unknown_key: 2 });

      const beta = await publish(other.url(publishKey('beta')), { seconds: 2 }).done;
      expect(beta.code, beta.stderr).toBe(0);

      expect((await alpha.done).code).toBe(0);
      expect((await player.done).code).toBe(0);
      const streams = await probeStreams(join(dirOut, 'alpha.flv'));
      expect(videoFrames(streams)).toBeGreaterThanOrEqual(5 * 25 - 2);
    } finally {
      await other.close();
    }
  });
});
