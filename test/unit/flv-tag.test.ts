import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { avcResolution, isCodedAudio, isCodedVideo, parseAudioTag, parseVideoTag } from '../../src/protocol/flv/tag.js';
import { ProtocolError } from '../../src/lib/errors.js';
import { protocolError } from '../helpers/protocol-error.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const cc = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

/** Every proper prefix of a tag header is FLV_MALFORMED; the full header parses. */
function expectHeaderLength(parse: (b: Buffer) => unknown, header: Buffer): void {
  for (let k = 0; k < header.length; k++) {
    expect(protocolError(() => parse(header.subarray(0, k))).code).toBe('FLV_MALFORMED');
  }
  expect(() => parse(header)).not.toThrow();
}

describe('parseVideoTag, legacy headers', () => {
  it('classifies AVC sequence header, keyframe, inter frame and end of sequence', () => {
    expect(parseVideoTag(hex('17 00 000000 01640028'))).toEqual({
      enhanced: false, codec: 'avc', codecId: 7, frameType: 1, packetType: 0,
      isKeyframe: false, isSequenceHeader: true, isCommandFrame: false,
    });
    expect(parseVideoTag(hex('17 01 000042 00000005 65'))).toMatchObject({ codec: 'avc', frameType: 1, packetType: 1, isKeyframe: true, isSequenceHeader: false });
    expect(parseVideoTag(hex('27 01 000042 00000005 41'))).toMatchObject({ frameType: 2, isKeyframe: false, isSequenceHeader: false });
    expect(parseVideoTag(hex('37 01 000000'))).toMatchObject({ frameType: 3, isKeyframe: false });
    expect(parseVideoTag(hex('17 02 000000'))).toMatchObject({ packetType: 2, isKeyframe: false, isSequenceHeader: false });
  });

  it('treats the non-standard CodecID 12 as HEVC in the AVC framing', () => {
    expect(parseVideoTag(hex('1c 00 000000 01'))).toMatchObject({ enhanced: false, codec: 'hevc', codecId: 12, isSequenceHeader: true });
    expect(parseVideoTag(hex('1c 01 000000'))).toMatchObject({ codec: 'hevc', isKeyframe: true });
    expect(parseVideoTag(hex('2c 01 000000'))).toMatchObject({ codec: 'hevc', isKeyframe: false });
  });

  it('reports command frames (frameType 5) as neither media nor keyframes', () => {
    expect(parseVideoTag(hex('57 00'))).toEqual({
      enhanced: false, codec: 'avc', codecId: 7, frameType: 5, packetType: -1,
      isKeyframe: false, isSequenceHeader: false, isCommandFrame: true,
    });
    expect(parseVideoTag(hex('57'))).toMatchObject({ isCommandFrame: true });
    expect(parseVideoTag(hex('52 01'))).toMatchObject({ codec: 'other', codecId: 2, isCommandFrame: true, isKeyframe: false });
  });

  it('classifies other legacy codecs by frame type alone', () => {
    expect(parseVideoTag(hex('12 0000'))).toMatchObject({ codec: 'other', codecId: 2, frameType: 1, packetType: 1, isKeyframe: true });
    expect(parseVideoTag(hex('24'))).toMatchObject({ codec: 'other', codecId: 4, frameType: 2, isKeyframe: false });
    expect(parseVideoTag(hex('42'))).toMatchObject({ frameType: 4, isKeyframe: false }); // generated keyframe
  });

  it('rejects tags too short for their header', () => {
    expectHeaderLength(parseVideoTag, hex('17 01 000000'));
    expectHeaderLength(parseVideoTag, hex('1c 00 000000'));
    expectHeaderLength(parseVideoTag, hex('22'));
  });
});

