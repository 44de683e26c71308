import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { ContainerInput } from '../../src/protocol/container.js';
import { parseVideoTag } from '../../src/protocol/flv/tag.js';
import { Fmp4Muxer, TRACK_WAIT_MS, type Fmp4MuxerOptions } from '../../src/protocol/mp4/fmp4-muxer.js';
import { hevcResolution } from '../../src/protocol/mp4/video-config.js';
import { BoxWriter } from '../../src/protocol/mp4/boxes.js';
import { fmp4RecoverableLength } from '../../src/protocol/mp4/recover.js';
import { parseFlv, toContainerInput } from '../helpers/flv-file.js';
import { decodeSync, ffmpegSync, makeTestFlv, runTool } from '../helpers/media-sync.js';

// ---------------------------------------------------------------------------------------
// ffmpeg / ffprobe plumbing
// ---------------------------------------------------------------------------------------

const hasLibx265 = runTool('ffmpeg', ['-hide_banner', '-encoders']).stdout.includes('libx265');

interface Probe {
  streams: { codec_type: string; codec_name: string; width?: number; height?: number; nb_read_frames?: string; time_base: string }[];
  format: { duration?: string; format_name: string };
}

function probe(file: string): Probe {
  const r = runTool('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-count_frames', '-of', 'json', file]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Probe;
}

interface Packet {
  codec_type: string;
  pts: number;
  dts: number;
  duration?: number;
  pos: string;
  size: string;
  flags: string;
}

function packets(file: string): Packet[] {
  const r = runTool('ffprobe', ['-v', 'error', '-show_packets', '-of', 'json', file]);
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { packets: Packet[] }).packets;
}

const framesOf = (p: Probe, type: string): number => Number(p.streams.find((s) => s.codec_type === type)?.nb_read_frames);

/** Video DTS strictly rising, and no frame shown before it is decoded. */
function expectVideoTiming(file: string): void {
  const video = packets(file).filter((p) => p.codec_type === 'video');
  expect(video.length).toBeGreaterThan(0);
  for (let i = 0; i < video.length; i++) {
    const p = video[i]!;
    expect(p.pts).toBeGreaterThanOrEqual(p.dts);
    if (i > 0) expect(p.dts).toBeGreaterThan(video[i - 1]!.dts);
  }
}

// ---------------------------------------------------------------------------------------
// Input and output helpers
// ---------------------------------------------------------------------------------------

/** A coded frame: not a header, not metadata, not an AVC end-of-sequence marker. */
function isFrame(m: ContainerInput): boolean {
  if (m.kind === 'data' || m.isSequenceHeader) return false;
  if (m.kind === 'audio') return true;
  const info = parseVideoTag(m.payload);
  return info.packetType === 1 || info.packetType === 3;
}
const countFrames = (ms: readonly ContainerInput[], kind: 'audio' | 'video'): number => ms.filter((m) => m.kind === kind && isFrame(m)).length;

interface Muxed {
  file: Buffer;
  /** Each output buffer with the timestamp of the message that produced it (-1: flush). */
  chunks: { start: number; end: number; ts: number }[];
  muxer: Fmp4Muxer;
}

function mux(inputs: readonly ContainerInput[], options: Fmp4MuxerOptions = {}, flush = true): Muxed {
  const muxer = new Fmp4Muxer(options);
  const parts: Buffer[] = [];
  const chunks: Muxed['chunks'] = [];
  let at = 0;
  const take = (bufs: Buffer[], ts: number): void => {
    for (const b of bufs) {
      parts.push(b);
      chunks.push({ start: at, end: at + b.length, ts });
      at += b.length;
    }
  };
  for (const m of inputs) take(muxer.push(m), m.timestamp);
  if (flush) take(muxer.flush(), -1);
  return { file: Buffer.concat(parts), chunks, muxer };
}

interface Box {
  type: string;
  start: number;
  size: number;
}

/** Boxes in [start, end); stops at one that runs past the end. */
function boxes(b: Buffer, start = 0, end = b.length): Box[] {
  const out: Box[] = [];
  for (let at = start; at + 8 <= end; ) {
    const size = b.readUInt32BE(at);
    if (size < 8 || at + size > end) break;
    out.push({ type: b.toString('latin1', at + 4, at + 8), start: at, size });
    at += size;
  }
  return out;
}

function child(b: Buffer, parent: Box, type: string, headerExtra = 0): Box {
  const found = boxes(b, parent.start + 8 + headerExtra, parent.start + parent.size).find((x) => x.type === type);
  if (found === undefined) throw new Error(`no ${type} in ${parent.type}`);
  return found;
}

