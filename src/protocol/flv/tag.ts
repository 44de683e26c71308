/**
 * Classification of FLV audio/video tag bodies (the payloads of RTMP messages 8 and 9):
 * codec, keyframe, sequence header. Runs once per media message, so it reads bytes in
 * place and allocates nothing but the result object.
 *
 * References: Adobe "Video File Format Specification v10.1", annex E.4.2 / E.4.3 (legacy
 * headers), and Veovera "Enhanced RTMP" v1/v2 (ExVideoTagHeader / ExAudioTagHeader).
 */
import { ProtocolError } from '../../lib/errors.js';
import { RbspReader } from '../bitstream/rbsp-reader.js';

export type VideoCodec = 'avc' | 'hevc' | 'av1' | 'vp9' | 'vp8' | 'other';

export interface VideoTagInfo {
  enhanced: boolean;
  codec: VideoCodec;
  /** Enhanced RTMP FourCC, when the header carries one. */
  fourcc?: string;
  /** Legacy CodecID (low nibble of byte 0), for non-enhanced tags. */
  codecId?: number;
  frameType: number;
  /**
   * Enhanced: the VideoPacketType after resolving ModEx and Multitrack wrappers (so a
   * multitrack sequence start reports 0). Legacy AVC/HEVC: the AVCPacketType, whose
   * 0/1/2 mean the same as enhanced SequenceStart/CodedFrames/SequenceEnd. Other legacy
   * codecs: 1 (every tag is a coded frame). Legacy command frames: -1 (no packet).
   */
  packetType: number;
  /** Enhanced Multitrack tags only: the AvMultitrackType (0 one track, 1 many, 2 many codecs). */
  multitrackType?: number;
  /** frameType 1 and a coded frame (not a sequence header, not a command frame). */
  isKeyframe: boolean;
  isSequenceHeader: boolean;
  isCommandFrame: boolean;
}

export type AudioCodec = 'aac' | 'mp3' | 'opus' | 'ac3' | 'eac3' | 'flac' | 'other';

export interface AudioTagInfo {
  enhanced: boolean;
  codec: AudioCodec;
  /** High nibble of byte 0; 9 means an enhanced (ExAudioTagHeader) tag. */
  soundFormat: number;
  fourcc?: string;
  /** Enhanced: the AudioPacketType after ModEx/Multitrack; legacy AAC: the AACPacketType. */
  packetType?: number;
  isSequenceHeader: boolean;
}

// Legacy video (E.4.3.1).
const FRAME_KEY = 1;
const FRAME_COMMAND = 5;
const CODEC_AVC = 7;
/** Not in Adobe's spec: the CodecID some Chinese servers and forks use for HEVC. */
const CODEC_HEVC_LEGACY = 12;

// Enhanced video packet types (E-RTMP v2, ExVideoTagHeader).
const VPT_SEQUENCE_START = 0;
const VPT_CODED_FRAMES = 1;
const VPT_CODED_FRAMES_X = 3;
const VPT_METADATA = 4;
const VPT_MPEG2TS_SEQUENCE_START = 5;
const VPT_MULTITRACK = 6;
const VPT_MOD_EX = 7;

// Legacy audio (E.4.2.1).
const SOUND_MP3 = 2;
const SOUND_EX_HEADER = 9;
const SOUND_AAC = 10;
const SOUND_MP3_8K = 14;

// Enhanced audio packet types (E-RTMP v2, ExAudioTagHeader).
const APT_SEQUENCE_START = 0;
const APT_CODED_FRAMES = 1;
const APT_MULTITRACK = 5;
const APT_MOD_EX = 7;

const MANY_TRACKS_MANY_CODECS = 2;

function fourccCode(s: string): number {
  return ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>> 0;
}

