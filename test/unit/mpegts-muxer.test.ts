import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseVideoTag } from '../../src/protocol/flv/tag.js';
import { packForSrt, TsMuxer, type TsMuxerInput } from '../../src/protocol/mpegts/muxer.js';
import { crc32Mpeg2 } from '../../src/protocol/mpegts/crc32.js';
import { patPacket, pmtPacket } from '../../src/protocol/mpegts/mux-psi.js';
import { msTo90kHz, pesHeader, readPesTimestamp, writePesTimestamp } from '../../src/protocol/mpegts/mux-pes.js';
import { pesPacketCount, writePcr, writePesPackets } from '../../src/protocol/mpegts/mux-packets.js';
import { parseAudioSpecificConfig, writeAdtsHeader } from '../../src/protocol/mpegts/adts.js';
import { toAnnexB } from '../../src/protocol/mpegts/annexb.js';
import { parseAvcConfig, parseHevcConfig } from '../../src/protocol/mpegts/mux-video-config.js';
import { ProtocolError } from '../../src/lib/errors.js';
import { readFlvFile, toContainerInput } from '../helpers/flv-file.js';
import { decodeSync, ffmpegSync, runTool } from '../helpers/media-sync.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// ---------------------------------------------------------------------------------------
// A deliberately small TS reader for the assertions (the real demuxer is a separate module).
// ---------------------------------------------------------------------------------------

interface TsPacket {
  pid: number;
  pusi: boolean;
  cc: number;
  hasPayload: boolean;
  afLength: number;
  rai: boolean;
  pcr?: number;
  payload: Buffer;
}

function readPackets(ts: Buffer): TsPacket[] {
  expect(ts.length % 188).toBe(0);
  const out: TsPacket[] = [];
  for (let at = 0; at < ts.length; at += 188) {
    const p = ts.subarray(at, at + 188);
    expect(p[0]).toBe(0x47);
    const pid = ((p[1]! & 0x1f) << 8) | p[2]!;
    const control = (p[3]! >> 4) & 3;
    expect(control).not.toBe(0);
    let pos = 4;
    let afLength = -1;
    let rai = false;
    let pcr: number | undefined;
    if (control & 2) {
      afLength = p[4]!;
      expect(afLength).toBeLessThanOrEqual(control === 2 ? 183 : 182);
      if (afLength > 0) {
        const flags = p[5]!;
        rai = (flags & 0x40) !== 0;
        let f = 6;
        if (flags & 0x10) {
          pcr = p.readUInt32BE(6) * 2 + (p[10]! >> 7);
          expect(p[10]! & 0x7e).toBe(0x7e);
          f = 12;
        }
        // The rest of the field is stuffing.
        for (let i = f; i < 5 + afLength; i++) expect(p[i]).toBe(0xff);
      }
      pos = 5 + afLength;
    }
    out.push({ pid, pusi: (p[1]! & 0x40) !== 0, cc: p[3]! & 0x0f, hasPayload: (control & 1) !== 0, afLength, rai, pcr, payload: p.subarray(pos) });
  }
  return out;
}

/** Checks continuity counters (2.4.3.3) and returns PES packets per PID, reassembled. */
function pesByPid(packets: TsPacket[]): Map<number, Buffer[]> {
  const lastCc = new Map<number, number>();
  const parts = new Map<number, Buffer[][]>();
  for (const p of packets) {
    const last = lastCc.get(p.pid);
    if (last !== undefined) expect(p.cc).toBe(p.hasPayload ? (last + 1) & 15 : last);
    lastCc.set(p.pid, p.cc);
    if (!p.hasPayload || p.pid === 0 || p.pid === 0x1000) continue;
    const list = parts.get(p.pid) ?? [];
    if (p.pusi) list.push([]);
    list.at(-1)!.push(p.payload);
    parts.set(p.pid, list);
  }
  return new Map([...parts].map(([pid, l]) => [pid, l.map((b) => Buffer.concat(b))]));
}

interface Pes {
  streamId: number;
  pts: number;
  dts: number;
  data: Buffer;
}

function parsePes(b: Buffer): Pes {
  expect(b.readUIntBE(0, 3)).toBe(1);
  const len = b.readUInt16BE(4);
  if (len !== 0) expect(len).toBe(b.length - 6);
  const flags = b[7]!;
  const pts = readPesTimestamp(b, 9);
  const dts = flags & 0x40 ? readPesTimestamp(b, 14) : pts;
  return { streamId: b[3]!, pts, dts, data: b.subarray(9 + b[8]!) };
}

