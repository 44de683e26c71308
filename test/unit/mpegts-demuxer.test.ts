import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TsDemuxer, type TsDemuxerCounters, type TsDemuxerLimits } from '../../src/protocol/mpegts/demuxer.js';
import { AdtsReader, type AdtsFrame } from '../../src/protocol/mpegts/demux-aac.js';
import { crc32Mpeg2 } from '../../src/protocol/mpegts/crc32.js';
import type { FlvTag } from '../../src/protocol/mpegts/types.js';
import { avcResolution, parseAudioTag, parseVideoTag } from '../../src/protocol/flv/tag.js';
import { probeStreams, videoFrames, audioFrames } from '../helpers/ffmpeg.js';

const execFileAsync = promisify(execFile);
const PKT = 188;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG so "random" damage is the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Demuxed {
  tags: FlvTag[];
  counters: TsDemuxerCounters;
}

/** Feeds `data` in the pieces `sizes` yields (cycled), then flushes. */
function demux(data: Buffer, nextSize: () => number = () => data.length, limits?: TsDemuxerLimits): Demuxed {
  const tags: FlvTag[] = [];
  const d = new TsDemuxer((t) => tags.push(t), limits);
  for (let i = 0; i < data.length; ) {
    const n = Math.max(1, nextSize());
    d.feed(data.subarray(i, i + n));
    i += n;
  }
  d.flush();
  return { tags, counters: { ...d.counters } };
}

/** Tags as short strings: deep equality on thousands of Buffers is slow in vitest. */
function fingerprint(d: Demuxed): { tags: string[]; counters: TsDemuxerCounters } {
  const tags = d.tags.map((t) => `${t.kind} ${t.timestamp} ${t.payload.length} ${createHash('sha1').update(t.payload).digest('hex')}`);
  return { tags, counters: d.counters };
}

const videoTags = (tags: FlvTag[]): FlvTag[] => tags.filter((t) => t.kind === 'video');
const audioTags = (tags: FlvTag[]): FlvTag[] => tags.filter((t) => t.kind === 'audio');
const videoFramesOf = (tags: FlvTag[]): FlvTag[] => videoTags(tags).filter((t) => !parseVideoTag(t.payload).isSequenceHeader);
const audioFramesOf = (tags: FlvTag[]): FlvTag[] => audioTags(tags).filter((t) => !parseAudioTag(t.payload).isSequenceHeader);
/** The composition time of a legacy AVC frame or an enhanced CodedFrames(X) one. */
function cts(t: FlvTag): number {
  const p = t.payload;
  if ((p[0]! & 0x80) === 0) return p.readIntBE(2, 3);
  return (p[0]! & 0x0f) === 1 ? p.readIntBE(5, 3) : 0;
}

/** An FLV file (FLV spec v10.1 annex E: header, PreviousTagSize0, then tag + size pairs). */
function flvFile(tags: FlvTag[]): Buffer {
  const flags = (tags.some((t) => t.kind === 'audio') ? 0x04 : 0) | (tags.some((t) => t.kind === 'video') ? 0x01 : 0);
  const parts: Buffer[] = [Buffer.from([0x46, 0x4c, 0x56, 1, flags, 0, 0, 0, 9, 0, 0, 0, 0])];
  for (const t of tags) {
    const h = Buffer.alloc(11);
    h[0] = t.kind === 'audio' ? 8 : t.kind === 'video' ? 9 : 18;
    h.writeUIntBE(t.payload.length, 1, 3);
    h.writeUIntBE(t.timestamp & 0xffffff, 4, 3);
    h[7] = (t.timestamp >>> 24) & 0xff;
    const size = Buffer.alloc(4);
    size.writeUInt32BE(11 + t.payload.length);
    parts.push(h, t.payload, size);
  }
  return Buffer.concat(parts);
}

/** HEVC tags back to an Annex B elementary stream, which ffmpeg 5.1 reads (its FLV demuxer predates E-RTMP). */
function hevcAnnexB(tags: FlvTag[]): Buffer {
  const sc = Buffer.from([0, 0, 0, 1]);
  const out: Buffer[] = [];
  for (const t of videoTags(tags)) {
    const p = t.payload;
    const packetType = p[0]! & 0x0f;
    if (packetType === 0) {
      const rec = p.subarray(5);
      let at = 23;
      for (let a = 0; a < rec[22]!; a++) {
        const n = rec.readUInt16BE(at + 1);
        at += 3;
        for (let k = 0; k < n; k++) {
          const len = rec.readUInt16BE(at);
          out.push(sc, rec.subarray(at + 2, at + 2 + len));
          at += 2 + len;
        }
      }
    } else {
      let at = packetType === 1 ? 8 : 5;
      while (at < p.length) {
        const len = p.readUInt32BE(at);
        out.push(sc, p.subarray(at + 4, at + 4 + len));
        at += 4 + len;
      }
    }
  }
  return Buffer.concat(out);
}