const FOURCC_AVC1 = fourccCode('avc1');
const FOURCC_HVC1 = fourccCode('hvc1');
const FOURCC_AV01 = fourccCode('av01');
const FOURCC_VP09 = fourccCode('vp09');
const FOURCC_VP08 = fourccCode('vp08');
const FOURCC_OPUS = fourccCode('Opus');
const FOURCC_MP4A = fourccCode('mp4a');
const FOURCC_AC3 = fourccCode('ac-3');
const FOURCC_EAC3 = fourccCode('ec-3');
const FOURCC_FLAC = fourccCode('fLaC');
const FOURCC_MP3 = fourccCode('.mp3');

function tooShort(kind: string, what: string, need: number, have: number): ProtocolError {
  return new ProtocolError('FLV_MALFORMED', `${kind} tag too short for ${what}: need ${need} bytes, have ${have}`);
}

/** Known FourCCs map to string constants so the common case allocates nothing. */
function fourccString(p: Buffer, at: number, code: number): string {
  switch (code) {
    case FOURCC_AVC1: return 'avc1';
    case FOURCC_HVC1: return 'hvc1';
    case FOURCC_AV01: return 'av01';
    case FOURCC_VP09: return 'vp09';
    case FOURCC_VP08: return 'vp08';
    case FOURCC_OPUS: return 'Opus';
    case FOURCC_MP4A: return 'mp4a';
    case FOURCC_AC3: return 'ac-3';
    case FOURCC_EAC3: return 'ec-3';
    case FOURCC_FLAC: return 'fLaC';
    case FOURCC_MP3: return '.mp3';
    default: return p.toString('latin1', at, at + 4);
  }
}

function videoCodecOf(code: number): VideoCodec {
  switch (code) {
    case FOURCC_AVC1: return 'avc';
    case FOURCC_HVC1: return 'hevc';
    case FOURCC_AV01: return 'av1';
    case FOURCC_VP09: return 'vp9';
    case FOURCC_VP08: return 'vp8';
    default: return 'other';
  }
}

function audioCodecOf(code: number): AudioCodec {
  switch (code) {
    case FOURCC_MP4A: return 'aac';
    case FOURCC_MP3: return 'mp3';
    case FOURCC_OPUS: return 'opus';
    case FOURCC_AC3: return 'ac3';
    case FOURCC_EAC3: return 'eac3';
    case FOURCC_FLAC: return 'flac';
    default: return 'other';
  }
}

/**
 * E-RTMP v2 ModEx: while the packet type is ModEx, a modifier follows (size UI8 + 1, or
 * UI16 + 1 when the UI8 says 256), then a byte whose low nibble is the real packet type.
 * Returns the offset after the modifiers; the resolved packet type is the low nibble of
 * the byte just before it (byte 0 when there were none). Each round consumes at least
 * three bytes, so the loop ends with the buffer.
 */
function skipModEx(p: Buffer, modEx: number, kind: string): number {
  let pos = 1;
  let packetType = (p[0] as number) & 0x0f;
  while (packetType === modEx) {
    if (p.length < pos + 1) throw tooShort(kind, 'ModEx size', pos + 1, p.length);
    let size = (p[pos] as number) + 1;
    pos += 1;
    if (size === 256) {
      if (p.length < pos + 2) throw tooShort(kind, 'ModEx size', pos + 2, p.length);
      size = p.readUInt16BE(pos) + 1;
      pos += 2;
    }
    if (p.length < pos + size + 1) throw tooShort(kind, 'ModEx data', pos + size + 1, p.length);
    pos += size;
    packetType = (p[pos] as number) & 0x0f;
    pos += 1;
  }
  return pos;
}

/** A picture (CodedFrames or CodedFramesX), as players count frames: not a header, end of sequence, metadata or command. */
export function isCodedVideo(info: VideoTagInfo): boolean {
  return info.packetType === VPT_CODED_FRAMES || info.packetType === VPT_CODED_FRAMES_X;
}

/** An audio frame: legacy non-AAC tags have no packet type; AAC raw and enhanced CodedFrames are 1. */
export function isCodedAudio(info: AudioTagInfo): boolean {
  return info.packetType === undefined || info.packetType === APT_CODED_FRAMES;
}