describe('parseVideoTag, enhanced RTMP', () => {
  const cases: Array<[string, string, Record<string, unknown>]> = [
    ['HEVC sequence start', `90 ${cc('hvc1')} 01`, { codec: 'hevc', fourcc: 'hvc1', frameType: 1, packetType: 0, isSequenceHeader: true, isKeyframe: false }],
    ['HEVC keyframe', `91 ${cc('hvc1')} 000000 00`, { codec: 'hevc', packetType: 1, isKeyframe: true, isSequenceHeader: false }],
    ['AV1 keyframe, CodedFramesX', `93 ${cc('av01')} 12`, { codec: 'av1', fourcc: 'av01', packetType: 3, isKeyframe: true }],
    ['VP9 inter frame', `a1 ${cc('vp09')}`, { codec: 'vp9', frameType: 2, isKeyframe: false }],
    ['VP8 keyframe', `91 ${cc('vp08')}`, { codec: 'vp8', fourcc: 'vp08', isKeyframe: true }],
    ['AVC in enhanced form', `92 ${cc('avc1')}`, { codec: 'avc', fourcc: 'avc1', packetType: 2, isKeyframe: false, isSequenceHeader: false }],
    ['unknown FourCC', `91 ${cc('vvc1')}`, { codec: 'other', fourcc: 'vvc1', isKeyframe: true }],
    ['metadata (frame type ignored)', `94 ${cc('hvc1')} 02`, { packetType: 4, isKeyframe: false, isSequenceHeader: false, isCommandFrame: false }],
    ['metadata with frame type 5 is not a command', `d4 ${cc('hvc1')}`, { frameType: 5, packetType: 4, fourcc: 'hvc1', isCommandFrame: false }],
    ['MPEG2TS sequence start', `95 ${cc('av01')}`, { packetType: 5, isSequenceHeader: true }],
    ['command frame (UI8 command, no FourCC)', 'd1 00', { frameType: 5, isCommandFrame: true, isKeyframe: false, isSequenceHeader: false, codec: 'other' }],
    ['multitrack, one track, sequence start', `96 00 ${cc('hvc1')} 00 0000`, { multitrackType: 0, packetType: 0, fourcc: 'hvc1', codec: 'hevc', isSequenceHeader: true }],
    ['multitrack, many tracks, coded frames', `96 11 ${cc('av01')} 00 000010`, { multitrackType: 1, packetType: 1, codec: 'av1', isKeyframe: true }],
    ['multitrack, many codecs (no shared FourCC)', `96 21 00 ${cc('hvc1')}`, { multitrackType: 2, packetType: 1, codec: 'other', fourcc: undefined, isKeyframe: true }],
    ['ModEx then coded frames', `97 02 aabbcc 01 ${cc('av01')}`, { packetType: 1, codec: 'av1', isKeyframe: true }],
    ['chained ModEx', `97 00 aa 07 00 bb 00 ${cc('avc1')}`, { packetType: 0, codec: 'avc', isSequenceHeader: true }],
    ['ModEx then multitrack', `a7 00 aa 06 01 ${cc('hvc1')}`, { frameType: 2, multitrackType: 0, packetType: 1, codec: 'hevc', isKeyframe: false }],
  ];
  for (const [name, bytes, expected] of cases) {
    it(name, () => {
      const info = parseVideoTag(hex(bytes));
      expect(info.enhanced).toBe(true);
      expect(info).toMatchObject(expected);
    });
  }

  it('reads a 16-bit ModEx size', () => {
    // UI8 0xff means 256: the real size is the following UI16 + 1 (here 0x0101 + 1 = 258).
    const header = Buffer.concat([hex('97 ff 0101'), Buffer.alloc(258, 0xee), hex(`00 ${cc('hvc1')}`)]);
    expect(parseVideoTag(header)).toMatchObject({ codec: 'hevc', packetType: 0, isSequenceHeader: true });
    expectHeaderLength(parseVideoTag, header);
  });

  it('rejects every truncation of an enhanced header', () => {
    for (const bytes of [`90 ${cc('hvc1')}`, 'd0 00', `96 00 ${cc('hvc1')}`, '96 21', `97 02 aabbcc 01 ${cc('av01')}`]) {
      expectHeaderLength(parseVideoTag, hex(bytes));
    }
  });
});