interface ProbePacket {
  pts: number;
  dts: number;
  key: boolean;
}

async function probePackets(file: string, stream: 'v' | 'a'): Promise<ProbePacket[]> {
  const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-select_streams', `${stream}:0`, '-show_entries', 'packet=pts,dts,flags', '-of', 'json', file], { maxBuffer: 64 << 20 });
  const packets = (JSON.parse(stdout) as { packets: Array<{ pts: string; dts: string; flags: string }> }).packets;
  return packets.map((p) => ({ pts: Number(p.pts), dts: Number(p.dts), key: p.flags.startsWith('K') }));
}

/** ffmpeg decoding a file to nowhere: exit code and everything it said at level error. */
async function decodeErrors(file: string, extra: string[] = []): Promise<string> {
  try {
    const { stderr } = await execFileAsync('ffmpeg', ['-nostdin', '-v', 'error', ...extra, '-i', file, '-f', 'null', '-']);
    return stderr;
  } catch (err) {
    return `ffmpeg failed: ${String(err)}`;
  }
}

/** Rewrites every PTS/DTS on the given PIDs to (value + offset) mod 2^33. */
function shiftTimestamps(ts: Buffer, pids: number[], offset: number): Buffer {
  const out = Buffer.from(ts);
  const put = (at: number, v: number): void => {
    const hi = Math.floor(v / 2 ** 30) & 7;
    const mid = Math.floor(v / 2 ** 15) % 2 ** 15;
    const lo = v % 2 ** 15;
    out[at] = (out[at]! & 0xf0) | (hi << 1) | 1;
    out[at + 1] = mid >> 7;
    out[at + 2] = ((mid & 0x7f) << 1) | 1;
    out[at + 3] = lo >> 7;
    out[at + 4] = ((lo & 0x7f) << 1) | 1;
  };
  const get = (at: number): number =>
    ((out[at]! >> 1) & 7) * 2 ** 30 + ((out[at + 1]! << 7) | (out[at + 2]! >> 1)) * 2 ** 15 + ((out[at + 3]! << 7) | (out[at + 4]! >> 1));
  for (let i = 0; i + PKT <= out.length; i += PKT) {
    const pid = ((out[i + 1]! & 0x1f) << 8) | out[i + 2]!;
    if ((out[i + 1]! & 0x40) === 0 || !pids.includes(pid)) continue;
    const afc = (out[i + 3]! >> 4) & 3;
    const p = i + 4 + (afc & 2 ? 1 + out[i + 4]! : 0);
    if (out[p] !== 0 || out[p + 1] !== 0 || out[p + 2] !== 1) continue;
    const flags = out[p + 7]! >> 6;
    if (flags >= 2) put(p + 9, (get(p + 9) + offset) % 2 ** 33);
    if (flags === 3) put(p + 14, (get(p + 14) + offset) % 2 ** 33);
  }
  return out;
}

const pidOf = (ts: Buffer, i: number): number => ((ts[i + 1]! & 0x1f) << 8) | ts[i + 2]!;
const pusiOf = (ts: Buffer, i: number): boolean => (ts[i + 1]! & 0x40) !== 0;

// ---------------------------------------------------------------------------------------
// Streams made by the real ffmpeg
// ---------------------------------------------------------------------------------------

let dir = '';
let h264Ts: Buffer;
let shortTs: Buffer;
let hevcTs: Buffer;
let h264Probe: ProbePacket[];
let hevcProbe: ProbePacket[];
let h264AudioPackets: number;

const SOURCES = ['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];

async function makeTs(name: string, seconds: number, video: string[]): Promise<string> {
  const file = join(dir, name);
  await execFileAsync('ffmpeg', ['-nostdin', '-v', 'error', ...SOURCES, '-t', String(seconds), ...video, '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-f', 'mpegts', '-y', file]);
  return file;
}

const X264 = ['-c:v', 'libx264', '-g', '25', '-bf', '2'];
const X265 = ['-c:v', 'libx265', '-x265-params', 'log-level=error:keyint=25:min-keyint=25:bframes=2:scenecut=0'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flowrelay-tsdemux-'));
  const [h264, short, hevc] = await Promise.all([makeTs('h264.ts', 4, X264), makeTs('short.ts', 1, X264), makeTs('hevc.ts', 4, X265)]);
  [h264Ts, shortTs, hevcTs] = await Promise.all([readFile(h264), readFile(short), readFile(hevc)]);
  [h264Probe, hevcProbe, h264AudioPackets] = await Promise.all([
    probePackets(h264, 'v'),
    probePackets(hevc, 'v'),
    probePackets(h264, 'a').then((p) => p.length),
  ]);
});

afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------