export function parseVideoTag(payload: Buffer): VideoTagInfo {
  const len = payload.length;
  if (len < 1) throw tooShort('video', 'its header', 1, 0);
  const b0 = payload[0] as number;
  if ((b0 & 0x80) !== 0) return parseExVideo(payload, b0);

  const frameType = b0 >> 4;
  const codecId = b0 & 0x0f;
  const isCommandFrame = frameType === FRAME_COMMAND;
  if (codecId === CODEC_AVC || codecId === CODEC_HEVC_LEGACY) {
    const codec: VideoCodec = codecId === CODEC_AVC ? 'avc' : 'hevc';
    // A command frame carries a UI8 command instead of the AVC header (E.4.3.1); encoders
    // send it as two bytes, so it is not held to the five-byte AVC header.
    if (isCommandFrame) {
      return { enhanced: false, codec, codecId, frameType, packetType: -1, isKeyframe: false, isSequenceHeader: false, isCommandFrame };
    }
    // AVCPacketType UI8 + CompositionTime SI24.
    if (len < 5) throw tooShort('video', 'the AVC header', 5, len);
    const packetType = payload[1] as number;
    return {
      enhanced: false,
      codec,
      codecId,
      frameType,
      packetType,
      isKeyframe: frameType === FRAME_KEY && packetType === VPT_CODED_FRAMES,
      isSequenceHeader: packetType === VPT_SEQUENCE_START,
      isCommandFrame: false,
    };
  }
  return {
    enhanced: false,
    codec: 'other',
    codecId,
    frameType,
    packetType: isCommandFrame ? -1 : VPT_CODED_FRAMES,
    isKeyframe: frameType === FRAME_KEY,
    isSequenceHeader: false,
    isCommandFrame,
  };
}

function parseExVideo(p: Buffer, b0: number): VideoTagInfo {
  const len = p.length;
  const frameType = (b0 >> 4) & 0x07;
  let pos = skipModEx(p, VPT_MOD_EX, 'video');
  let packetType = (p[pos - 1] as number) & 0x0f;

  // E-RTMP v2: a command frame (unless Metadata, which ignores frameType) carries a
  // VideoCommand UI8 and no FourCC or body.
  if (frameType === FRAME_COMMAND && packetType !== VPT_METADATA) {
    if (len < pos + 1) throw tooShort('video', 'the video command', pos + 1, len);
    return { enhanced: true, codec: 'other', frameType, packetType, isKeyframe: false, isSequenceHeader: false, isCommandFrame: true };
  }

  let multitrackType: number | undefined;
  if (packetType === VPT_MULTITRACK) {
    if (len < pos + 1) throw tooShort('video', 'the multitrack header', pos + 1, len);
    const b = p[pos] as number;
    pos += 1;
    multitrackType = b >> 4;
    packetType = b & 0x0f;
  }

  let codec: VideoCodec = 'other';
  let fourcc: string | undefined;
  // ManyTracksManyCodecs puts a FourCC in each track instead of one here.
  if (multitrackType !== MANY_TRACKS_MANY_CODECS) {
    if (len < pos + 4) throw tooShort('video', 'the FourCC', pos + 4, len);
    const code = p.readUInt32BE(pos);
    codec = videoCodecOf(code);
    fourcc = fourccString(p, pos, code);
  }
  const info: VideoTagInfo = {
    enhanced: true,
    codec,
    fourcc,
    frameType,
    packetType,
    isKeyframe: frameType === FRAME_KEY && (packetType === VPT_CODED_FRAMES || packetType === VPT_CODED_FRAMES_X),
    isSequenceHeader: packetType === VPT_SEQUENCE_START || packetType === VPT_MPEG2TS_SEQUENCE_START,
    isCommandFrame: false,
  };
  if (multitrackType !== undefined) info.multitrackType = multitrackType;
  return info;
}