/** Whether a media tag is a frame a player counts, as the hub decides it. */
function isCodedFrame(kind: 'audio' | 'video', payload: Buffer): boolean {
  if (payload.length === 0) return false;
  return kind === 'video' ? isCodedVideo(parseVideoTag(payload)) : isCodedAudio(parseAudioTag(payload));
}

describe('isCodedVideo and isCodedAudio: the frames a player counts', () => {
  it.each([
    ['AVC sequence header', 'video', '17 00 000000', false],
    ['AVC keyframe', 'video', '17 01 000000 00', true],
    ['AVC end of sequence', 'video', '17 02 000000', false],
    ['AVC command frame', 'video', '57 01', false],
    ['legacy VP6 frame', 'video', '24 00', true],
    ['HEVC sequence start', 'video', `90 ${cc('hvc1')} 01`, false],
    ['HEVC CodedFramesX', 'video', `93 ${cc('hvc1')} 00`, true],
    ['HEVC sequence end', 'video', `92 ${cc('hvc1')}`, false],
    ['enhanced metadata', 'video', `94 ${cc('hvc1')} 02`, false],
    ['AAC sequence header', 'audio', 'af 00 1210', false],
    ['AAC raw frame', 'audio', 'af 01 21', true],
    ['MP3 frame', 'audio', '2f ff', true],
    ['Opus sequence start', 'audio', `90 ${cc('Opus')}`, false],
    ['Opus coded frame', 'audio', `91 ${cc('Opus')} 00`, true],
    ['empty payload', 'video', '', false],
  ] as const)('%s', (_name, kind, bytes, coded) => {
    expect(isCodedFrame(kind, hex(bytes))).toBe(coded);
  });
});

describe('parseAudioTag', () => {
  it('classifies legacy AAC, MP3 and others', () => {
    expect(parseAudioTag(hex('af 00 1210'))).toEqual({ enhanced: false, codec: 'aac', soundFormat: 10, packetType: 0, isSequenceHeader: true });
    expect(parseAudioTag(hex('af 01 2110'))).toMatchObject({ codec: 'aac', packetType: 1, isSequenceHeader: false });
    expect(parseAudioTag(hex('2f fffb'))).toEqual({ enhanced: false, codec: 'mp3', soundFormat: 2, isSequenceHeader: false });
    expect(parseAudioTag(hex('e2'))).toMatchObject({ codec: 'mp3', soundFormat: 14 });
    expect(parseAudioTag(hex('6e 00'))).toMatchObject({ codec: 'other', soundFormat: 6 });
    expect(parseAudioTag(hex('b2'))).toMatchObject({ codec: 'other', soundFormat: 11 }); // Speex
  });

  const cases: Array<[string, string, Record<string, unknown>]> = [
    ['Opus sequence start', `90 ${cc('Opus')} 00`, { codec: 'opus', fourcc: 'Opus', packetType: 0, isSequenceHeader: true }],
    ['Opus coded frames', `91 ${cc('Opus')} fc`, { codec: 'opus', packetType: 1, isSequenceHeader: false }],
    ['FLAC', `90 ${cc('fLaC')}`, { codec: 'flac', fourcc: 'fLaC', isSequenceHeader: true }],
    ['AC-3', `91 ${cc('ac-3')}`, { codec: 'ac3', fourcc: 'ac-3' }],
    ['E-AC-3', `91 ${cc('ec-3')}`, { codec: 'eac3', fourcc: 'ec-3' }],
    ['AAC in enhanced form', `90 ${cc('mp4a')} 1210`, { codec: 'aac', fourcc: 'mp4a', isSequenceHeader: true }],
    ['MP3 in enhanced form', `91 ${cc('.mp3')}`, { codec: 'mp3', fourcc: '.mp3' }],
    ['unknown FourCC', `91 ${cc('alac')}`, { codec: 'other', fourcc: 'alac' }],
    ['multichannel config', `94 ${cc('Opus')} 01 02`, { packetType: 4, isSequenceHeader: false }],
    ['multitrack, one track', `95 00 ${cc('Opus')} 00`, { packetType: 0, codec: 'opus', isSequenceHeader: true }],
    ['multitrack, many codecs', `95 21 00 ${cc('Opus')}`, { packetType: 1, codec: 'other', fourcc: undefined }],
    ['ModEx then coded frames', `97 00 aa 01 ${cc('Opus')}`, { packetType: 1, codec: 'opus' }],
  ];
  for (const [name, bytes, expected] of cases) {
    it(`enhanced: ${name}`, () => {
      const info = parseAudioTag(hex(bytes));
      expect(info.enhanced).toBe(true);
      expect(info.soundFormat).toBe(9);
      expect(info).toMatchObject(expected);
    });
  }

  it('rejects tags too short for their header', () => {
    for (const bytes of ['af 00', '2f', `90 ${cc('Opus')}`, `95 00 ${cc('Opus')}`, '95 21', `97 00 aa 01 ${cc('Opus')}`]) {
      expectHeaderLength(parseAudioTag, hex(bytes));
    }
  });
});

