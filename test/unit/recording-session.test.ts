import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RecordingEvent } from '../../src/core/flow-events.js';
import type { ContainerMuxer } from '../../src/protocol/container.js';
import { parseAudioTag, parseVideoTag } from '../../src/protocol/flv/tag.js';
import { nodeRecordingFs } from '../../src/recording/recording-fs.js';
import { RecordingIndex, type RecordingEntry, type RecordingFormat } from '../../src/recording/recording-index.js';
import { RecordingSession, type RecordingSessionOptions } from '../../src/recording/recording-session.js';
import { TsDemuxer } from '../../src/protocol/mpegts/demuxer.js';
import { readFlvFile, toContainerInput, type FlvFile } from '../helpers/flv-file.js';

const execFileAsync = promisify(execFile);
const logger = pino({ level: 'silent' });

/** Wall-clock time of media time 0: the session's clock follows the media fed to it. */
const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

async function makeFlv(file: string, width: number, height: number, seconds: number, audioCodec = 'aac'): Promise<void> {
  await execFileAsync('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=25`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', String(seconds),
    '-c:v', 'libx264', '-g', '25', '-pix_fmt', 'yuv420p',
    '-c:a', audioCodec,
    // onMetaData carries this file's duration: the recording must not copy it into its segments.
    '-f', 'flv', file,
  ]);
}

interface Probe {
  streams: { codec_type: string; codec_name: string; width?: number; height?: number }[];
  format: { duration?: string };
}

async function probe(file: string): Promise<Probe> {
  const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,width,height:format=duration', '-of', 'json', file]);
  return JSON.parse(stdout) as Probe;
}

/** Seconds from the first packet's presentation to the end of the last one, over all streams. */
async function packetSpan(file: string): Promise<number> {
  const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-show_entries', 'packet=pts_time,duration_time', '-of', 'json', file], { maxBuffer: 64 * 1024 * 1024 });
  const packets = (JSON.parse(stdout) as { packets: { pts_time?: string; duration_time?: string }[] }).packets;
  const starts = packets.map((p) => Number(p.pts_time)).filter(Number.isFinite);
  const ends = packets.map((p) => Number(p.pts_time) + Number(p.duration_time ?? 0)).filter(Number.isFinite);
  return Math.max(...ends) - Math.min(...starts);
}

async function firstVideoPacketFlags(file: string): Promise<string | undefined> {
  const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=flags', '-read_intervals', '%+#1', '-of', 'json', file]);
  return (JSON.parse(stdout) as { packets: { flags: string }[] }).packets[0]?.flags;
}

/** Every file under dir, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  try {
    const all = await readdir(dir, { recursive: true, withFileTypes: true });
    return all.filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name).slice(dir.length + 1)).sort();
  } catch {
    return [];
  }
}

/** Timestamps of the video keyframes where files of `segmentMs` must start. */
function expectedCuts(flv: FlvFile, segmentMs: number): number[] {
  const cuts: number[] = [];
  for (const tag of flv.tags) {
    if (tag.type !== 9 || !parseVideoTag(tag.body).isKeyframe) continue;
    const last = cuts[cuts.length - 1];
    if (last === undefined || tag.timestamp - last >= segmentMs) cuts.push(tag.timestamp);
  }
  return cuts;
}

let media: string;
let small: FlvFile;
let large: FlvFile;
let withMp3: FlvFile;

beforeAll(async () => {
  media = await mkdtemp(join(tmpdir(), 'flowrelay-session-media-'));
  await Promise.all([makeFlv(join(media, 'small.flv'), 320, 240, 6), makeFlv(join(media, 'large.flv'), 640, 360, 2), makeFlv(join(media, 'mp3.flv'), 320, 240, 2, 'libmp3lame')]);
  withMp3 = await readFlvFile(join(media, 'mp3.flv'));
  small = await readFlvFile(join(media, 'small.flv'));
  large = await readFlvFile(join(media, 'large.flv'));
});

afterAll(async () => {
  await rm(media, { recursive: true, force: true });
});