export function parseAudioTag(payload: Buffer): AudioTagInfo {
  const len = payload.length;
  if (len < 1) throw tooShort('audio', 'its header', 1, 0);
  const b0 = payload[0] as number;
  const soundFormat = b0 >> 4;
  if (soundFormat === SOUND_EX_HEADER) return parseExAudio(payload);
  if (soundFormat === SOUND_AAC) {
    if (len < 2) throw tooShort('audio', 'the AAC packet type', 2, len);
    const packetType = payload[1] as number;
    return { enhanced: false, codec: 'aac', soundFormat, packetType, isSequenceHeader: packetType === 0 };
  }
  const codec: AudioCodec = soundFormat === SOUND_MP3 || soundFormat === SOUND_MP3_8K ? 'mp3' : 'other';
  return { enhanced: false, codec, soundFormat, isSequenceHeader: false };
}

function parseExAudio(p: Buffer): AudioTagInfo {
  const len = p.length;
  let pos = skipModEx(p, APT_MOD_EX, 'audio');
  let packetType = (p[pos - 1] as number) & 0x0f;
  let multitrackType: number | undefined;
  if (packetType === APT_MULTITRACK) {
    if (len < pos + 1) throw tooShort('audio', 'the multitrack header', pos + 1, len);
    const b = p[pos] as number;
    pos += 1;
    multitrackType = b >> 4;
    packetType = b & 0x0f;
  }
  let codec: AudioCodec = 'other';
  let fourcc: string | undefined;
  if (multitrackType !== MANY_TRACKS_MANY_CODECS) {
    if (len < pos + 4) throw tooShort('audio', 'the FourCC', pos + 4, len);
    const code = p.readUInt32BE(pos);
    codec = audioCodecOf(code);
    fourcc = fourccString(p, pos, code);
  }
  return { enhanced: true, codec, soundFormat: SOUND_EX_HEADER, fourcc, packetType, isSequenceHeader: packetType === APT_SEQUENCE_START };
}

// ---------------------------------------------------------------------------------------
// AVC resolution (ITU-T H.264, 7.3.2.1.1 seq_parameter_set_data; ISO/IEC 14496-15 5.3.3.1
// AVCDecoderConfigurationRecord)
// ---------------------------------------------------------------------------------------

/** profile_idc values whose SPS carries chroma_format_idc and bit depths (7.3.2.1.1). */
function hasChromaInfo(profile: number): boolean {
  switch (profile) {
    case 100: case 110: case 122: case 244: case 44: case 83: case 86: case 118: case 128: case 138: case 139: case 134: case 135:
      return true;
    default:
      return false;
  }
}

/** scaling_list() syntax (7.3.2.1.1.1), read only to step over it. */
function skipScalingList(r: RbspReader, size: number): void {
  let lastScale = 8;
  let nextScale = 8;
  for (let j = 0; j < size; j++) {
    if (nextScale !== 0) {
      const delta = r.se();
      nextScale = (((lastScale + delta) % 256) + 256) % 256;
    }
    lastScale = nextScale === 0 ? lastScale : nextScale;
  }
}

/**
 * Locates the AVCDecoderConfigurationRecord: accepts the whole FLV video tag body (legacy
 * 0x?7 with AVCPacketType 0 and a 5-byte header, or enhanced SequenceStart 'avc1' with a
 * 5-byte header) or the bare record (configurationVersion 1). The forms cannot be
 * confused: a legacy AVC header byte has low nibble 7, an enhanced one the top bit set.
 */
function recordOffset(p: Buffer): number {
  const b0 = p[0];
  if (b0 === undefined) return -1;
  if (b0 === 1) return 0;
  if (p.length < 5) return -1;
  if ((b0 & 0x80) !== 0) {
    return (b0 & 0x0f) === VPT_SEQUENCE_START && p.readUInt32BE(1) === FOURCC_AVC1 ? 5 : -1;
  }
  return (b0 & 0x0f) === CODEC_AVC && p[1] === 0 ? 5 : -1;
}

const MAX_DIMENSION = 0xffff;

/**
 * Width/height from the first SPS of an AVC sequence header. Accepts the FLV video tag
 * body or the bare AVCDecoderConfigurationRecord. Returns undefined on anything it
 * cannot parse; never throws.
 */