/** PMT sections seen, as [version, stream types, pcr pid]. */
function pmts(packets: TsPacket[]): { version: number; types: number[]; pcrPid: number }[] {
  return packets
    .filter((p) => p.pid === 0x1000)
    .map((p) => {
      const s = p.payload.subarray(1 + p.payload[0]!);
      const sectionLength = s.readUInt16BE(1) & 0x0fff;
      expect(crc32Mpeg2(s, 0, 3 + sectionLength)).toBe(0);
      const types: number[] = [];
      for (let at = 12; at < 3 + sectionLength - 4; at += 5) types.push(s[at]!);
      return { version: (s[5]! >> 1) & 0x1f, types, pcrPid: s.readUInt16BE(8) & 0x1fff };
    });
}

// ---------------------------------------------------------------------------------------
// ffmpeg/ffprobe plumbing
// ---------------------------------------------------------------------------------------

interface ProbedStream {
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
  nb_read_frames?: string;
}

function probeStreams(file: string): ProbedStream[] {
  const r = runTool('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,codec_name,width,height,nb_read_frames', '-of', 'json', file]);
  expect(r.status).toBe(0);
  return (JSON.parse(r.stdout) as { streams: ProbedStream[] }).streams;
}

interface ProbedPacket {
  codec_type: string;
  pts: number;
  dts: number;
  pts_time: string;
  flags: string;
}

function probePackets(file: string): ProbedPacket[] {
  const r = runTool('ffprobe', ['-v', 'error', '-show_entries', 'packet=codec_type,pts,dts,pts_time,flags', '-of', 'json', file]);
  expect(r.status).toBe(0);
  return (JSON.parse(r.stdout) as { packets: ProbedPacket[] }).packets;
}

function muxAll(muxer: TsMuxer, messages: readonly TsMuxerInput[]): Buffer {
  const chunks = messages.map((m) => muxer.mux(m));
  for (const c of chunks) expect(c.length % 188).toBe(0);
  return Buffer.concat(chunks);
}

let dir = '';
let messages: TsMuxerInput[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowrelay-tsmux-'));
  const flv = join(dir, 'in.flv');
  ffmpegSync([
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '4', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-g', '25', '-bf', '2', '-c:a', 'aac', '-f', 'flv', flv,
  ]);
  messages = (await readFlvFile(flv)).tags.map(toContainerInput);
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

const videoFrames = (): { timestamp: number; cts: number; isKeyframe: boolean }[] =>
  messages
    .filter((m) => m.kind === 'video' && m.payload[1] === 1) // coded frames, not headers or end of sequence
    .map((m) => ({ timestamp: m.timestamp, cts: m.payload.readIntBE(2, 3), isKeyframe: m.isKeyframe }));

// ---------------------------------------------------------------------------------------

describe('PSI (ISO/IEC 13818-1 2.4.4)', () => {
  it('writes the PAT byte for byte as ffmpeg does for the same program', () => {
    const pat = patPacket({ transportStreamId: 1, programNumber: 1, pmtPid: 0x1000 });
    expect(pat.subarray(0, 21)).toEqual(hex('47 40 00 10 00 00 b0 0d 00 01 c1 00 00 00 01 f0 00 2a b1 04 b2'));
    expect(pat.subarray(21).every((b) => b === 0xff)).toBe(true);
  });

  it('writes a PMT whose CRC checks and that lists the streams with the PCR PID', () => {
    const pmt = pmtPacket({ transportStreamId: 1, programNumber: 1, pmtPid: 0x1000, pcrPid: 0x100, version: 3, streams: [{ streamType: 0x1b, pid: 0x100 }, { streamType: 0x0f, pid: 0x101 }] });
    expect(pmts(readPackets(pmt))).toEqual([{ version: 3, types: [0x1b, 0x0f], pcrPid: 0x100 }]);
  });
});

describe('timestamps', () => {
  it('maps ms to 33-bit 90 kHz exactly, however large or negative the input', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 40), max: 2 ** 50 }), (ms) => {
        const want = Number((((BigInt(ms) * 90n) % 2n ** 33n) + 2n ** 33n) % 2n ** 33n);
        expect(msTo90kHz(ms)).toBe(want);
      }),
    );
  });

  it('round-trips PTS/DTS fields and encodes the PCR base in 33 bits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 33 - 1 }), fc.integer({ min: 0, max: 299 }), (v, ext) => {
        const b = Buffer.alloc(6);
        writePesTimestamp(b, 0, 0x2, v);
        expect(b[0]! >> 4).toBe(0x2);
        expect(b[0]! & 1).toBe(1);
        expect(readPesTimestamp(b, 0)).toBe(v);
        writePcr(b, 0, v, ext);
        const base = b.readUInt32BE(0) * 2 + (b[4]! >> 7);
        expect(base).toBe(v);
        expect(((b[4]! & 1) << 8) | b[5]!).toBe(ext);
      }),
    );
  });
});