describe('RecordingSession', () => {
  let tmp: string;
  let dir: string;
  let index: RecordingIndex;
  let events: RecordingEvent[];
  let failures: Error[];
  /** The session's clock: T0 plus the media time last fed. */
  let clockMs: number;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'flowrelay-session-'));
    dir = join(tmp, 'recordings');
    index = await RecordingIndex.load(dir, nodeRecordingFs, logger);
    events = [];
    failures = [];
    clockMs = T0;
  });

  afterEach(async () => {
    await index.close();
    await rm(tmp, { recursive: true, force: true });
  });

  function session(format: RecordingFormat, segmentMs: number, muxer?: (format: RecordingFormat) => ContainerMuxer): RecordingSession {
    const options: RecordingSessionOptions = { flowId: 'cam', jobId: null, nameInPath: 'cam', format, segmentMs, pathTemplate: '{flowId}/{id}' };
    return new RecordingSession(options, {
      index,
      fs: nodeRecordingFs,
      now: () => clockMs,
      events: (e) => events.push(e),
      logger,
      failed: (err) => failures.push(err),
      ...(muxer && { muxer }),
    });
  }

  /** Feeds an FLV file's tags as the output feed would, `offset` ms later on the timeline. */
  function feed(s: RecordingSession, flv: FlvFile, offset = 0): void {
    for (const tag of flv.tags) {
      const ts = tag.timestamp + offset;
      clockMs = T0 + ts;
      const m = toContainerInput(tag);
      if (m.kind === 'data') s.sendMetadata(ts, m.payload);
      else s.sendMedia(m.kind, ts, m.payload, m);
    }
  }

  const ofType = (type: RecordingEvent['type']): RecordingEvent[] => events.filter((e) => e.type === type);

  it.each(['mpegts', 'mp4', 'flv'] as const)('cuts %s into a file per segment, on keyframes', async (format) => {
    const s = session(format, 2000);
    feed(s, small);
    await s.finish();

    const entries = index.list();
    expect(entries).toHaveLength(3);
    expect(entries.map((e) => e.segment)).toEqual([0, 1, 2]);
    expect(new Set(entries.map((e) => e.sessionId))).toEqual(new Set([s.sessionId]));
    expect(s.files).toEqual(entries.map((e) => e.id));
    // The cuts are at the keyframes of media time 2 s and 4 s (the encoder's first frame is a little after 0).
    const cuts = expectedCuts(small, 2000);
    expect(cuts).toHaveLength(3);
    expect(cuts[1]! - cuts[0]!).toBe(2000);
    expect(cuts[2]! - cuts[0]!).toBe(4000);
    expect(entries.map((e) => e.startedAt)).toEqual(cuts.map((ts) => new Date(T0 + ts).toISOString()));
    const ext = { mpegts: 'ts', mp4: 'mp4', flv: 'flv' }[format];
    for (const e of entries) {
      expect(e).toMatchObject({ status: 'ready', flowId: 'cam', jobId: null, format, error: null, note: null, interrupted: false });
      expect(e.file).toBe(`cam/${e.id}.${ext}`);
      expect(e.endedAt).not.toBeNull();
      // Media time in the file: about two seconds (the last file runs to the end of the input).
      expect(e.durationMs).toBeGreaterThan(1900);
      expect(e.durationMs).toBeLessThan(2150);
      expect(e.bytes).toBe((await stat(index.path(e))).size);

      const p = await probe(index.path(e));
      expect(p.streams.map((st) => [st.codec_type, st.codec_name]).sort()).toEqual([
        ['audio', 'aac'],
        ['video', 'h264'],
      ]);
      expect(p.streams.find((st) => st.codec_type === 'video')).toMatchObject({ width: 320, height: 240 });
      const span = await packetSpan(index.path(e));
      expect(span).toBeGreaterThan(1.9);
      expect(span).toBeLessThan(2.3);
      // What a player shows as the length; fMP4's is patched in when the file is closed.
      expect(Number(p.format.duration)).toBeGreaterThan(1.8);
      expect(Number(p.format.duration)).toBeLessThan(2.3);
      expect(await firstVideoPacketFlags(index.path(e))).toMatch(/^K/);
    }
    expect(await filesUnder(dir)).toEqual(['index.json', ...entries.map((e) => e.file)].sort());

    expect(ofType('recording.started').map((e) => e.recordingId)).toEqual(entries.map((e) => e.id));
    const ready = ofType('recording.ready');
    expect(ready.map((e) => e.recordingId).sort()).toEqual(entries.map((e) => e.id).sort());
    for (const r of ready) {
      const e = index.get(r.recordingId);
      expect(r).toMatchObject({ flowId: 'cam', jobId: null, file: e?.file, format, durationMs: e?.durationMs, bytes: e?.bytes, note: null });
    }
    expect(ofType('recording.failed')).toEqual([]);
    expect(failures).toEqual([]);
    expect(s.backlog()).toBe(0);

    // The index on disk has the finished files.
    await index.flush();
    const stored = JSON.parse(await readFile(index.file, 'utf8')) as { recordings: RecordingEntry[] };
    expect(stored.recordings.map((e) => [e.id, e.status])).toEqual(entries.map((e) => [e.id, 'ready']));
  });

  it('starts a new MP4 file when the video sequence header changes', async () => {
    const s = session('mp4', 3_600_000);
    feed(s, small);
    const last = small.tags[small.tags.length - 1]?.timestamp ?? 0;
    feed(s, large, last + 40);
    await s.finish();

    const entries = index.list();
    expect(entries.map((e) => [e.segment, e.status, e.sessionId])).toEqual([
      [0, 'ready', s.sessionId],
      [1, 'ready', s.sessionId],
    ]);
    const sizes = await Promise.all(entries.map(async (e) => (await probe(index.path(e))).streams.find((st) => st.codec_type === 'video')));
    expect(sizes.map((v) => [v?.width, v?.height])).toEqual([
      [320, 240],
      [640, 360],
    ]);
    const durations = await Promise.all(entries.map(async (e) => Number((await probe(index.path(e))).format.duration)));
    expect(durations[0]).toBeGreaterThan(5.8);
    expect(durations[0]).toBeLessThan(6.3);
    expect(durations[1]).toBeGreaterThan(1.8);
    expect(durations[1]).toBeLessThan(2.3);
    expect(await firstVideoPacketFlags(index.path(entries[1]!))).toMatch(/^K/);
    expect(ofType('recording.started')).toHaveLength(2);
    expect(ofType('recording.ready')).toHaveLength(2);
  });

  it.each(['mpegts', 'flv'] as const)('keeps one %s file across a video sequence header change (the new one is written in-stream)', async (format) => {
    const s = session(format, 3_600_000);
    feed(s, small);
    // As the hub hands it on: the second encoder's time continues after the first's last message.
    const last = Math.max(...small.tags.map((t) => t.timestamp));
    feed(s, large, last + 40);
    await s.finish();
    expect(index.list()).toHaveLength(1);
    const file = index.path(index.list()[0]!);
    expect(Number((await probe(file)).format.duration)).toBeGreaterThan(7.5);
    // Both resolutions decode, in order.
    const { spawnSync } = await import('node:child_process');
    const probed = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=width', '-of', 'csv=p=0', file], { encoding: 'utf8' });
    expect(probed.status, probed.stderr).toBe(0);
    const widths = probed.stdout
      .split('\n')
      .map((l) => Number.parseInt(l, 10))
      .filter((w) => Number.isFinite(w));
    expect(widths.filter((w, i) => i === 0 || w !== widths[i - 1])).toEqual([320, 640]);
  });

  /** The tags of an FLV file, audio only (an audio-only encoder). */
  const audioOnly = (flv: FlvFile): FlvFile => ({ ...flv, tags: flv.tags.filter((t) => t.type === 8) });

  async function audioPackets(file: string): Promise<number[]> {
    const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'packet=dts_time', '-of', 'csv=p=0', file]);
    return stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
  }

  it('an MP4 file takes the audio header that comes just after the first keyframe (MPEG-TS sources), not a new file', async () => {
    const s = session('mp4', 3_600_000);
    const header = small.tags.findIndex((t) => t.type === 8 && parseAudioTag(t.body).isSequenceHeader);
    const keyframe = small.tags.findIndex((t) => t.type === 9 && parseVideoTag(t.body).isKeyframe);
    const tags = small.tags.filter((_t, i) => i !== header);
    tags.splice(tags.indexOf(small.tags[keyframe]!) + 1, 0, small.tags[header]!);
    feed(s, { ...small, tags });
    await s.finish();
    expect(index.list()).toHaveLength(1);
    const p = await probe(index.path(index.list()[0]!));
    expect(p.streams.map((st) => st.codec_name)).toEqual(['h264', 'aac']);
    expect(Number(p.format.duration)).toBeGreaterThan(5.8);
  });

  it.each(['mp4', 'mpegts', 'flv'] as const)('an audio-only %s recording keeps its first second (held while a video header may still come)', async (format) => {
    const s = session(format, 3_600_000);
    feed(s, audioOnly(small));
    await s.finish();
    const packets = await audioPackets(index.path(index.list()[0]!));
    const all = small.tags.filter((t) => t.type === 8 && !parseAudioTag(t.body).isSequenceHeader).length;
    expect(packets.length).toBe(all);
  });

  it('an audio-only encoder after a video one gets an audio file with its audio, not an empty one waiting for video', async () => {
    const s = session('mp4', 3_600_000);
    feed(s, small);
    s.sourceRestarted();
    const last = Math.max(...small.tags.map((t) => t.timestamp));
    feed(s, audioOnly(small), last + 40);
    await s.finish();
    const entries = index.list();
    expect(entries).toHaveLength(2);
    expect((await probe(index.path(entries[1]!))).streams.map((st) => st.codec_name)).toEqual(['aac']);
    expect((await audioPackets(index.path(entries[1]!))).length).toBeGreaterThan(200);
  });

  it('audio interleaved behind the keyframe a file opens on is left out, not stacked at time 0', async () => {
    const s = session('mp4', 2000);
    // As MPEG-TS delivers it: the audio of the last 100 ms before each keyframe comes after it.
    const tags = [...small.tags];
    for (const key of small.tags.filter((t) => t.type === 9 && parseVideoTag(t.body).isKeyframe && t.timestamp > 0)) {
      const late = tags.filter((t) => t.type === 8 && t.timestamp < key.timestamp && t.timestamp >= key.timestamp - 100 && !parseAudioTag(t.body).isSequenceHeader);
      for (const t of late) tags.splice(tags.indexOf(t), 1);
      tags.splice(tags.indexOf(key) + 1, 0, ...late);
    }
    feed(s, { ...small, tags });
    await s.finish();
    for (const e of index.list().slice(1)) {
      const dts = await audioPackets(index.path(e));
      for (let i = 1; i < dts.length; i++) expect(dts[i], `${e.segment}: audio packet ${i}`).toBeGreaterThan(dts[i - 1]!);
    }
  });

  it('a file that had to leave frames out says so in its note (MP3 audio in mp4), and is still ready', async () => {
    const s = session('mp4', 3_600_000);
    feed(s, withMp3);
    await s.finish();
    const [entry] = index.list();
    const mp3Frames = withMp3.tags.filter((t) => t.type === 8).length;
    expect(entry).toMatchObject({ status: 'ready', note: `left out: ${mp3Frames} frames mp4 cannot carry (it takes H.264 or HEVC video and AAC audio) or malformed` });
    expect((await probe(index.path(entry!))).streams.map((st) => st.codec_name)).toEqual(['h264']);
  });

  it('starts a new MPEG-TS file when the video codec changes (H.264 to HEVC): one PID cannot carry both to FFmpeg', async () => {
    const hevcFile = join(media, 'hevc.ts');
    await execFileAsync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=sample_rate=44100',
      '-t', '2', '-c:v', 'libx265', '-x265-params', 'log-level=error:keyint=25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-f', 'mpegts', hevcFile]);
    const hevcTags: FlvFile['tags'] = [];
    const demuxer = new TsDemuxer((tag) => hevcTags.push({ type: tag.kind === 'video' ? 9 : tag.kind === 'audio' ? 8 : 18, timestamp: tag.timestamp, body: tag.payload }));
    demuxer.feed(await readFile(hevcFile));
    demuxer.flush();
    const s = session('mpegts', 3_600_000);
    feed(s, small);
    feed(s, { hasAudio: true, hasVideo: true, tags: hevcTags }, Math.max(...small.tags.map((t) => t.timestamp)) + 40);
    await s.finish();
    const entries = index.list();
    expect(entries).toHaveLength(2);
    const codecs = await Promise.all(entries.map(async (e) => (await probe(index.path(e))).streams.find((st) => st.codec_type === 'video')?.codec_name));
    expect(codecs).toEqual(['h264', 'hevc']);
  });

  it('keeps one file when the same headers are sent again', async () => {
    const s = session('mpegts', 3_600_000);
    feed(s, small);
    // A reconnect of the same encoder: identical headers, timeline continues.
    const last = small.tags[small.tags.length - 1]?.timestamp ?? 0;
    feed(s, small, last + 40);
    await s.finish();
    expect(index.list()).toHaveLength(1);
    expect(Number((await probe(index.path(index.list()[0]!))).format.duration)).toBeGreaterThan(11.5);
  });

  it('a muxer that throws fails the recording, not the caller (the live path)', async () => {
    let pushes = 0;
    const broken = (): ContainerMuxer => ({
      counters: { skipped: 0 },
      push: () => {
        pushes += 1;
        if (pushes > 20) throw new TypeError('a bug in a muxer');
        return [Buffer.from('x')];
      },
      flush: () => {
        throw new TypeError('a bug at flush');
      },
    });
    const s = session('mpegts', 3_600_000, broken);
    expect(() => feed(s, small)).not.toThrow();
    await s.finish();
    expect(failures.map((e) => e.message)).toEqual(['muxer failed: a bug in a muxer']);
    expect(index.list()).toMatchObject([{ status: 'failed', error: 'EMUX: muxer failed: a bug in a muxer' }]);
    expect(events.map((e) => e.type)).toEqual(['recording.started', 'recording.failed']);
  });

  it('creates no file for a session with headers but no frames', async () => {
    const s = session('mp4', 2000);
    for (const tag of small.tags) {
      if (tag.type === 18) s.sendMetadata(tag.timestamp, tag.body);
      else if (tag.type === 9 && parseVideoTag(tag.body).isSequenceHeader) s.sendMedia('video', 0, tag.body, { isKeyframe: false, isSequenceHeader: true });
      else if (tag.type === 8 && parseAudioTag(tag.body).isSequenceHeader) s.sendMedia('audio', 0, tag.body, { isKeyframe: false, isSequenceHeader: true });
    }
    s.sendData(0, Buffer.from('ignored'));
    expect(s.current).toBeUndefined();
    await s.finish();
    expect(index.list()).toEqual([]);
    expect(events).toEqual([]);
    expect(await filesUnder(dir)).toEqual([]);
  });

  it('counts the bytes of files still closing in its backlog: a hung disk cannot grow memory segment by segment', () => {
    // A disk that accepts files and never completes a write.
    const hung: typeof nodeRecordingFs = {
      ...nodeRecordingFs,
      create: async () => ({ append: () => new Promise<void>(() => undefined), patch: async () => undefined, close: async () => undefined }),
    };
    const options: RecordingSessionOptions = { flowId: 'cam', jobId: null, nameInPath: 'cam', format: 'flv', segmentMs: 2000, pathTemplate: '{flowId}/{id}' };
    const s = new RecordingSession(options, { index, fs: hung, now: () => clockMs, events: (e) => events.push(e), logger, failed: (err) => failures.push(err) });
    feed(s, small);
    // Three segments were started; all of their bytes are still waiting.
    expect(ofType('recording.started')).toHaveLength(3);
    const media = small.tags.reduce((n, t) => n + t.body.length, 0);
    expect(s.backlog()).toBeGreaterThan(media);
  });

  it('takes nothing after finish', async () => {
    const s = session('mpegts', 2000);
    await s.finish();
    feed(s, small);
    await s.finish();
    expect(index.list()).toEqual([]);
    expect(events).toEqual([]);
  });

  it('shows the file being written as current', async () => {
    const s = session('mpegts', 3_600_000);
    feed(s, small);
    expect(s.current).toMatchObject({ status: 'recording', segment: 0, sessionId: s.sessionId });
    await s.finish('low_disk_space');
    expect(s.current).toBeUndefined();
    expect(index.list()).toEqual([expect.objectContaining({ status: 'ready', note: 'low_disk_space' })]);
    expect(ofType('recording.ready')).toEqual([expect.objectContaining({ note: 'low_disk_space' })]);
  });
});