export function avcResolution(
  sequenceHeaderPayload: Buffer,
): { width: number; height: number; profile: number; level: number } | undefined {
  try {
    return parseAvcRecord(sequenceHeaderPayload);
  } catch {
    return undefined;
  }
}

function parseAvcRecord(p: Buffer): { width: number; height: number; profile: number; level: number } | undefined {
  const rec = recordOffset(p);
  // configurationVersion, profile, compatibility, level, lengthSizeMinusOne, numOfSPS, u16 length.
  if (rec < 0 || p.length < rec + 8 || p[rec] !== 1) return undefined;
  if (((p[rec + 5] as number) & 0x1f) === 0) return undefined;
  const spsLen = p.readUInt16BE(rec + 6);
  const spsStart = rec + 8;
  const spsEnd = spsStart + spsLen;
  if (spsLen < 4 || spsEnd > p.length) return undefined;
  if (((p[spsStart] as number) & 0x1f) !== 7) return undefined; // nal_unit_type 7: SPS

  const r = new RbspReader(p, spsStart + 1, spsEnd);
  const profile = r.u(8);
  r.u(8); // constraint_set flags + reserved_zero_2bits
  const level = r.u(8);
  r.ue(); // seq_parameter_set_id

  let chromaFormatIdc = 1; // 7.4.2.1.1: inferred 4:2:0 when absent
  let separateColourPlane = 0;
  if (hasChromaInfo(profile)) {
    chromaFormatIdc = r.ue();
    if (chromaFormatIdc > 3) return undefined;
    if (chromaFormatIdc === 3) separateColourPlane = r.u1();
    r.ue(); // bit_depth_luma_minus8
    r.ue(); // bit_depth_chroma_minus8
    r.u1(); // qpprime_y_zero_transform_bypass_flag
    if (r.u1() === 1) {
      // seq_scaling_matrix_present_flag: 6 4x4 lists, then 2 (or 6 for 4:4:4) 8x8 lists.
      const lists = chromaFormatIdc === 3 ? 12 : 8;
      for (let i = 0; i < lists; i++) {
        if (r.u1() === 1) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === 0) {
    r.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType === 1) {
    r.u1(); // delta_pic_order_always_zero_flag
    r.se(); // offset_for_non_ref_pic
    r.se(); // offset_for_top_to_bottom_field
    const cycle = r.ue();
    if (cycle > 255) return undefined; // 7.4.2.1.1 range
    for (let i = 0; i < cycle; i++) r.se();
  } else if (pocType !== 2) {
    return undefined;
  }
  r.ue(); // max_num_ref_frames
  r.u1(); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.u1();
  if (frameMbsOnly === 0) r.u1(); // mb_adaptive_frame_field_flag
  r.u1(); // direct_8x8_inference_flag

  let cropLeft = 0;
  let cropRight = 0;
  let cropTop = 0;
  let cropBottom = 0;
  if (r.u1() === 1) {
    cropLeft = r.ue();
    cropRight = r.ue();
    cropTop = r.ue();
    cropBottom = r.ue();
  }

  // Crop units, 7.4.2.1.1 (equations 7-19 .. 7-22) with SubWidthC/SubHeightC from table 6-1.
  const chromaArrayType = separateColourPlane === 1 ? 0 : chromaFormatIdc;
  let cropUnitX = 1;
  let cropUnitY = 2 - frameMbsOnly;
  if (chromaArrayType !== 0) {
    const subWidthC = chromaFormatIdc === 3 ? 1 : 2;
    const subHeightC = chromaFormatIdc === 1 ? 2 : 1;
    cropUnitX = subWidthC;
    cropUnitY = subHeightC * (2 - frameMbsOnly);
  }
  const width = widthMbs * 16 - cropUnitX * (cropLeft + cropRight);
  const height = (2 - frameMbsOnly) * heightMapUnits * 16 - cropUnitY * (cropTop + cropBottom);
  if (!(width > 0 && height > 0 && width <= MAX_DIMENSION && height <= MAX_DIMENSION)) return undefined;
  return { width, height, profile, level };
}