describe('TsDemuxer: H.264 + AAC from ffmpeg', () => {
  it('emits an AVC sequence header first, then 100 frames with the encoder keyframes', () => {
    const { tags, counters } = demux(h264Ts);
    const video = videoTags(tags);
    const first = parseVideoTag(video[0]!.payload);
    expect(first).toMatchObject({ codec: 'avc', isSequenceHeader: true });
    expect(avcResolution(video[0]!.payload)).toMatchObject({ width: 640, height: 360 });
    // One sequence header: x264 repeats identical SPS/PPS at every IDR.
    expect(video.filter((t) => parseVideoTag(t.payload).isSequenceHeader)).toHaveLength(1);

    const frames = videoFramesOf(tags);
    expect(frames).toHaveLength(100);
    expect(counters).toMatchObject({ videoFrames: 100, resyncs: 0, continuityErrors: 0, pesDropped: 0 });
    const keys = frames.map((t) => parseVideoTag(t.payload).isKeyframe);
    expect(keys).toEqual(h264Probe.map((p) => p.key));
    keys.forEach((k, i) => {
      if (i % 25 === 0) expect(k, `frame ${i}`).toBe(true);
    });
  });

  it('times video by DTS from ~0 in 40 ms steps, with the composition offsets of the encoder', () => {
    const frames = videoFramesOf(demux(h264Ts).tags);
    expect(frames[0]!.timestamp).toBeLessThan(100);
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.timestamp - frames[i - 1]!.timestamp).toBe(40);
    const offsets = frames.map(cts);
    expect(offsets).toEqual(h264Probe.map((p) => Math.round((p.pts - p.dts) / 90)));
    expect(Math.min(...offsets)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...offsets)).toBeGreaterThan(0); // B-frames
    expect(Math.max(...offsets)).toBeLessThanOrEqual(200);
  });

  it('emits an AAC sequence header, then every ADTS frame about 21.3 ms apart', () => {
    const { tags, counters } = demux(h264Ts);
    const audio = audioTags(tags);
    expect(parseAudioTag(audio[0]!.payload)).toMatchObject({ codec: 'aac', isSequenceHeader: true });
    // AAC-LC (2), 48 kHz (index 3), mono (1): ISO/IEC 14496-3 1.6.2.1.
    expect(audio[0]!.payload).toEqual(Buffer.from([0xaf, 0x00, 0x11, 0x88]));
    expect(audio.filter((t) => parseAudioTag(t.payload).isSequenceHeader)).toHaveLength(1);
    const frames = audioFramesOf(tags);
    expect(frames).toHaveLength(h264AudioPackets);
    expect(counters.audioFrames).toBe(frames.length);
    expect(Math.abs(frames.length - (4 * 48000) / 1024)).toBeLessThan(4);
    expect(frames[0]!.timestamp).toBeLessThan(200);
    for (let i = 1; i < frames.length; i++) expect([21, 22]).toContain(frames[i]!.timestamp - frames[i - 1]!.timestamp);
    for (const t of frames) expect(t.payload[0]).toBe(0xaf);
  });

  it('gives the same tags however the bytes are sliced', () => {
    const whole = fingerprint(demux(h264Ts));
    expect(fingerprint(demux(h264Ts, () => 1316))).toEqual(whole);
    expect(fingerprint(demux(h264Ts, () => 188))).toEqual(whole);
    const r = rng(7);
    expect(fingerprint(demux(h264Ts, () => 1 + Math.floor(r() * 5000)))).toEqual(whole);
    const r2 = rng(8);
    expect(fingerprint(demux(h264Ts, () => 1 + Math.floor(r2() * 400)))).toEqual(whole);
  });

  it('gives the same tags fed byte by byte', () => {
    const whole = demux(shortTs);
    expect(videoFramesOf(whole.tags)).toHaveLength(25);
    expect(fingerprint(demux(shortTs, () => 1))).toEqual(fingerprint(whole));
  });

  it('round-trips through an FLV file that ffprobe counts and ffmpeg decodes cleanly', async () => {
    const file = join(dir, 'h264.flv');
    await writeFile(file, flvFile(demux(h264Ts).tags));
    const streams = await probeStreams(file);
    expect(streams.find((s) => s.codec_type === 'video')).toMatchObject({ codec_name: 'h264', width: 640, height: 360 });
    expect(streams.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac' });
    expect(videoFrames(streams)).toBe(100);
    expect(audioFrames(streams)).toBe(h264AudioPackets);
    expect(await decodeErrors(file)).toBe('');
  });

  it('keeps counting up across the 33-bit PTS wrap', () => {
    // Put the wrap about two seconds in: the tags must not change at all.
    const first = h264Probe[0]!.dts;
    const shifted = shiftTimestamps(h264Ts, [0x100, 0x101], 2 ** 33 - first - 2 * 90000);
    expect(shifted.equals(h264Ts)).toBe(false);
    expect(fingerprint(demux(shifted))).toEqual(fingerprint(demux(h264Ts)));
  });
});