describe('PES packetization (2.4.3)', () => {
  it('cuts any PES into whole packets with PCR/RAI first, stuffing last, and counters in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 700 }), { minLength: 1, maxLength: 6 }),
        fc.option(fc.integer({ min: 0, max: 2 ** 33 - 1 })),
        fc.boolean(),
        fc.integer({ min: 0, max: 15 }),
        (arrays, pcr, rai, cc0) => {
          const header = pesHeader({ streamId: 0xe0, pts90k: 1234, dts90k: 1000, payloadLength: 0, bounded: false });
          const segments = [header, ...arrays.map((a) => Buffer.from(a))];
          const length = segments.reduce((n, s) => n + s.length, 0);
          const spec = { pid: 0x100, segments, length, pcrBase: pcr ?? undefined, randomAccess: rai };
          const n = pesPacketCount(spec);
          const out = Buffer.alloc(n * 188, 0xaa);
          const cc = writePesPackets(out, 0, spec, cc0);
          expect(cc).toBe((cc0 + n) & 15);
          const packets = readPackets(out);
          packets.forEach((p, i) => {
            expect(p.pid).toBe(0x100);
            expect(p.pusi).toBe(i === 0);
            expect(p.cc).toBe((cc0 + i) & 15);
            expect(p.hasPayload).toBe(true);
            if (i > 0) {
              expect(p.pcr).toBeUndefined();
              expect(p.rai).toBe(false);
            }
            if (i > 0 && i < n - 1) expect(p.afLength).toBe(-1);
          });
          expect(packets[0]!.pcr).toBe(pcr ?? undefined);
          expect(packets[0]!.rai).toBe(rai);
          expect(Buffer.concat(packets.map((p) => p.payload))).toEqual(Buffer.concat(segments));
        },
      ),
    );
  });

  it('writes a bounded PES length for audio and refuses one that does not fit 16 bits', () => {
    const h = pesHeader({ streamId: 0xc0, pts90k: 90, payloadLength: 100, bounded: true });
    expect(h.readUInt16BE(4)).toBe(3 + 5 + 100);
    expect(h[7]).toBe(0x80);
    expect(() => pesHeader({ streamId: 0xc0, pts90k: 0, payloadLength: 70000, bounded: true })).toThrow(RangeError);
  });
});

describe('ADTS (ISO/IEC 14496-3 1.A.2.2)', () => {
  it('builds the header from an AAC-LC AudioSpecificConfig', () => {
    const cfg = parseAudioSpecificConfig(hex('1190'))!;
    expect(cfg).toEqual({ profile: 1, samplingFrequencyIndex: 3, channelConfiguration: 2 });
    const b = Buffer.alloc(7);
    writeAdtsHeader(b, 0, cfg, 100);
    expect(b).toEqual(hex('fff1 4c80 0d 7f fc')); // frame_length 107
  });

  it('carries HE-AAC as its LC core, and refuses what ADTS cannot express', () => {
    // AOT 5 (SBR), 22050 Hz core, stereo, 44100 Hz extension, core AOT 2.
    expect(parseAudioSpecificConfig(hex('2b9188'))).toEqual({ profile: 1, samplingFrequencyIndex: 7, channelConfiguration: 2 });
    // AOT 42 (USAC) through the escape: 11111 001010.
    expect(parseAudioSpecificConfig(hex('f94440'))).toBeUndefined();
    expect(() => parseAudioSpecificConfig(hex('11'))).toThrow(ProtocolError);
  });
});