// ---------------------------------------------------------------------------------------
// avcResolution
// ---------------------------------------------------------------------------------------

// FLV video tag bodies of AVC sequence headers written by ffmpeg 5.1 / libx264
// (`ffmpeg -f lavfi -i testsrc2=size=WxH -frames:v 1 -c:v libx264 ... -f flv`), with the
// dimensions ffprobe reported for each file. All contain emulation-prevention bytes.
const REAL_SEQUENCE_HEADERS: Array<[string, string, { width: number; height: number; profile: number; level: number }]> = [
  [
    '1920x1080 High, cropped 1088 -> 1080',
    '170000000001640028ffe1001b67640028acd940780227e5c044000003000400000300c83c60c65801000668ebe3cb22c0fdf8f800',
    { width: 1920, height: 1080, profile: 100, level: 40 },
  ],
  [
    '1920x1080 High interlaced (frame_mbs_only_flag 0)',
    '170000000001640028ffe1001a67640028acd94078044fde0220000003002000000643e2c5b2c001000668fba3cb22c0fdf8f800',
    { width: 1920, height: 1080, profile: 100, level: 40 },
  ],
  [
    '1280x720 High 4:4:4 Predictive',
    '170000000001f4001fffe1001a67f4001f919b280a00b76022000003000200000300641e30632c01000668ebe3c44844fff8f800',
    { width: 1280, height: 720, profile: 244, level: 31 },
  ],
  [
    '1918x1078 High 4:2:2 (odd crops in both directions)',
    '1700000000017a0028ffe1001b677a0028bcd940780227a8bc0440000003004000000c83c60c658001000668ebe3cb22c0fef8f800',
    { width: 1918, height: 1078, profile: 122, level: 40 },
  ],
  [
    '320x240 Constrained Baseline (no chroma_format_idc)',
    '17000000000142c00dffe100186742c00dd90141fb011000000300100000030320f142a48001000568cb83cb20',
    { width: 320, height: 240, profile: 66, level: 13 },
  ],
];

/** Minimal H.264 bitstream writer for SPSs the fixtures above do not cover. */
class BitWriter {
  private readonly bits: number[] = [];
  u(n: number, v: number): this {
    for (let i = n - 1; i >= 0; i--) this.bits.push(Math.floor(v / 2 ** i) % 2);
    return this;
  }
  ue(v: number): this {
    const x = v + 1;
    const len = Math.floor(Math.log2(x));
    return this.u(len, 0).u(len + 1, x);
  }
  se(v: number): this {
    return this.ue(v <= 0 ? -2 * v : 2 * v - 1);
  }
  /** rbsp_trailing_bits, then emulation prevention (7.4.1). */
  nal(): Buffer {
    this.bits.push(1);
    while (this.bits.length % 8 !== 0) this.bits.push(0);
    const out: number[] = [];
    let zeros = 0;
    for (let i = 0; i < this.bits.length; i += 8) {
      const byte = this.bits.slice(i, i + 8).reduce((a, b) => a * 2 + b, 0);
      if (zeros >= 2 && byte <= 3) {
        out.push(3);
        zeros = 0;
      }
      out.push(byte);
      zeros = byte === 0 ? zeros + 1 : 0;
    }
    return Buffer.from(out);
  }
}