describe('TsDemuxer: streams it does not take', () => {
  it('reports MP2 audio and a second AAC track as unused, and still takes the video and the first AAC track', async () => {
    const file = join(dir, 'extra-audio.ts');
    await execFileAsync('ffmpeg', ['-nostdin', '-v', 'error', ...SOURCES, '-t', '1', ...X264, '-pix_fmt', 'yuv420p', '-map', '0:v', '-map', '1:a', '-map', '1:a', '-map', '1:a', '-c:a:0', 'aac', '-c:a:1', 'mp2', '-c:a:2', 'aac', '-f', 'mpegts', '-y', file]);
    const reports: { pid: number; streamType: number }[][] = [];
    const { tags } = demux(await readFile(file), undefined, { onUnusedStreams: (streams) => reports.push([...streams]) });
    expect(reports.length).toBeGreaterThanOrEqual(1);
    expect(reports[0]!.map((s) => s.streamType)).toEqual([0x03, 0x0f]);
    expect(videoFramesOf(tags)).toHaveLength(25);
    expect(tags.filter((t) => t.kind === 'audio').length).toBeGreaterThan(40);
  });
});

describe('TsDemuxer: the source clock jumping', () => {
  // The same 4 s of ffmpeg's output twice, the first time an hour later on the clock:
  // the second part jumps back an hour (an encoder behind a gateway restarted).
  const hourLater = () => shiftTimestamps(h264Ts, [0x100, 0x101], 3600 * 90_000);

  it('continues just after the last time when the clock jumps back, instead of holding every later frame at one time', () => {
    const { tags, counters } = demux(Buffer.concat([hourLater(), h264Ts]));
    // Counted once (for the operator), though every track crosses it.
    expect(counters.timestampJumps).toBe(1);
    expect(demux(h264Ts).counters.timestampJumps).toBe(0);
    // Each track continues where it was, give or take the tracks' muxing distance at the
    // jump (the hub holds a track that steps back that little at its last time).
    for (const track of [videoTags(tags).filter((t) => !parseVideoTag(t.payload).isSequenceHeader), tags.filter((t) => t.kind === 'audio')]) {
      const ts = track.map((t) => t.timestamp);
      for (let i = 1; i < ts.length; i++) expect(ts[i], `${track[0]!.kind} tag ${i}`).toBeGreaterThanOrEqual(ts[i - 1]! - 150);
    }
    const frames = videoFramesOf(tags).map((t) => t.timestamp);
    expect(frames.length).toBeGreaterThanOrEqual(199);
    // Two 4 s parts back to back: about 8 s, not an hour and not 4 s.
    expect(frames.at(-1)! - frames[0]!).toBeGreaterThan(7_800);
    expect(frames.at(-1)! - frames[0]!).toBeLessThan(8_100);
    expect(new Set(frames).size).toBeGreaterThanOrEqual(frames.length - 2);
  });

  it('closes a jump forward too, instead of leaving a gap as long as the jump', () => {
    const { tags, counters } = demux(Buffer.concat([h264Ts, hourLater()]));
    expect(counters.timestampJumps).toBe(1);
    const frames = videoFramesOf(tags).map((t) => t.timestamp);
    expect(frames.at(-1)! - frames[0]!).toBeLessThan(8_100);
  });
});

describe('TsDemuxer: HEVC + AAC from ffmpeg', () => {
  it('emits an enhanced-RTMP hvc1 sequence header, then 100 frames with the encoder keyframes', () => {
    const { tags, counters } = demux(hevcTs, () => 1316);
    const video = videoTags(tags);
    expect(parseVideoTag(video[0]!.payload)).toMatchObject({ enhanced: true, codec: 'hevc', fourcc: 'hvc1', isSequenceHeader: true });
    const frames = videoFramesOf(tags);
    expect(frames).toHaveLength(100);
    expect(counters).toMatchObject({ videoFrames: 100, continuityErrors: 0, pesDropped: 0 });
    const infos = frames.map((t) => parseVideoTag(t.payload));
    for (const info of infos) expect(info).toMatchObject({ enhanced: true, codec: 'hevc', isSequenceHeader: false });
    expect(infos.map((i) => i.isKeyframe)).toEqual(hevcProbe.map((p) => p.key));
    expect(infos[0]!.isKeyframe).toBe(true);
    // CodedFramesX exactly where the composition offset is 0.
    expect(frames.map(cts)).toEqual(hevcProbe.map((p) => Math.round((p.pts - p.dts) / 90)));
    expect(infos.map((i) => i.packetType)).toEqual(frames.map((t) => (cts(t) === 0 ? 3 : 1)));
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.timestamp - frames[i - 1]!.timestamp).toBe(40);
  });

  it('carries parameter sets and frames that ffmpeg decodes (as Annex B) to 100 frames of 640x360', async () => {
    const file = join(dir, 'back.hevc');
    await writeFile(file, hevcAnnexB(demux(hevcTs).tags));
    const streams = await probeStreams(file);
    expect(streams[0]).toMatchObject({ codec_name: 'hevc', width: 640, height: 360 });
    expect(videoFrames(streams)).toBe(100);
    expect(await decodeErrors(file)).toBe('');
  });
});