describe('Annex B conversion', () => {
  const sps = hex('6764001eacd940');
  const pps = hex('68ebecb22c');
  const avcc = hex(`01 64001e ff e1 0007 ${sps.toString('hex')} 01 0005 ${pps.toString('hex')}`);
  const nal = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);

  it('puts an AUD first and SPS/PPS before IDR slices, dropping input AUDs', () => {
    const cfg = parseAvcConfig(avcc);
    expect(cfg).toMatchObject({ codec: 'avc', lengthSize: 4 });
    expect(cfg.parameterSets).toEqual(Buffer.concat([hex('00000001'), sps, hex('00000001'), pps]));
    const idr = toAnnexB(Buffer.concat([nal(hex('0910')), nal(hex('658880'))]), 4, 'avc', cfg.parameterSets, false);
    expect(idr.randomAccess).toBe(true);
    expect(Buffer.concat(idr.segments)).toEqual(Buffer.concat([hex('0000000109f0'), cfg.parameterSets, hex('00000001658880')]));
    const p = toAnnexB(nal(hex('419a')), 4, 'avc', cfg.parameterSets, false);
    expect(Buffer.concat(p.segments)).toEqual(hex('0000000109f0 00000001419a'));
    expect(p.length).toBe(Buffer.concat(p.segments).length);
  });

  it('reads 1- and 2-byte NAL lengths', () => {
    const one = toAnnexB(hex('02 419a 01 06'), 1, 'avc', Buffer.alloc(0), false);
    expect(Buffer.concat(one.segments)).toEqual(hex('0000000109f0 00000001419a 0000000106'));
    const two = toAnnexB(hex('0002 419a'), 2, 'avc', Buffer.alloc(0), false);
    expect(Buffer.concat(two.segments)).toEqual(hex('0000000109f0 00000001419a'));
    expect(() => parseAvcConfig(hex('01 64001e fe e0 00'))).toThrow(ProtocolError); // lengthSizeMinusOne 2
  });

  it('does not repeat parameter sets the frame already carries, and rejects overruns', () => {
    const cfg = parseAvcConfig(avcc);
    const inBand = toAnnexB(Buffer.concat([nal(sps), nal(pps), nal(hex('6588'))]), 4, 'avc', cfg.parameterSets, true);
    expect(Buffer.concat(inBand.segments)).toEqual(Buffer.concat([hex('0000000109f0 00000001'), sps, hex('00000001'), pps, hex('000000016588')]));
    expect(() => toAnnexB(hex('00000009 6588'), 4, 'avc', cfg.parameterSets, false)).toThrow(ProtocolError);
    expect(() => toAnnexB(hex('0000'), 4, 'avc', cfg.parameterSets, false)).toThrow(ProtocolError);
    expect(() => parseAvcConfig(hex('01 64001e ff e1 0020 6764'))).toThrow(ProtocolError);
  });

  it('orders HEVC parameter sets VPS, SPS, PPS whatever the record says', () => {
    const vps = hex('40010c01');
    const hsps = hex('42010101');
    const hpps = hex('4401c172');
    const fixed = Buffer.alloc(23);
    fixed[0] = 1;
    fixed[21] = 0x0f;
    fixed[22] = 3;
    const arr = (type: number, n: Buffer): Buffer => Buffer.concat([Buffer.from([0x80 | type, 0, 1, 0, n.length]), n]);
    const cfg = parseHevcConfig(Buffer.concat([fixed, arr(34, hpps), arr(33, hsps), arr(32, vps)]));
    expect(cfg.lengthSize).toBe(4);
    expect(cfg.parameterSets).toEqual(Buffer.concat([hex('00000001'), vps, hex('00000001'), hsps, hex('00000001'), hpps]));
  });
});

describe('packForSrt', () => {
  it('emits 1316-byte messages and carries the rest, for every way of splitting the stream', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 12 }), (counts) => {
        const chunks = counts.map((n, i) => Buffer.alloc(n * 188, i + 1));
        let carry: Buffer = Buffer.alloc(0);
        const sent: Buffer[] = [];
        for (const c of chunks) {
          const r = packForSrt(c, carry);
          for (const m of r.messages) expect(m.length).toBe(1316);
          expect(r.carry.length).toBeLessThan(1316);
          expect(r.carry.length % 188).toBe(0);
          sent.push(...r.messages);
          carry = r.carry;
        }
        const total = counts.reduce((a, b) => a + b, 0);
        expect(sent.length).toBe(Math.floor(total / 7));
        expect(carry.length).toBe((total % 7) * 188);
        expect(Buffer.concat([...sent, carry])).toEqual(Buffer.concat(chunks));
      }),
    );
  });
});