/** FLV AVC sequence header: 5-byte video tag header + AVCDecoderConfigurationRecord with one SPS. */
function sequenceHeader(spsRbsp: Buffer, profile: number, level: number): Buffer {
  const sps = Buffer.concat([hex('67'), spsRbsp]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(sps.length);
  return Buffer.concat([hex('17 00 000000'), Buffer.from([1, profile, 0, level, 0xff, 0xe1]), len, sps, hex('00')]);
}

/**
 * High profile, scaling lists (one 4x4 list that ends early with nextScale 0 and one
 * full 8x8 list), pic_order_cnt_type 1 with a cycle, a huge max_num_ref_frames to force
 * long zero runs (emulation prevention), field coding, cropping 1088 -> 1080.
 */
function handBuiltHighSps(): Buffer {
  const w = new BitWriter();
  w.u(8, 100).u(8, 0).u(8, 40).ue(0); // profile, constraints, level, sps id
  w.ue(1).ue(0).ue(0).u(1, 0); // chroma 4:2:0, bit depths, bypass
  w.u(1, 1); // seq_scaling_matrix_present_flag
  for (let i = 0; i < 8; i++) {
    if (i === 0) {
      w.u(1, 1).se(5).se(-13); // 8 -> 13 -> 0: list ends (use default)
    } else if (i === 6) {
      w.u(1, 1);
      for (let j = 0; j < 64; j++) w.se(j % 2 === 0 ? 3 : -2);
    } else {
      w.u(1, 0);
    }
  }
  w.ue(0); // log2_max_frame_num_minus4
  w.ue(1).u(1, 0).se(-2).se(1).ue(3).se(5).se(-5).se(0); // poc type 1 and its cycle
  w.ue(2 ** 31 - 1); // max_num_ref_frames: absurd, but 31 zero bits, a one, 31 zero bits
  w.u(1, 0); // gaps
  w.ue(119).ue(33); // 120 MBs wide, 34 map units (field pairs) high
  w.u(1, 0).u(1, 1).u(1, 1); // frame_mbs_only 0, mb_adaptive 1, direct_8x8 1
  w.u(1, 1).ue(0).ue(0).ue(0).ue(2); // crop bottom 2 units of 4 lines
  w.u(1, 0); // no VUI
  return sequenceHeader(w.nal(), 100, 40);
}

/** High 4:4:4 with separate_colour_plane_flag: 12 scaling lists (the last one present), one-pixel crop units. */
function handBuiltSeparatePlanesSps(): Buffer {
  const w = new BitWriter();
  w.u(8, 244).u(8, 0).u(8, 30).ue(0);
  w.ue(3).u(1, 1).ue(2).ue(2).u(1, 0); // chroma 4:4:4, separate planes, 10-bit
  w.u(1, 1);
  for (let i = 0; i < 12; i++) {
    if (i === 11) {
      w.u(1, 1);
      for (let j = 0; j < 64; j++) w.se(1);
    } else {
      w.u(1, 0);
    }
  }
  w.ue(0).ue(2); // poc type 2
  w.ue(1).u(1, 0);
  w.ue(39).ue(29).u(1, 1).u(1, 1); // 640x480 MBs, frame_mbs_only
  w.u(1, 1).ue(2).ue(3).ue(0).ue(3); // crop 5 px wide, 3 px high
  w.u(1, 0);
  return sequenceHeader(w.nal(), 244, 30);
}

const hasFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;

function ffmpegFlv(args: string[]): Buffer {
  const res = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args, '-f', 'flv', '-'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.status !== 0) throw new Error(`ffmpeg failed: ${res.stderr.toString()}`);
  return res.stdout;
}