let dir = '';
/** H.264 (B-frames) + AAC 44.1 kHz, 4 s, from ffmpeg's FLV muxer. */
let inputs: ContainerInput[] = [];
let flvDuration = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowrelay-fmp4-'));
  const flv = join(dir, 'in.flv');
  makeTestFlv(flv);
  inputs = parseFlv(readFileSync(flv)).tags.map(toContainerInput);
  flvDuration = Number(probe(flv).format.duration);
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function write(name: string, bytes: Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

// ---------------------------------------------------------------------------------------

describe('Fmp4Muxer with ffmpeg-made H.264 + AAC', () => {
  it('writes a file ffprobe reads with every frame, the codecs, size, duration and timing intact', () => {
    expect(countFrames(inputs, 'video')).toBe(100);
    const { file: bytes, muxer } = mux(inputs);
    expect(muxer.counters.skipped).toBe(0);
    const file = write('av.mp4', bytes);
    const p = probe(file);
    expect(p.format.format_name).toContain('mp4');
    expect(p.streams.map((s) => [s.codec_type, s.codec_name])).toEqual([['video', 'h264'], ['audio', 'aac']]);
    expect(p.streams[0]).toMatchObject({ width: 320, height: 240, time_base: '1/90000' });
    expect(p.streams[1]).toMatchObject({ time_base: '1/44100' });
    expect(framesOf(p, 'video')).toBe(countFrames(inputs, 'video'));
    expect(framesOf(p, 'audio')).toBe(countFrames(inputs, 'audio'));
    expect(Math.abs(Number(p.format.duration) - flvDuration)).toBeLessThan(0.1);
    expectVideoTiming(file);
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
  });

  it('keeps every DTS and PTS at its rounded FLV time: durations are differences, so nothing drifts', () => {
    const file = write('timing.mp4', mux(inputs).file);
    const got = packets(file);
    const video = inputs.filter((m) => m.kind === 'video' && isFrame(m));
    const audio = inputs.filter((m) => m.kind === 'audio' && isFrame(m));
    const cts = (m: ContainerInput): number => m.payload.readIntBE(2, 3);
    // ffprobe lists packets in file order; within a track that is decode order.
    expect(got.filter((p) => p.codec_type === 'video').map((p) => [p.dts, p.pts])).toEqual(video.map((m) => [m.timestamp * 90, (m.timestamp + cts(m)) * 90]));
    expect(got.filter((p) => p.codec_type === 'audio').map((p) => p.dts)).toEqual(audio.map((m) => Math.round((m.timestamp * 44100) / 1000)));
    expect(video.some((m) => cts(m) > 0)).toBe(true); // the B-frames exercise composition offsets
  });

  it('lays out ftyp, moov, then moof + mdat pairs with rising sequence numbers and moof-relative data offsets', () => {
    const { file, chunks } = mux(inputs);
    const top = boxes(file);
    expect(top.reduce((n, b) => n + b.size, 0)).toBe(file.length);
    expect(top.slice(0, 2).map((b) => b.type)).toEqual(['ftyp', 'moov']);
    // The init segment goes out alone, before any fragment.
    expect(chunks[0]!.end).toBe(top[1]!.start + top[1]!.size);
    const frags = top.slice(2);
    expect(frags.length % 2).toBe(0);
    for (let i = 0; i < frags.length; i += 2) {
      const moof = frags[i]!;
      const mdat = frags[i + 1]!;
      expect([moof.type, mdat.type]).toEqual(['moof', 'mdat']);
      expect(file.readUInt32BE(child(file, moof, 'mfhd').start + 12)).toBe(i / 2 + 1);
      let expectedOffset = moof.size + 8;
      for (const traf of boxes(file, moof.start + 8, moof.start + moof.size).filter((b) => b.type === 'traf')) {
        const tfhd = child(file, traf, 'tfhd');
        expect(file.readUIntBE(tfhd.start + 9, 3) & 0x020000).toBe(0x020000); // default-base-is-moof
        const tfdt = child(file, traf, 'tfdt');
        expect(file[tfdt.start + 8]).toBe(1); // 64-bit baseMediaDecodeTime
        const trun = child(file, traf, 'trun');
        expect(file[trun.start + 8]).toBe(1); // signed composition offsets
        const flags = file.readUIntBE(trun.start + 9, 3);
        const count = file.readUInt32BE(trun.start + 12);
        expect(file.readInt32BE(trun.start + 16)).toBe(expectedOffset);
        const entry = flags & 0x800 ? 16 : 8;
        for (let k = 0; k < count; k++) expectedOffset += file.readUInt32BE(trun.start + 20 + k * entry + 4);
      }
      expect(expectedOffset).toBe(moof.size + mdat.size); // the samples fill the mdat exactly
    }
    const moov = top[1]!;
    const mvex = child(file, moov, 'mvex');
    expect(boxes(file, mvex.start + 8, mvex.start + mvex.size).map((b) => b.type)).toEqual(['free', 'trex', 'trex']);
  });

  it('starts a fragment at every keyframe, and within fragmentMs otherwise', () => {
    for (const fragmentMs of [1000, 300]) {
      const { file: bytes } = mux(inputs, { fragmentMs });
      const file = write(`frag-${fragmentMs}.mp4`, bytes);
      const moofs = boxes(bytes).filter((b) => b.type === 'moof').map((b) => b.start);
      const fragmentOf = (p: Packet): number => moofs.filter((s) => s < Number(p.pos)).length;
      const video = packets(file).filter((p) => p.codec_type === 'video');
      for (let i = 0; i < video.length; i++) {
        const p = video[i]!;
        const first = i === 0 || fragmentOf(video[i - 1]!) !== fragmentOf(p);
        if (p.flags.startsWith('K')) expect(first).toBe(true);
      }
      const byFragment = new Map<number, Packet[]>();
      for (const p of video) byFragment.set(fragmentOf(p), [...(byFragment.get(fragmentOf(p)) ?? []), p]);
      for (const list of byFragment.values()) {
        const spanMs = (list.at(-1)!.dts + list.at(-1)!.duration! - list[0]!.dts) / 90;
        // The open fragment is measured from the message that began it; a video frame
        // held back at that moment (one interval) can precede it.
        expect(spanMs).toBeLessThanOrEqual(fragmentMs + 40);
      }
      if (fragmentMs === 300) expect(byFragment.size).toBeGreaterThanOrEqual(12);
      expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
    }
  });

  it('gives enhanced RTMP avc1 tags exactly the same file as legacy ones', () => {
    const enhanced = inputs.map((m): ContainerInput => {
      if (m.kind !== 'video') return m;
      const p = m.payload;
      const avc1 = Buffer.from('avc1', 'latin1');
      // AVCPacketType 0/1/2 become SequenceStart/CodedFrames/SequenceEnd; CodedFrames keeps the SI24 CompositionTime.
      const head = Buffer.from([0x80 | ((p[0]! >> 4) << 4) | p[1]!]);
      return { ...m, payload: Buffer.concat([head, avc1, p[1] === 1 ? p.subarray(2) : p.subarray(5)]) };
    });
    expect(enhanced.filter((m) => m.kind === 'video').every((m) => parseVideoTag(m.payload).enhanced)).toBe(true);
    expect(mux(enhanced).file.equals(mux(inputs).file)).toBe(true);
  });

  it('records audio only', () => {
    const audioOnly = inputs.filter((m) => m.kind !== 'video').map((m) => (isFrame(m) ? { ...m, isKeyframe: true } : m));
    const { file: bytes, muxer } = mux(audioOnly);
    expect(muxer.counters.skipped).toBe(0);
    const file = write('audio-only.mp4', bytes);
    const p = probe(file);
    expect(p.streams.map((s) => s.codec_name)).toEqual(['aac']);
    expect(framesOf(p, 'audio')).toBe(countFrames(inputs, 'audio'));
    expect(Math.abs(Number(p.format.duration) - flvDuration)).toBeLessThan(0.1);
    // No keyframes to cut at: fragments come from fragmentMs alone.
    expect(muxer.counters.fragments).toBeGreaterThanOrEqual(4);
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
  });

  it('records video only', () => {
    const { file: bytes, muxer } = mux(inputs.filter((m) => m.kind !== 'audio'));
    expect(muxer.counters.skipped).toBe(0);
    const file = write('video-only.mp4', bytes);
    const p = probe(file);
    expect(p.streams.map((s) => [s.codec_name, s.width, s.height])).toEqual([['h264', 320, 240]]);
    expect(framesOf(p, 'video')).toBe(100);
    expect(Math.abs(Number(p.format.duration) - 4)).toBeLessThan(0.1);
    expectVideoTiming(file);
  });

  it('starts at the first keyframe, dropping (and counting) what comes before it', () => {
    const second = inputs.findIndex((m, i) => i > 5 && m.isKeyframe);
    // Headers, then the stream joined mid-GOP: 8 frames before the second keyframe.
    const headers = inputs.filter((m) => m.isSequenceHeader);
    const tail = inputs.slice(second - 8);
    const { file: bytes, muxer } = mux([...headers, ...tail]);
    const file = write('mid-gop.mp4', bytes);
    const dropped = tail.slice(0, 8);
    expect(muxer.counters.skipped).toBe(dropped.filter(isFrame).length);
    const p = probe(file);
    expect(framesOf(p, 'video')).toBe(countFrames(tail, 'video') - countFrames(dropped, 'video'));
    expect(framesOf(p, 'audio')).toBe(countFrames(tail, 'audio') - countFrames(dropped, 'audio'));
    expect(packets(file).find((pk) => pk.codec_type === 'video')!.flags).toMatch(/^K/);
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
  });

  it('waits for the other header after the first frame, as MPEG-TS sources send it: the frames of the wait are written once the tracks are fixed', () => {
    const audioHeader = inputs.find((m) => m.kind === 'audio' && m.isSequenceHeader)!;
    const withoutAudioHeader = inputs.filter((m) => m !== audioHeader);
    const firstFrame = withoutAudioHeader.findIndex(isFrame);
    const late = [...withoutAudioHeader.slice(0, firstFrame + 1), audioHeader, ...withoutAudioHeader.slice(firstFrame + 1)];
    const { file: bytes, muxer } = mux(late);
    expect(muxer.counters.skipped).toBe(0);
    const p = probe(write('late-audio.mp4', bytes));
    expect(p.streams.map((s) => s.codec_name)).toEqual(['h264', 'aac']);
    expect(framesOf(p, 'video')).toBe(100);
  });

  it(`fixes its tracks ${TRACK_WAIT_MS} ms after the first frame: a header later than that, and its frames, are skipped and counted`, () => {
    const audioHeader = inputs.find((m) => m.kind === 'audio' && m.isSequenceHeader)!;
    const withoutAudioHeader = inputs.filter((m) => m !== audioHeader);
    const firstFrame = withoutAudioHeader.find(isFrame)!;
    const at = withoutAudioHeader.findIndex((m) => m.timestamp > firstFrame.timestamp + TRACK_WAIT_MS + 100);
    const late = [...withoutAudioHeader.slice(0, at), audioHeader, ...withoutAudioHeader.slice(at)];
    const { file: bytes, muxer } = mux(late);
    const p = probe(write('too-late-audio.mp4', bytes));
    expect(p.streams.map((s) => s.codec_name)).toEqual(['h264']);
    expect(framesOf(p, 'video')).toBe(100);
    // The audio frames before the header had no track to go to either.
    expect(muxer.counters.skipped).toBe(1 + countFrames(inputs, 'audio'));
  });

  it('ignores a repeated identical header and skips a different one', () => {
    const videoHeader = inputs.find((m) => m.kind === 'video' && m.isSequenceHeader)!;
    const audioHeader = inputs.find((m) => m.kind === 'audio' && m.isSequenceHeader)!;
    const at = inputs.findIndex((m, i) => i > 50 && m.isKeyframe);
    const changedAsc = Buffer.from(audioHeader.payload);
    changedAsc[3] = changedAsc[3]! ^ 0x08; // another channel configuration
    const withRepeats = [...inputs.slice(0, at), videoHeader, audioHeader, { ...audioHeader, payload: changedAsc }, ...inputs.slice(at)];
    const { file, muxer } = mux(withRepeats);
    expect(muxer.counters.skipped).toBe(1);
    expect(file.equals(mux(inputs).file)).toBe(true);
  });

  it('flushes the held-back samples, can flush again, and goes on afterwards', () => {
    const muxer = new Fmp4Muxer();
    const half = inputs.findIndex((m) => m.timestamp >= 1500);
    const parts: Buffer[] = [];
    for (const m of inputs.slice(0, half)) parts.push(...muxer.push(m));
    const flushed = muxer.flush();
    expect(flushed).toHaveLength(1);
    expect(muxer.flush()).toEqual([]);
    parts.push(...flushed);
    for (const m of inputs.slice(half)) parts.push(...muxer.push(m));
    parts.push(...muxer.flush());
    const file = write('flush-mid.mp4', Buffer.concat(parts));
    const p = probe(file);
    expect(framesOf(p, 'video')).toBe(100);
    expect(framesOf(p, 'audio')).toBe(countFrames(inputs, 'audio'));
    expectVideoTiming(file);
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
  });

  it('gives a lone sample a nominal duration at flush', () => {
    const headers = inputs.filter((m) => m.isSequenceHeader && m.kind !== 'data');
    const key = inputs.find((m) => m.isKeyframe)!;
    const audioFrame = inputs.find((m) => m.kind === 'audio' && isFrame(m) && m.timestamp >= key.timestamp)!;
    const { file } = mux([...headers, key, audioFrame]);
    // ffprobe reports durations from the codec's frame rate here, so the trun is read directly.
    const moof = boxes(file).find((b) => b.type === 'moof')!;
    const durations = boxes(file, moof.start + 8, moof.start + moof.size)
      .filter((b) => b.type === 'traf')
      .map((traf) => {
        const trun = child(file, traf, 'trun');
        expect(file.readUInt32BE(trun.start + 12)).toBe(1);
        return file.readUInt32BE(trun.start + 20);
      });
    expect(durations).toEqual([3000, 1024]); // 1/30 s at 90 kHz; one AAC frame at 44.1 kHz
  });

  it('emits a fragment early when it would outgrow maxFragmentBytes', () => {
    const { file: bytes, muxer } = mux(inputs, { maxFragmentBytes: 16 * 1024 });
    const mdats = boxes(bytes).filter((b) => b.type === 'mdat');
    expect(mdats.length).toBeGreaterThan(10);
    // Only a single sample larger than the cap could make an mdat overshoot it.
    for (const m of mdats) expect(m.size - 8).toBeLessThanOrEqual(16 * 1024);
    expect(muxer.counters.fragments).toBe(mdats.length);
    const file = write('small-frags.mp4', bytes);
    expect(framesOf(probe(file), 'video')).toBe(100);
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
  });

  it('offers a mehd for a cleanly closed file, to go over the free box the init segment keeps for it', () => {
    const muxer = new Fmp4Muxer();
    expect(muxer.durationPatch(1000)).toBeUndefined();
    const { file, muxer: done } = mux(inputs);
    const patch = done.durationPatch(3990)!;
    const moov = boxes(file).find((b) => b.type === 'moov')!;
    const mvex = child(file, moov, 'mvex');
    const slot = boxes(file, mvex.start + 8, mvex.start + mvex.size)[0]!;
    expect([slot.type, slot.start, slot.size]).toEqual(['free', patch.offset, patch.bytes.length]);
    expect(patch.bytes.subarray(0, 12)).toEqual(Buffer.from('000000146d65686401000000', 'hex'));
    // The muxer's own end (last sample included) beats the caller's last-timestamp measure.
    const ms = Number(patch.bytes.readBigUInt64BE(12));
    expect(Math.abs(ms / 1000 - flvDuration)).toBeLessThan(0.1);
    expect(done.durationPatch(3_600_000)!.bytes.readBigUInt64BE(12)).toBe(3_600_000n);
    const patched = Buffer.from(file);
    patch.bytes.copy(patched, patch.offset);
    const p = probe(write('patched.mp4', patched));
    expect(Math.abs(Number(p.format.duration) - flvDuration)).toBeLessThan(0.1);
    expect(framesOf(p, 'video')).toBe(100);
  });
});

// ---------------------------------------------------------------------------------------
// Crash safety: whatever prefix of the file survives is readable up to its last fragment.
// ---------------------------------------------------------------------------------------

describe('Fmp4Muxer files cut short', () => {
  /** A tiny deterministic PRNG (mulberry32), so failures reproduce. */
  function random(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  const readFrom = (b: Buffer) => (offset: number, length: number) => Promise.resolve(b.subarray(offset, offset + length));

  function probeCut(name: string): { status: number | null; stderr: string; probe: Probe | undefined } {
    const r = runTool('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-count_frames', '-of', 'json', name]);
    return { status: r.status, stderr: r.stderr, probe: r.status === 0 ? (JSON.parse(r.stdout) as Probe) : undefined };
  }

  it('plays up to the last complete fragment when cut inside its samples, and cleanly once cut back', async () => {
    // No flush: a killed process leaves exactly what push() returned.
    const { file, chunks } = mux(inputs, {}, false);
    const all = packets(write('full.mp4', file));
    const top = boxes(file);
    const mdats = top.filter((b) => b.type === 'mdat');
    const firstFragmentEnd = mdats[0]!.start + mdats[0]!.size;
    const next = random(7);
    const inMdat = [
      mdats.at(-1)!.start + Math.floor(mdats.at(-1)!.size / 2), // the middle of the last fragment's samples
      mdats.at(-1)!.start + 8, // just after its mdat header
      ...mdats.slice(1).map((m) => m.start + 8 + Math.floor(next() * (m.size - 8))),
    ];
    for (const cut of inMdat) {
      const raw = probeCut(write(`cut-${cut}.mp4`, file.subarray(0, cut)));
      // ffprobe reports the samples past the cut on stderr ("partial file") but reads the
      // rest and exits 0.
      expect(raw.status, `cut at ${cut}: ${raw.stderr}`).toBe(0);
      const p = raw.probe!;
      expect(p.streams.map((s) => s.codec_name)).toEqual(['h264', 'aac']);
      const completeEnd = Math.max(firstFragmentEnd, ...mdats.map((m) => m.start + m.size).filter((end) => end <= cut));
      const within = (limit: number, type: string): number => all.filter((pk) => pk.codec_type === type && Number(pk.pos) + Number(pk.size) <= limit).length;
      for (const type of ['video', 'audio']) {
        // Every sample of a complete fragment decodes; nothing past the cut can.
        expect(framesOf(p, type), `${type} frames, cut at ${cut}`).toBeGreaterThanOrEqual(within(completeEnd, type));
        expect(framesOf(p, type)).toBeLessThanOrEqual(within(cut, type));
      }
      // The media time of the cut: when the message came whose output the cut falls in.
      const cutMs = chunks.find((c) => c.start <= cut && cut < c.end)!.ts;
      expect(Math.abs(Number(p.format.duration) - cutMs / 1000), `duration, cut at ${cut} (${cutMs} ms)`).toBeLessThanOrEqual(1.1);

      const length = await fmp4RecoverableLength(readFrom(file), cut);
      expect(length).toBe(completeEnd);
    }
  });

  // FFmpeg reads every moof while opening a seekable file and gives up on the whole file
  // when a trun is cut short (see recover.ts), so a file cut inside a moof is cut back.
  it('cuts a file back to its last complete fragment, which then reads cleanly up to there', async () => {
    const { file, chunks } = mux(inputs, {}, false);
    const all = packets(write('full2.mp4', file));
    const top = boxes(file);
    const moofs = top.filter((b) => b.type === 'moof');
    const next = random(11);
    const cuts = [
      moofs.at(-1)!.start + Math.floor(moofs.at(-1)!.size / 2), // inside the last moof's trun
      ...moofs.slice(1).map((m) => m.start + 1 + Math.floor(next() * (m.size - 1))),
      ...Array.from({ length: 4 }, () => moofs[1]!.start + Math.floor(next() * (file.length - moofs[1]!.start))),
    ];
    for (const cut of cuts) {
      const length = await fmp4RecoverableLength(readFrom(file), cut);
      // Whole boxes up to the end of the last complete mdat before the cut.
      const expected = Math.max(...top.filter((b) => b.type === 'mdat' && b.start + b.size <= cut).map((b) => b.start + b.size));
      expect(length, `cut at ${cut}`).toBe(expected);
      const name = write(`recovered-${cut}.mp4`, file.subarray(0, length));
      const r = probeCut(name);
      expect(r.status, `cut at ${cut}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toBe('');
      const p = r.probe!;
      for (const type of ['video', 'audio']) {
        expect(framesOf(p, type)).toBe(all.filter((pk) => pk.codec_type === type && Number(pk.pos) < length).length);
      }
      const cutMs = chunks.find((c) => c.start <= cut && cut < c.end)!.ts;
      expect(Math.abs(Number(p.format.duration) - cutMs / 1000), `duration, cut at ${cut} (${cutMs} ms)`).toBeLessThanOrEqual(1.1);
      expect(decodeSync(name)).toEqual({ status: 0, stderr: '' });
    }
  });

  it('recovers nothing from a file cut inside its init segment, and everything from a whole one', async () => {
    const { file } = mux(inputs);
    const moov = boxes(file).find((b) => b.type === 'moov')!;
    expect(await fmp4RecoverableLength(readFrom(file), moov.start + 100)).toBe(0);
    expect(await fmp4RecoverableLength(readFrom(file), moov.start + moov.size)).toBe(moov.start + moov.size);
    expect(await fmp4RecoverableLength(readFrom(file), file.length)).toBe(file.length);
    // Zeros a file system left behind after a crash are not a box.
    const zeros = Buffer.concat([file, Buffer.alloc(4096)]);
    expect(await fmp4RecoverableLength(readFrom(zeros), zeros.length)).toBe(file.length);
  });
});

// ---------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------

describe('Fmp4Muxer with malformed tags', () => {
  it('skips and counts truncated tags and garbage headers, and the file is as if they never came', () => {
    const key = inputs.findIndex((m) => m.isKeyframe);
    const frame = inputs.find((m, i) => i > key && m.kind === 'video' && isFrame(m) && m.payload.length > 40)!;
    const audioFrame = inputs.find((m, i) => i > key && m.kind === 'audio' && isFrame(m))!;
    const bad: ContainerInput[] = [
      { ...frame, payload: frame.payload.subarray(0, 3) }, // shorter than the AVC header
      { ...frame, payload: frame.payload.subarray(0, frame.payload.length - 7) }, // NAL unit cut short
      { ...frame, payload: frame.payload.subarray(0, 5) }, // header, no NAL units
      { ...frame, payload: Buffer.alloc(0) },
      { ...audioFrame, payload: Buffer.alloc(0) },
      { ...audioFrame, payload: audioFrame.payload.subarray(0, 1) }, // no AACPacketType
      { ...audioFrame, payload: audioFrame.payload.subarray(0, 2) }, // no raw data
      { ...audioFrame, payload: Buffer.from('2f0102030405', 'hex') }, // MP3: not carried
      { ...frame, payload: Buffer.from('1201020304', 'hex') }, // Sorenson H.263: not carried
    ];
    const garbageHeaders: ContainerInput[] = [
      { kind: 'video', timestamp: 0, payload: Buffer.from('1700000000ff', 'hex'), isKeyframe: false, isSequenceHeader: true },
      { kind: 'video', timestamp: 0, payload: Buffer.from('17000000000164001fffe1', 'hex'), isKeyframe: false, isSequenceHeader: true }, // record cut short
      { kind: 'audio', timestamp: 0, payload: Buffer.from('af00', 'hex'), isKeyframe: false, isSequenceHeader: true },
      { kind: 'audio', timestamp: 0, payload: Buffer.from('af00f8', 'hex'), isKeyframe: false, isSequenceHeader: true }, // object type escape, truncated
    ];
    const messy = [...garbageHeaders, ...inputs.slice(0, key + 10), ...bad, ...inputs.slice(key + 10)];
    const { file, muxer } = mux(messy);
    expect(muxer.counters.skipped).toBe(bad.length + garbageHeaders.length);
    expect(file.equals(mux(inputs).file)).toBe(true);
  });

  it('never throws out of push(), whatever the payload', () => {
    const headers = inputs.filter((m) => m.isSequenceHeader);
    const key = inputs.find((m) => m.isKeyframe)!;
    fc.assert(
      fc.property(
        fc.array(fc.record({ kind: fc.constantFrom('audio', 'video', 'data'), timestamp: fc.integer({ min: -5, max: 100_000 }), bytes: fc.uint8Array({ maxLength: 64 }), sequenceHeader: fc.boolean() }), { maxLength: 30 }),
        fc.boolean(),
        (messages, primed) => {
          const muxer = new Fmp4Muxer({ fragmentMs: 50 });
          if (primed) for (const m of [...headers, key]) muxer.push(m);
          for (const m of messages) {
            const out = muxer.push({ kind: m.kind as ContainerInput['kind'], timestamp: m.timestamp, payload: Buffer.from(m.bytes), isKeyframe: false, isSequenceHeader: m.sequenceHeader });
            for (const b of out) expect(b.length).toBeGreaterThan(0);
          }
          const rest = Buffer.concat(muxer.flush());
          expect(boxes(rest).reduce((n, b) => n + b.size, 0)).toBe(rest.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps decode times from going backwards when timestamps do', () => {
    const key = inputs.findIndex((m) => m.isKeyframe);
    const shuffled = inputs.map((m, i) => (i > key + 20 && i < key + 40 && m.kind === 'audio' ? { ...m, timestamp: m.timestamp - 500 } : m));
    const file = write('backwards.mp4', mux(shuffled).file);
    const audio = packets(file).filter((p) => p.codec_type === 'audio');
    for (let i = 1; i < audio.length; i++) expect(audio[i]!.dts).toBeGreaterThanOrEqual(audio[i - 1]!.dts);
    expect(framesOf(probe(file), 'audio')).toBe(countFrames(inputs, 'audio'));
  });
});

// ---------------------------------------------------------------------------------------
// HEVC: ffmpeg 5.1's FLV muxer cannot write HEVC, so the enhanced RTMP tags are built from
// an MP4 that ffmpeg made, with ffprobe's packet dump giving the samples and timing.
// ---------------------------------------------------------------------------------------

/** ffprobe's -show_data dump: "00000000: 0000 0e48 2801 ...  ascii" lines. */
function fromHexDump(dump: string): Buffer {
  return Buffer.from(
    dump
      .split('\n')
      .filter((l) => l.length > 10)
      .map((l) => l.slice(10, 49).replace(/\s+/g, ''))
      .join(''),
    'hex',
  );
}

function hevcInputs(mp4: string): { inputs: ContainerInput[]; record: Buffer } {
  const streams = JSON.parse(runTool('ffprobe', ['-v', 'error', '-show_streams', '-show_data', '-of', 'json', mp4]).stdout) as {
    streams: { codec_type: string; extradata: string; time_base: string }[];
  };
  const video = streams.streams.find((s) => s.codec_type === 'video')!;
  const audio = streams.streams.find((s) => s.codec_type === 'audio')!;
  const r = runTool('ffprobe', ['-v', 'error', '-show_packets', '-show_data', '-of', 'json', mp4]);
  const pkts = (JSON.parse(r.stdout) as { packets: { codec_type: string; pts_time: string; dts_time: string; flags: string; data: string }[] }).packets;
  const ms = (t: string): number => Math.round(Number(t) * 1000);
  const shift = -Math.min(...pkts.map((p) => ms(p.dts_time)));
  const hvc1 = Buffer.from('hvc1', 'latin1');
  const record = fromHexDump(video.extradata);
  const out: ContainerInput[] = [
    { kind: 'video', timestamp: 0, payload: Buffer.concat([Buffer.from([0x90]), hvc1, record]), isKeyframe: false, isSequenceHeader: true },
    { kind: 'audio', timestamp: 0, payload: Buffer.concat([Buffer.from([0xaf, 0x00]), fromHexDump(audio.extradata)]), isKeyframe: false, isSequenceHeader: true },
  ];
  const frames = pkts.map((p): ContainerInput => {
    const dts = ms(p.dts_time) + shift;
    const data = fromHexDump(p.data);
    if (p.codec_type === 'audio') return { kind: 'audio', timestamp: dts, payload: Buffer.concat([Buffer.from([0xaf, 0x01]), data]), isKeyframe: false, isSequenceHeader: false };
    const key = p.flags.startsWith('K');
    const cts = ms(p.pts_time) - ms(p.dts_time);
    const head = Buffer.concat([Buffer.from([(key ? 0x90 : 0xa0) | 1]), hvc1, Buffer.from([(cts >> 16) & 0xff, (cts >> 8) & 0xff, cts & 0xff])]);
    return { kind: 'video', timestamp: dts, payload: Buffer.concat([head, data]), isKeyframe: key, isSequenceHeader: false };
  });
  // A live source sends in decode-time order.
  frames.sort((a, b) => a.timestamp - b.timestamp);
  return { inputs: [...out, ...frames], record };
}

describe('Fmp4Muxer with HEVC (enhanced RTMP hvc1)', () => {
  it.skipIf(!hasLibx265)('writes hvc1 with B-frames that ffprobe reads frame for frame, with the cropped size', () => {
    const src = join(dir, 'hevc-src.mp4');
    ffmpegSync([
      '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '3',
      '-c:v', 'libx265', '-x265-params', 'keyint=25:min-keyint=25:bframes=3:scenecut=0:log-level=error', '-tag:v', 'hvc1', '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-b:a', '64k', src,
    ]);
    const { inputs: hevc, record } = hevcInputs(src);
    // 180 is not a multiple of the 8-pixel coding block: the SPS crops a conformance window.
    expect(hevcResolution(record)).toEqual({ width: 320, height: 180 });
    expect(hevc.some((m) => m.kind === 'video' && isFrame(m) && m.payload.readIntBE(5, 3) > 0)).toBe(true);

    const { file: bytes, muxer } = mux(hevc);
    expect(muxer.counters.skipped).toBe(0);
    const file = write('hevc.mp4', bytes);
    const p = probe(file);
    expect(p.streams.map((s) => [s.codec_name, s.width ?? null, s.height ?? null])).toEqual([['hevc', 320, 180], ['aac', null, null]]);
    expect(framesOf(p, 'video')).toBe(countFrames(hevc, 'video'));
    expect(framesOf(p, 'audio')).toBe(countFrames(hevc, 'audio'));
    expect(Math.abs(Number(p.format.duration) - 3)).toBeLessThan(0.1);
    expectVideoTiming(file);
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
  });
});

const hexOf = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

describe('BoxWriter', () => {
  it('grows past its initial capacity without losing what was written', () => {
    const w = new BoxWriter(4);
    w.box('test').u8(1).u16(0x0203).u24(0x040506).u32(0x0708090a).i32(-1).u64(2 ** 40 + 3).fourcc('abcd').zeros(2).bytes(Buffer.from([9])).end();
    const expected = ['00000025', hexOf('test'), '01', '0203', '040506', '0708090a', 'ffffffff', '0000010000000003', hexOf('abcd'), '0000', '09'];
    expect(w.finish().toString('hex')).toBe(expected.join(''));
  });
});