describe('TsDemuxer on a lossy link', () => {
  /** Drops 1% of packets, inserts garbage between packets and splices some into packets. */
  function damage(ts: Buffer, seed: number): Buffer {
    const r = rng(seed);
    const garbage = (): Buffer => Buffer.from(Array.from({ length: 1 + Math.floor(r() * 300) }, () => Math.floor(r() * 256)));
    const out: Buffer[] = [];
    for (let i = 0; i + PKT <= ts.length; i += PKT) {
      const pkt = ts.subarray(i, i + PKT);
      const x = r();
      if (x < 0.01) continue;
      if (x < 0.015) out.push(garbage(), pkt);
      else if (x < 0.018) {
        const cut = 1 + Math.floor(r() * (PKT - 1));
        out.push(pkt.subarray(0, cut), garbage(), pkt.subarray(cut));
      } else out.push(pkt);
    }
    return Buffer.concat(out);
  }

  it('counts the damage, never throws, and keeps keyframes and plausible timestamps', async () => {
    const damaged = damage(h264Ts, 1234);
    const { tags, counters } = demux(damaged, () => 1316);
    expect(counters.resyncs).toBeGreaterThan(5);
    expect(counters.continuityErrors).toBeGreaterThan(5);
    expect(counters.pesDropped).toBeGreaterThan(5);
    expect(counters.packets).toBeGreaterThan(2000);

    const frames = videoFramesOf(tags);
    expect(frames.length).toBeGreaterThan(50);
    expect(frames.length).toBeLessThan(100);
    expect(counters.videoFrames).toBe(frames.length);
    expect(frames.filter((t) => parseVideoTag(t.payload).isKeyframe).length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.timestamp).toBeGreaterThan(frames[i - 1]!.timestamp);
    for (const t of tags) {
      expect(t.timestamp).toBeGreaterThanOrEqual(0);
      expect(t.timestamp).toBeLessThan(4500);
      expect(() => (t.kind === 'video' ? parseVideoTag(t.payload) : parseAudioTag(t.payload))).not.toThrow();
    }
    const audio = audioFramesOf(tags);
    expect(audio.length).toBeGreaterThan(100);
    for (let i = 1; i < audio.length; i++) expect(audio[i]!.timestamp).toBeGreaterThanOrEqual(audio[i - 1]!.timestamp);
    for (const f of frames) expect(Math.abs(cts(f))).toBeLessThanOrEqual(200);

    // Still a usable file for ffmpeg, damaged pictures aside.
    const file = join(dir, 'lossy.flv');
    await writeFile(file, flvFile(tags));
    const streams = await probeStreams(file);
    expect(streams.find((s) => s.codec_type === 'video')).toMatchObject({ codec_name: 'h264', width: 640, height: 360 });
  });

  it('is independent of slicing on damaged input too (packets are accepted on look-ahead)', () => {
    const damaged = damage(h264Ts, 99);
    const r = rng(5);
    expect(fingerprint(demux(damaged, () => 1 + Math.floor(r() * 3000)))).toEqual(fingerprint(demux(damaged)));
  });

  it('drops exactly the access unit a lost packet belongs to', () => {
    // The 300th video packet that continues a PES (not one that starts it).
    let seen = 0;
    let victim = -1;
    for (let i = 0; i < h264Ts.length; i += PKT) {
      if (pidOf(h264Ts, i) === 0x100 && !pusiOf(h264Ts, i) && ++seen === 300) {
        victim = i;
        break;
      }
    }
    const holed = Buffer.concat([h264Ts.subarray(0, victim), h264Ts.subarray(victim + PKT)]);
    const { counters } = demux(holed);
    expect(counters).toMatchObject({ continuityErrors: 1, pesDropped: 1, videoFrames: 99, resyncs: 0 });
  });

  it('skips garbage with one resync per run; a packet right before garbage is given up', () => {
    // Garbage after a packet looks exactly like garbage spliced into it, so that packet
    // cannot be trusted: it is discarded and its PID's continuity check reports the hole.
    const r = rng(3);
    const parts: Buffer[] = [Buffer.alloc(77, 0x55)]; // joined mid-stream: no packet lost
    let runs = 1;
    for (let i = 0; i < h264Ts.length; i += PKT) {
      if (i > 0 && i % (PKT * 400) === 0) {
        parts.push(Buffer.alloc(50 + Math.floor(r() * 400), 0xaa));
        runs += 1;
      }
      parts.push(h264Ts.subarray(i, i + PKT));
    }
    const out = demux(Buffer.concat(parts), () => 1316);
    expect(out.counters.resyncs).toBe(runs);
    expect(out.counters.packets).toBe(h264Ts.length / PKT - (runs - 1));
    expect(out.counters.continuityErrors).toBeLessThanOrEqual(runs - 1);
    expect(out.counters.videoFrames).toBeGreaterThanOrEqual(100 - (runs - 1));
  });

  it('loses nothing to garbage before the first packet', () => {
    const clean = fingerprint(demux(h264Ts));
    const out = fingerprint(demux(Buffer.concat([Buffer.from('not a transport stream'), h264Ts]), () => 1316));
    expect(out.tags).toEqual(clean.tags);
    expect(out.counters).toEqual({ ...clean.counters, resyncs: 1 });
  });

  it('drops PES packets over maxPesBytes and counts them', () => {
    const { counters } = demux(h264Ts, () => 1316, { maxPesBytes: 4000 });
    expect(counters.pesDropped).toBeGreaterThan(0);
    expect(counters.videoFrames).toBeLessThan(100);
    expect(counters.audioFrames).toBe(h264AudioPackets); // audio PES are smaller
  });

  it('rejects nonsense limits as a programming error', () => {
    expect(() => new TsDemuxer(() => {}, { maxPesBytes: 0 })).toThrow(RangeError);
    expect(() => new TsDemuxer(() => {}, { maxPesBytes: 1.5 })).toThrow(RangeError);
    expect(() => new TsDemuxer(() => {}, { maxPesBytes: 64 * 1024 * 1024 })).toThrow(RangeError);
  });
});