/** FLV file: 9-byte header (its size field says 9), PreviousTagSize0, then 11-byte tag header + body + u32. */
function flvTags(file: Buffer): Array<{ type: number; body: Buffer }> {
  expect(file.subarray(0, 3).toString('latin1')).toBe('FLV');
  const tags: Array<{ type: number; body: Buffer }> = [];
  let pos = file.readUInt32BE(5) + 4;
  while (pos + 11 <= file.length) {
    const type = (file[pos] as number) & 0x1f;
    const size = file.readUIntBE(pos + 1, 3);
    tags.push({ type, body: file.subarray(pos + 11, pos + 11 + size) });
    pos += 11 + size + 4;
  }
  return tags;
}

describe('avcResolution', () => {
  for (const [name, bytes, expected] of REAL_SEQUENCE_HEADERS) {
    it(`reads ${name}`, () => {
      const tag = hex(bytes);
      expect(parseVideoTag(tag)).toMatchObject({ codec: 'avc', isSequenceHeader: true });
      expect(avcResolution(tag)).toEqual(expected);
      // The bare record and the enhanced ('avc1' SequenceStart) framing give the same answer.
      expect(avcResolution(tag.subarray(5))).toEqual(expected);
      expect(avcResolution(Buffer.concat([hex(`90 ${cc('avc1')}`), tag.subarray(5)]))).toEqual(expected);
    });
  }

  it('skips scaling lists, handles pic_order_cnt_type 1, field coding and emulation prevention', () => {
    const tag = handBuiltHighSps();
    expect(tag.includes(hex('000003'))).toBe(true);
    expect(avcResolution(tag)).toEqual({ width: 1920, height: 1080, profile: 100, level: 40 });
  });

  it('reads 4:4:4 with separate colour planes: 12 scaling lists, one-pixel crop units', () => {
    const tag = handBuiltSeparatePlanesSps();
    expect(avcResolution(tag)).toEqual({ width: 635, height: 477, profile: 244, level: 30 });
  });

  it('returns undefined for anything that is not a parseable AVC sequence header', () => {
    const good = hex(REAL_SEQUENCE_HEADERS[0]![1]);
    const notHeaders = [
      Buffer.alloc(0),
      hex('17'),
      hex('17 01 000000 00000005 65'), // a NALU, not a sequence header
      Buffer.concat([hex('1c'), good.subarray(1)]), // legacy HEVC
      Buffer.concat([hex(`90 ${cc('hvc1')}`), good.subarray(5)]), // enhanced HEVC
      Buffer.concat([hex(`91 ${cc('avc1')}`), good.subarray(5)]), // enhanced coded frames
      Buffer.concat([good.subarray(0, 5), hex('02'), good.subarray(6)]), // configurationVersion 2
      Buffer.concat([good.subarray(0, 10), hex('e0'), good.subarray(11)]), // numOfSPS 0
      Buffer.concat([good.subarray(0, 13), hex('68'), good.subarray(14)]), // NAL type 8 (PPS)
      Buffer.concat([good.subarray(0, 11), hex('ffff'), good.subarray(13)]), // SPS length past the end
      Buffer.concat([good.subarray(0, 11), hex('0003'), good.subarray(13)]), // SPS too short
    ];
    for (const buf of notHeaders) expect(avcResolution(buf)).toBeUndefined();
  });

  it('returns undefined, never throws, for every truncation before the end of the SPS', () => {
    for (const [, bytes] of REAL_SEQUENCE_HEADERS) {
      const tag = hex(bytes);
      const spsEnd = 5 + 8 + tag.readUInt16BE(11);
      for (let k = 0; k < tag.length; k++) {
        const r = avcResolution(tag.subarray(0, k));
        if (k < spsEnd) expect(r).toBeUndefined();
        else expect(r).toBeDefined();
      }
      // The declared SPS length cut short (NAL header + up to 4 bytes, before the picture
      // size in every fixture): the reader runs out of bits inside the SPS.
      for (let n = 1; n <= 5; n++) {
        const cut = Buffer.from(tag);
        cut.writeUInt16BE(n, 11);
        expect(avcResolution(cut)).toBeUndefined();
      }
    }
  });

  it.skipIf(!hasFfmpeg)('reads 640x360 from a sequence header made by the real ffmpeg', () => {
    const flv = ffmpegFlv(['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-frames:v', '1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p']);
    const video = flvTags(flv).filter((t) => t.type === 9);
    expect(video.length).toBeGreaterThanOrEqual(2);
    const [header, frame] = video;
    expect(parseVideoTag(header!.body)).toMatchObject({ codec: 'avc', isSequenceHeader: true, isKeyframe: false });
    expect(avcResolution(header!.body)).toMatchObject({ width: 640, height: 360 });
    expect(parseVideoTag(frame!.body)).toMatchObject({ codec: 'avc', isSequenceHeader: false, isKeyframe: true });
  });

  it.skipIf(!hasFfmpeg)('classifies the AAC tags of a real ffmpeg FLV', () => {
    const flv = ffmpegFlv(['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '0.2', '-c:a', 'aac']);
    const audio = flvTags(flv).filter((t) => t.type === 8);
    expect(audio.length).toBeGreaterThan(2);
    expect(parseAudioTag(audio[0]!.body)).toMatchObject({ codec: 'aac', isSequenceHeader: true });
    for (const t of audio.slice(1)) expect(parseAudioTag(t.body)).toMatchObject({ codec: 'aac', isSequenceHeader: false });
  });
});

describe('FLV tag properties', () => {
  const onlyProtocolErrors = (fn: () => unknown): boolean => {
    try {
      fn();
    } catch (err) {
      return err instanceof ProtocolError && err.code === 'FLV_MALFORMED';
    }
    return true;
  };

  it('parseVideoTag and parseAudioTag either return or throw FLV_MALFORMED on arbitrary bytes', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      // Bias towards the enhanced paths: ModEx (x7), Multitrack (x6 / x5), command frames.
      fc
        .tuple(fc.constantFrom(0x97, 0x96, 0x95, 0xd0, 0xd7, 0x17, 0xaf), fc.uint8Array({ maxLength: 300 }))
        .map(([b0, rest]) => Uint8Array.from([b0, ...rest])),
    );
    fc.assert(
      fc.property(bytes, (b) => {
        const buf = Buffer.from(b);
        return onlyProtocolErrors(() => parseVideoTag(buf)) && onlyProtocolErrors(() => parseAudioTag(buf));
      }),
      { seed: 42, numRuns: 2000 },
    );
  });

  it('avcResolution never throws on arbitrary or corrupted records', () => {
    const real = REAL_SEQUENCE_HEADERS.map(([, b]) => hex(b));
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 128 }).map((b) => Buffer.from(b)),
      fc.uint8Array({ maxLength: 128 }).map((b) => Buffer.concat([hex('17 00 000000 01 640028 ffe1 0020 67'), Buffer.from(b)])),
      fc
        .tuple(fc.nat(real.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }))
        .map(([i, edits]) => {
          const b = Buffer.from(real[i]!);
          // Keep the framing so the SPS reader sees the corruption.
          for (const [at, v] of edits) b[13 + (at % (b.length - 13))] = v;
          return b;
        }),
    );
    fc.assert(
      fc.property(bytes, (buf) => {
        const r = avcResolution(buf);
        return r === undefined || (r.width > 0 && r.height > 0 && r.width <= 0xffff && r.height <= 0xffff);
      }),
      { seed: 42, numRuns: 2000 },
    );
  });
});