describe('TsMuxer with ffmpeg-made H.264 + AAC', () => {
  it('produces a stream ffprobe and ffmpeg read cleanly, with the FLV timing intact', () => {
    const muxer = new TsMuxer();
    const ts = muxAll(muxer, messages);
    const file = join(dir, 'full.ts');
    writeFileSync(file, ts);

    const streams = probeStreams(file);
    expect(streams).toEqual([
      { codec_type: 'video', codec_name: 'h264', width: 640, height: 360, nb_read_frames: '100' },
      expect.objectContaining({ codec_type: 'audio', codec_name: 'aac' }),
    ]);
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });

    const frames = videoFrames();
    expect(frames).toHaveLength(100);
    const packets = probePackets(file);
    const video = packets.filter((p) => p.codec_type === 'video');
    expect(video.map((p) => [p.dts, p.pts])).toEqual(frames.map((f) => [f.timestamp * 90, (f.timestamp + f.cts) * 90]));
    for (let i = 1; i < video.length; i++) expect(video[i]!.dts - video[i - 1]!.dts).toBe(3600);
    expect(video.some((p) => p.pts !== p.dts)).toBe(true); // B-frame reordering survived
    expect(video.filter((p) => p.flags.includes('K')).map((p) => p.dts)).toEqual(frames.filter((f) => f.isKeyframe).map((f) => f.timestamp * 90));

    const audio = packets.filter((p) => p.codec_type === 'audio');
    expect(audio.length).toBe(messages.filter((m) => m.kind === 'audio' && !m.isSequenceHeader).length);
    expect(Math.abs(Number(audio[0]!.pts_time) - Number(video[0]!.pts_time))).toBeLessThan(0.1);

    expect(muxer.counters).toEqual({ packets: ts.length / 188, videoFrames: 100, audioFrames: audio.length, skipped: 0 });
  });

  it('follows the transport rules: PSI before keyframes and at least every 100 ms, PCR at least every 40 ms', () => {
    const muxer = new TsMuxer();
    const packets = readPackets(muxAll(muxer, messages));
    pesByPid(packets); // asserts continuity counters on every PID
    expect(packets[0]!.pid).toBe(0);
    expect(packets[1]!.pid).toBe(0x1000);
    expect(pmts(packets).every((p) => p.version === 0 && p.pcrPid === 0x100 && p.types.join() === '27,15')).toBe(true);

    const pes = pesByPid(packets).get(0x100)!.map(parsePes);
    let videoIndex = 0;
    let lastPcr = -1;
    let lastPsiAt = -1;
    packets.forEach((p, i) => {
      if (p.pid === 0) lastPsiAt = i;
      if (p.pcr !== undefined) {
        expect(p.pid).toBe(0x100);
        expect(p.pcr).toBeGreaterThanOrEqual(lastPcr);
        // 40 ms while video flows (every frame at 25 fps); after the video ends, audio
        // keeps it within the 100 ms of 2.7.2.
        if (lastPcr >= 0) expect(p.pcr - lastPcr).toBeLessThanOrEqual(p.hasPayload ? 40 * 90 : 100 * 90);
        lastPcr = p.pcr;
      }
      if (p.pid === 0x100 && p.pusi) {
        const frame = pes[videoIndex++]!;
        if (p.rai) {
          expect(lastPsiAt).toBe(i - 2); // PAT, PMT, keyframe
          expect(p.pcr).toBe(frame.dts);
          expect(frame.data.subarray(0, 6)).toEqual(hex('0000000109f0'));
          expect(frame.data.subarray(6, 11)).toEqual(hex('0000000167')); // SPS right after the AUD
        }
      }
    });
    expect(pes.every((p) => p.streamId === 0xe0)).toBe(true);
    const audio = pesByPid(packets).get(0x101)!.map(parsePes);

    // PSI repetition: every PES goes out less than 100 ms (by its DTS) after the last PAT/PMT.
    const starts = packets.filter((p) => p.pid === 0 || (p.pusi && (p.pid === 0x100 || p.pid === 0x101)));
    const queue = { 0x100: [...pes], 0x101: [...audio] } as Record<number, Pes[]>;
    let psiPending = false;
    let psiTime = -1;
    for (const p of starts) {
      if (p.pid === 0) {
        psiPending = true;
        continue;
      }
      const dts = queue[p.pid]!.shift()!.dts;
      if (psiPending) psiTime = dts;
      psiPending = false;
      expect(dts - psiTime).toBeLessThan(100 * 90);
    }
    expect(audio.every((p) => p.streamId === 0xc0 && p.data[0] === 0xff && (p.data[1]! & 0xf6) === 0xf0)).toBe(true);
  });

  it('can start mid-stream: from the second keyframe on, the output plays and opens on a keyframe', () => {
    const firstFrame = messages.findIndex((m) => m.kind !== 'data' && !m.isSequenceHeader);
    const headers = messages.slice(0, firstFrame).filter((m) => m.isSequenceHeader);
    const keyframes = messages.flatMap((m, i) => (m.isKeyframe ? [i] : []));
    const from = keyframes[1]!;
    const muxer = new TsMuxer();
    const file = join(dir, 'mid.ts');
    writeFileSync(file, muxAll(muxer, [...headers, ...messages.slice(from)]));

    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
    const streams = probeStreams(file);
    expect(streams[0]).toMatchObject({ codec_name: 'h264', width: 640, height: 360, nb_read_frames: '75' });
    expect(streams[1]).toMatchObject({ codec_name: 'aac' });
    const video = probePackets(file).filter((p) => p.codec_type === 'video');
    expect(video[0]!.flags).toContain('K');
    expect(video[0]!.dts).toBe(messages[from]!.timestamp * 90);
  });

  it('drops video until the first keyframe when joined between keyframes', () => {
    const headers = messages.filter((m) => m.isSequenceHeader);
    const keyframes = messages.flatMap((m, i) => (m.isKeyframe ? [i] : []));
    const from = keyframes[1]! - 10;
    const muxer = new TsMuxer();
    const file = join(dir, 'join.ts');
    writeFileSync(file, muxAll(muxer, [...headers, ...messages.slice(from)]));
    const dropped = messages.slice(from, keyframes[1]).filter((m) => m.kind === 'video').length;
    expect(dropped).toBeGreaterThan(0);
    expect(muxer.counters.skipped).toBe(dropped);
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
    const video = probePackets(file).filter((p) => p.codec_type === 'video');
    expect(video[0]!.flags).toContain('K');
    expect(video).toHaveLength(75);
  });

  it('keeps PTS/DTS/PCR right across the 33-bit wrap', () => {
    // 2^33 / 90 ms is about 26.5 hours; start 2 s before the wrap.
    const offset = Math.floor(2 ** 33 / 90) - 2000;
    const shifted = messages.map((m) => ({ ...m, timestamp: m.timestamp + offset }));
    const muxer = new TsMuxer();
    const ts = muxAll(muxer, shifted);
    const packets = readPackets(ts);
    const pes = pesByPid(packets).get(0x100)!.map(parsePes);
    const frames = videoFrames();
    expect(pes.map((p) => [p.dts, p.pts])).toEqual(frames.map((f) => [msTo90kHz(f.timestamp + offset), msTo90kHz(f.timestamp + f.cts + offset)]));
    expect(pes.some((p, i) => i > 0 && p.dts < pes[i - 1]!.dts)).toBe(true); // it did wrap
    const file = join(dir, 'wrap.ts');
    writeFileSync(file, ts);
    expect(probeStreams(file)[0]).toMatchObject({ codec_name: 'h264', nb_read_frames: '100' });
  });

  it('announces audio that starts late with a new PMT version, and audio-only streams carry the PCR on audio', () => {
    const video = messages.filter((m) => m.kind === 'video');
    const audio = messages.filter((m) => m.kind === 'audio');
    const muxer = new TsMuxer();
    const late = readPackets(muxAll(muxer, [...video.slice(0, 30), ...audio]));
    expect(pmts(late).map((p) => [p.version, p.types.join()])).toEqual(
      expect.arrayContaining([[0, '27'], [1, '27,15']]),
    );

    const audioOnly = new TsMuxer();
    const ts = muxAll(audioOnly, audio);
    const packets = readPackets(ts);
    expect(pmts(packets)[0]).toEqual({ version: 0, types: [15], pcrPid: 0x101 });
    expect(packets.filter((p) => p.pcr !== undefined).every((p) => p.pid === 0x101)).toBe(true);
    const file = join(dir, 'audio.ts');
    writeFileSync(file, ts);
    expect(probeStreams(file)).toEqual([expect.objectContaining({ codec_type: 'audio', codec_name: 'aac' })]);
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
  });

  it('sends the clock in PCR-only packets when video is sparse', () => {
    // Keep one video frame in five (5 fps): audio must carry the PCR in between.
    const thinned = messages.filter((m) => m.kind !== 'video' || m.isSequenceHeader || m.isKeyframe || m.timestamp % 200 === 0);
    const packets = readPackets(muxAll(new TsMuxer(), thinned));
    pesByPid(packets);
    const pcrs = packets.filter((p) => p.pcr !== undefined);
    expect(pcrs.some((p) => !p.hasPayload)).toBe(true);
    for (let i = 1; i < pcrs.length; i++) {
      expect(pcrs[i]!.pcr! - pcrs[i - 1]!.pcr!).toBeGreaterThanOrEqual(0);
      expect(pcrs[i]!.pcr! - pcrs[i - 1]!.pcr!).toBeLessThanOrEqual(100 * 90);
    }
  });

  it('skips what it cannot carry, names each kind once, and never throws on garbage', () => {
    const unsupported: string[] = [];
    const muxer = new TsMuxer({ onUnsupported: (what) => unsupported.push(what) });
    expect(muxer.mux({ kind: 'data', timestamp: 0, payload: hex('02000a6f6e4d65746144617461'), isKeyframe: false, isSequenceHeader: false }).length).toBe(0);
    expect(muxer.mux({ kind: 'audio', timestamp: 0, payload: hex('2fff'), isKeyframe: false, isSequenceHeader: false }).length).toBe(0); // MP3
    expect(muxer.mux({ kind: 'audio', timestamp: 26, payload: hex('2fff'), isKeyframe: false, isSequenceHeader: false }).length).toBe(0);
    expect(muxer.mux({ kind: 'video', timestamp: 0, payload: hex('1701000000 00000001 65'), isKeyframe: true, isSequenceHeader: false }).length).toBe(0); // no config yet
    expect(muxer.mux({ kind: 'video', timestamp: 0, payload: hex('1d01000000'), isKeyframe: true, isSequenceHeader: false }).length).toBe(0); // legacy codec id 13
    expect(muxer.counters.skipped).toBe(4);
    expect(unsupported).toEqual(['MP3 audio', 'video in a codec other than H.264 or HEVC']);
    fc.assert(
      fc.property(fc.constantFrom<'audio' | 'video'>('audio', 'video'), fc.uint8Array({ maxLength: 64 }), (kind, bytes) => {
        const out = muxer.mux({ kind, timestamp: 0, payload: Buffer.from(bytes), isKeyframe: false, isSequenceHeader: false });
        expect(out.length % 188).toBe(0);
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------
// HEVC: ffmpeg 5.1 cannot put HEVC in FLV, so the enhanced RTMP tags are built here from
// an HEVC elementary stream, the way an E-RTMP encoder would send them.
// ---------------------------------------------------------------------------------------

function splitAnnexB(es: Buffer): Buffer[] {
  const starts: { at: number; len: number }[] = [];
  for (let i = 0; i + 3 <= es.length; i++) {
    if (es[i] === 0 && es[i + 1] === 0 && es[i + 2] === 1) {
      const four = i > 0 && es[i - 1] === 0;
      starts.push({ at: four ? i - 1 : i, len: four ? 4 : 3 });
      i += 2;
    }
  }
  return starts.map((s, k) => es.subarray(s.at + s.len, k + 1 < starts.length ? starts[k + 1]!.at : es.length));
}

const hevcType = (n: Buffer): number => (n[0]! >> 1) & 0x3f;

/** Access units per H.265 7.4.2.4.4: a new one starts at an AUD, VPS/SPS/PPS/prefix SEI or first slice after a VCL NAL. */
function accessUnits(nalus: Buffer[]): Buffer[][] {
  const aus: Buffer[][] = [];
  let cur: Buffer[] = [];
  let hasVcl = false;
  for (const n of nalus) {
    const t = hevcType(n);
    const vcl = t < 32;
    const starts = (t >= 32 && t <= 35) || t === 39 || (vcl && (n[2]! & 0x80) !== 0);
    if (hasVcl && starts) {
      aus.push(cur);
      cur = [];
      hasVcl = false;
    }
    cur.push(n);
    if (vcl) hasVcl = true;
  }
  if (cur.length > 0) aus.push(cur);
  return aus;
}

function hevcTags(es: Buffer): TsMuxerInput[] {
  const aus = accessUnits(splitAnnexB(es));
  const first = aus[0]!;
  const fixed = Buffer.alloc(23);
  fixed[0] = 1;
  fixed[21] = 0x0f; // lengthSizeMinusOne 3
  const arrays = [32, 33, 34].map((t) => {
    const n = first.find((x) => hevcType(x) === t)!;
    return Buffer.concat([Buffer.from([0x80 | t, 0, 1, n.length >> 8, n.length & 0xff]), n]);
  });
  fixed[22] = arrays.length;
  const hvc1 = Buffer.from('hvc1', 'latin1');
  const out: TsMuxerInput[] = [
    { kind: 'video', timestamp: 0, payload: Buffer.concat([Buffer.from([0x90]), hvc1, fixed, ...arrays]), isKeyframe: false, isSequenceHeader: true },
  ];
  aus.forEach((au, i) => {
    const key = au.some((n) => hevcType(n) >= 16 && hevcType(n) <= 23);
    // Out-of-band parameter sets, as E-RTMP encoders send them: the muxer must restore them.
    const body = Buffer.concat(au.filter((n) => hevcType(n) < 32 || hevcType(n) > 35).flatMap((n) => [Buffer.from([0, 0, n.length >> 8, n.length & 0xff]), n]));
    // Alternate CodedFrames (with SI24 composition time 0) and CodedFramesX (none).
    const header = i % 2 === 0 ? Buffer.concat([Buffer.from([(key ? 0x90 : 0xa0) | 1]), hvc1, Buffer.from([0, 0, 0])]) : Buffer.concat([Buffer.from([(key ? 0x90 : 0xa0) | 3]), hvc1]);
    out.push({ kind: 'video', timestamp: i * 40, payload: Buffer.concat([header, body]), isKeyframe: key, isSequenceHeader: false });
  });
  return out;
}

describe('TsMuxer with HEVC (enhanced RTMP hvc1)', () => {
  let tags: TsMuxerInput[] = [];

  beforeAll(() => {
    const es = join(dir, 'in.hevc');
    ffmpegSync([
      '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-t', '2', '-pix_fmt', 'yuv420p',
      '-c:v', 'libx265', '-x265-params', 'keyint=25:min-keyint=25:bframes=0:scenecut=0:log-level=error', '-f', 'hevc', es,
    ]);
    tags = hevcTags(readFileSync(es));
  });

  it('muxes HEVC with stream type 0x24, an HEVC AUD and VPS/SPS/PPS before each IRAP', () => {
    expect(tags.every((t) => parseVideoTag(t.payload).codec === 'hevc')).toBe(true);
    const muxer = new TsMuxer();
    const ts = muxAll(muxer, tags);
    const packets = readPackets(ts);
    expect(pmts(packets)[0]!.types).toEqual([0x24]);
    const pes = pesByPid(packets).get(0x100)!.map(parsePes);
    expect(pes).toHaveLength(50);
    expect(pes.every((p) => p.data.subarray(0, 7).equals(hex('00000001460150')))).toBe(true);
    expect(pes.filter((p) => p.data.subarray(7, 12).equals(hex('0000000140'))).length).toBe(2); // VPS follows the AUD
    const file = join(dir, 'hevc.ts');
    writeFileSync(file, ts);
    expect(probeStreams(file)).toEqual([{ codec_type: 'video', codec_name: 'hevc', width: 320, height: 180, nb_read_frames: '50' }]);
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
  });

  it('starts an HEVC stream at its second IRAP', () => {
    const second = tags.findIndex((t, i) => i > 1 && t.isKeyframe);
    const muxer = new TsMuxer();
    const file = join(dir, 'hevc-mid.ts');
    writeFileSync(file, muxAll(muxer, [tags[0]!, ...tags.slice(second)]));
    expect(decodeSync(file)).toEqual({ status: 0, stderr: '' });
    expect(probeStreams(file)[0]).toMatchObject({ codec_name: 'hevc', nb_read_frames: '25' });
  });

  it('moves video to a new PID with a new PMT version when the codec changes, and back on the next change', () => {
    const h264 = messages.filter((m) => m.kind === 'video');
    const h264Frames = h264.filter((m) => !m.isSequenceHeader && m.payload[1] === 1).length;
    const shift = (list: TsMuxerInput[], by: number): TsMuxerInput[] => list.map((m) => ({ ...m, timestamp: m.timestamp + by }));
    const muxer = new TsMuxer();
    const ts = muxAll(muxer, [...h264, ...shift(tags, 4000), ...shift(h264, 6000)]);
    const packets = readPackets(ts);
    const versions = pmts(packets).filter((p, i, all) => i === 0 || p.version !== all[i - 1]!.version);
    expect(versions.map((p) => [p.version, p.types.join(), p.pcrPid])).toEqual([
      [0, '27', 0x100],
      [1, '36', 0x102],
      [2, '27', 0x100],
    ]);
    const byPid = pesByPid(packets);
    expect(byPid.get(0x102)).toHaveLength(50);
    expect(byPid.get(0x100)).toHaveLength(2 * h264Frames);
    // A receiver that keeps a PID's first decoder still reads the HEVC part as HEVC.
    const file = join(dir, 'codec-change.ts');
    writeFileSync(file, ts);
    expect(probeStreams(file)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ codec_name: 'h264', nb_read_frames: String(2 * h264Frames) }),
        expect.objectContaining({ codec_name: 'hevc', nb_read_frames: '50' }),
      ]),
    );
  });
});