describe('TsDemuxer fuzzing', () => {
  const run = (bytes: Uint8Array, split: number): void => {
    const d = new TsDemuxer(() => {});
    const b = Buffer.from(bytes);
    for (let i = 0; i < b.length; i += split) d.feed(b.subarray(i, i + split));
    d.flush();
  };

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4000 }), fc.integer({ min: 1, max: 2000 }), (bytes, split) => run(bytes, split)),
      { seed: 20240601, numRuns: 300 },
    );
  });

  it('never throws on packets with sync bytes and the stream PIDs but random contents', () => {
    const head = h264Ts.subarray(0, 2 * PKT); // PAT and PMT, so the PES paths are reached
    const packet = fc
      .tuple(fc.constantFrom(0x0000, 0x1000, 0x0100, 0x0101), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ minLength: 184, maxLength: 184 }))
      .map(([pid, flags, b3, body]) => Buffer.concat([Buffer.from([0x47, (flags & 0xe0) | (pid >> 8), pid & 0xff, b3]), Buffer.from(body)]));
    fc.assert(
      fc.property(fc.array(packet, { maxLength: 60 }), fc.integer({ min: 1, max: 1316 }), (packets, split) => run(Buffer.concat([head, ...packets]), split)),
      { seed: 42, numRuns: 300 },
    );
  });

  it('never throws on a real stream with random bytes overwritten', () => {
    const base = h264Ts.subarray(0, 300 * PKT);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 200 }), (edits) => {
        const b = Buffer.from(base);
        for (const [at, v] of edits) b[at] = v;
        run(b, 1316);
      }),
      { seed: 7, numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------------------------------
// Hand-built streams, for what ffmpeg does not produce
// ---------------------------------------------------------------------------------------

/** A long-form PSI section with its CRC_32 (13818-1 2.4.4). */
function psiSection(tableId: number, idExtension: number, body: Buffer): Buffer {
  const length = 5 + body.length + 4;
  const s = Buffer.concat([Buffer.from([tableId, 0xb0 | (length >> 8), length & 0xff, idExtension >> 8, idExtension & 0xff, 0xc1, 0, 0]), body, Buffer.alloc(4)]);
  s.writeUInt32BE(crc32Mpeg2(s.subarray(0, s.length - 4)), s.length - 4);
  return s;
}

function timestampField(prefix: number, v: number): Buffer {
  const mid = Math.floor(v / 2 ** 15) % 2 ** 15;
  const lo = v % 2 ** 15;
  return Buffer.from([(prefix << 4) | ((Math.floor(v / 2 ** 30) & 7) << 1) | 1, mid >> 7, ((mid & 0x7f) << 1) | 1, lo >> 7, ((lo & 0x7f) << 1) | 1]);
}

function pes(streamId: number, es: Buffer, pts?: number, dts?: number): Buffer {
  const fields: Buffer[] = [];
  if (pts !== undefined) fields.push(timestampField(dts === undefined ? 2 : 3, pts));
  if (pts !== undefined && dts !== undefined) fields.push(timestampField(1, dts));
  const optional = Buffer.concat(fields);
  const length = 3 + optional.length + es.length;
  const flags = pts === undefined ? 0 : dts === undefined ? 0x80 : 0xc0;
  return Buffer.concat([Buffer.from([0, 0, 1, streamId, length >> 8, length & 0xff, 0x80, flags, optional.length]), optional, es]);
}

/** Writes transport packets, keeping a continuity counter per PID. */
class TsWriter {
  private readonly cc = new Map<number, number>();
  readonly packets: Buffer[] = [];

  /**
   * `data` as packets, the first with PUSI; short ones padded with adaptation field
   * stuffing. `jump` skips counter values; `discontinuity` flags that in the first packet.
   */
  write(pid: number, data: Buffer, o: { jump?: number; discontinuity?: boolean } = {}): void {
    let at = 0;
    do {
      const first = at === 0;
      const flagged = first && o.discontinuity === true;
      const room = flagged ? 182 : 184;
      const chunk = data.subarray(at, at + room);
      at += chunk.length;
      const cc = ((this.cc.get(pid) ?? -1) + 1 + (first ? (o.jump ?? 0) : 0)) & 0x0f;
      this.cc.set(pid, cc);
      const afBytes = 184 - chunk.length; // adaptation_field_length byte included
      const head = Buffer.from([0x47, (first ? 0x40 : 0) | (pid >> 8), pid & 0xff, (afBytes > 0 ? 0x30 : 0x10) | cc]);
      let af = Buffer.alloc(0);
      if (afBytes === 1) af = Buffer.from([0]);
      else if (afBytes > 1) af = Buffer.concat([Buffer.from([afBytes - 1, flagged ? 0x80 : 0]), Buffer.alloc(afBytes - 2, 0xff)]);
      this.packets.push(Buffer.concat([head, af, chunk]));
    } while (at < data.length);
  }

  /** PAT (program 1 at PID 0x1000) and a PMT with H.264 on 0x100 and AAC on 0x101. */
  tables(): void {
    this.write(0, Buffer.concat([Buffer.from([0]), psiSection(0x00, 1, Buffer.from([0, 1, 0xf0, 0x00]))]));
    const streams = Buffer.from([0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0, 0x00]);
    this.write(0x1000, Buffer.concat([Buffer.from([0]), psiSection(0x02, 1, streams)]));
  }

  bytes(): Buffer {
    return Buffer.concat(this.packets);
  }
}

/** The first keyframe of the ffmpeg stream as an Annex B access unit, and its FLV tags. */
function firstKeyframe(): { annexB: Buffer; header: Buffer; frame: Buffer } {
  const video = videoTags(demux(h264Ts).tags);
  const header = video[0]!.payload;
  const frame = video[1]!.payload;
  const rec = header.subarray(5);
  const spsLen = rec.readUInt16BE(6);
  const sps = rec.subarray(8, 8 + spsLen);
  const ppsLen = rec.readUInt16BE(9 + spsLen);
  const pps = rec.subarray(11 + spsLen, 11 + spsLen + ppsLen);
  const parts = [Buffer.from([0, 0, 0, 1, 0x09, 0xf0]), Buffer.from([0, 0, 0, 1]), sps, Buffer.from([0, 0, 1]), pps];
  for (let at = 5; at < frame.length; ) {
    const len = frame.readUInt32BE(at);
    parts.push(Buffer.from([0, 0, 1]), frame.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return { annexB: Buffer.concat(parts), header, frame };
}

describe('TsDemuxer on hand-built streams', () => {
  it('joins a video access unit split over PES packets whose later parts carry no PTS', () => {
    const { annexB, header, frame } = firstKeyframe();
    const w = new TsWriter();
    w.tables();
    const cut = Math.floor(annexB.length / 3);
    w.write(0x100, pes(0xe0, annexB.subarray(0, cut), 900_000 + 7200, 900_000));
    w.write(0x100, pes(0xe0, annexB.subarray(cut, 2 * cut)));
    w.write(0x100, pes(0xe0, annexB.subarray(2 * cut)));
    const { tags, counters } = demux(w.bytes(), () => 100);
    expect(tags).toEqual([
      { kind: 'video', timestamp: 0, payload: header },
      { kind: 'video', timestamp: 0, payload: frame }, // its CTS is 80 ms, as in the ffmpeg stream
    ]);
    expect(counters).toMatchObject({ videoFrames: 1, pesDropped: 0, continuityErrors: 0 });
  });

  it('ignores a duplicated packet and accepts a counter jump flagged as a discontinuity', () => {
    const { annexB, frame } = firstKeyframe();
    const build = (discontinuity: boolean): Buffer => {
      const w = new TsWriter();
      w.tables();
      w.write(0x100, pes(0xe0, annexB, 7200, 0));
      const dup = w.packets.length - 2; // a packet in the middle of the access unit
      w.packets.splice(dup, 0, w.packets[dup]!);
      w.write(0x100, pes(0xe0, annexB, 7200 + 3600, 3600), { jump: 5, discontinuity });
      w.write(0x100, pes(0xe0, annexB, 7200 + 7200, 7200));
      return w.bytes();
    };
    const flagged = demux(build(true));
    expect(flagged.counters).toMatchObject({ continuityErrors: 0, pesDropped: 0, videoFrames: 3 });
    expect(videoFramesOf(flagged.tags).map((t) => t.payload)).toEqual([frame, frame, frame]);
    expect(videoFramesOf(flagged.tags).map((t) => t.timestamp)).toEqual([0, 40, 80]);
    // Unflagged, the same jump is a hole: the access unit before it may have lost its tail.
    const unflagged = demux(build(false));
    expect(unflagged.counters).toMatchObject({ continuityErrors: 1, pesDropped: 1, videoFrames: 2 });
    // The first timestamp that reaches the output is the base.
    expect(videoFramesOf(unflagged.tags).map((t) => t.timestamp)).toEqual([0, 40]);
  });

  it('emits ADTS frames with CRC that straddle PES packets, timed from each PTS', () => {
    const raw = (n: number): Buffer => Buffer.alloc(150 + n, n);
    const adts = (r: Buffer): Buffer => {
      const len = 9 + r.length;
      // AAC-LC, 48 kHz, mono, protection_absent 0 (two CRC bytes follow the header).
      return Buffer.concat([Buffer.from([0xff, 0xf0, 0x4c, 0x40 | (len >> 11), (len >> 3) & 0xff, ((len & 7) << 5) | 0x1f, 0xfc, 0x12, 0x34]), r]);
    };
    const frames = [0, 1, 2, 3, 4].map(raw);
    const es = Buffer.concat(frames.map(adts));
    const w = new TsWriter();
    w.tables();
    // Frame 2 starts in the first PES and ends in the second: the second PES's PTS is frame 3's.
    const cut = 9 + 150 + 9 + 151 + 50;
    w.write(0x101, pes(0xc0, es.subarray(0, cut), 90_000));
    w.write(0x101, pes(0xc0, es.subarray(cut), 90_000 + 3 * 1920));
    const { tags, counters } = demux(w.bytes(), () => 7);
    expect(tags.map((t) => t.timestamp)).toEqual([0, 0, 21, 43, 64, 85]);
    expect(tags[0]!.payload).toEqual(Buffer.from([0xaf, 0x00, 0x11, 0x88]));
    expect(tags.slice(1).map((t) => t.payload)).toEqual(frames.map((f) => Buffer.concat([Buffer.from([0xaf, 0x01]), f])));
    expect(counters.audioFrames).toBe(5);
  });
});

describe('AdtsReader', () => {
  /** ADTS frames (13818-7 6.2) around `raw` blocks: AAC-LC, 44.1 kHz, stereo; with or without CRC. */
  function adts(raw: Buffer, crc: boolean): Buffer {
    const headerLength = crc ? 9 : 7;
    const len = headerLength + raw.length;
    const h = Buffer.alloc(headerLength);
    h[0] = 0xff;
    h[1] = 0xf0 | (crc ? 0 : 1);
    h[2] = (1 << 6) | (4 << 2); // profile 1 (LC), index 4 (44100)
    h[3] = (2 << 6) | (len >> 11);
    h[4] = (len >> 3) & 0xff;
    h[5] = ((len & 7) << 5) | 0x1f;
    h[6] = 0xfc;
    return Buffer.concat([h, raw]);
  }

  it('times frames 1024 samples apart and uses each PTS for the first frame that starts in its PES', () => {
    const raws = Array.from({ length: 12 }, (_, i) => Buffer.alloc(100 + i * 7, i + 1));
    const stream = Buffer.concat(raws.map((r, i) => adts(r, i % 2 === 1)));
    const starts: number[] = [];
    let at = 0;
    for (const r of raws) {
      starts.push(at);
      at += r.length + (starts.length % 2 === 0 ? 9 : 7);
    }
    const step = (1024 * 90000) / 44100;
    // Cut the stream into PES payloads at arbitrary points, some inside frames.
    const cuts = [0, 50, 300, 301, 900, 1500, stream.length];
    const frames: AdtsFrame[] = [];
    const reader = new AdtsReader((f) => frames.push({ ...f, raw: Buffer.from(f.raw) }));
    for (let k = 0; k + 1 < cuts.length; k++) {
      const first = starts.findIndex((s) => s >= cuts[k]!);
      const pts = first >= 0 && starts[first]! < cuts[k + 1]! ? 1000 + first * step : undefined;
      reader.push(stream.subarray(cuts[k], cuts[k + 1]), pts);
    }
    expect(frames.map((f) => f.raw)).toEqual(raws);
    frames.forEach((f, i) => expect(f.ticks).toBeCloseTo(1000 + i * step, 6));
    expect(frames[0]!.config).toBe((2 << 11) | (4 << 7) | (2 << 3));
  });
});
