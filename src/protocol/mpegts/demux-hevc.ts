/**
 * HEVC specifics for the demuxer: NAL unit roles (ITU-T H.265 table 7-1), parameter set
 * ids (7.3.2.1 - 7.3.2.3), the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15,
 * 8.3.3.1) and Enhanced RTMP video tag headers (ExVideoTagHeader, FourCC 'hvc1').
 */
import { RbspEnd, RbspReader } from './demux-nal.js';
import { clampSi24, type NalRole, type VideoCodecRules } from './demux-video.js';

const NAL_IRAP_FIRST = 16; // BLA_W_LP
const NAL_IRAP_LAST = 23; // RSV_IRAP_VCL23
const NAL_VPS = 32;
const NAL_SPS = 33;
const NAL_PPS = 34;
const NAL_AUD = 35;
const NAL_FILLER = 38;

/** 7.4.3.x value ranges. */
const MAX_SPS_ID = 15;
const MAX_PPS_ID = 63;

// E-RTMP: byte 0 is IsExHeader | FrameType << 4 | PacketType.
const EX_HEADER = 0x80;
const FRAME_KEY = 1;
const FRAME_INTER = 2;
const PACKET_SEQUENCE_START = 0;
const PACKET_CODED_FRAMES = 1;
const PACKET_CODED_FRAMES_X = 3;
const FOURCC_HVC1 = Buffer.from('hvc1', 'latin1');

const nalType = (nal: Buffer): number => ((nal[0] as number) >> 1) & 0x3f;

interface SpsInfo {
  id: number;
  maxSubLayersMinus1: number;
  temporalIdNesting: number;
  /** general_profile_space .. general_level_idc: the 12 bytes the record copies. */
  generalPtl: Buffer;
  chromaFormatIdc: number;
  bitDepthLumaMinus8: number;
  bitDepthChromaMinus8: number;
}

/** Reads a NAL unit's RBSP from after the 2-byte header; undefined if it ends too soon. */
function withReader<T>(nal: Buffer, read: (r: RbspReader) => T): T | undefined {
  try {
    return read(new RbspReader(nal, 2));
  } catch (err) {
    if (err instanceof RbspEnd) return undefined;
    throw err;
  }
}

/** seq_parameter_set_rbsp up to the bit depths (7.3.2.2.1), with profile_tier_level (7.3.3). */
function parseSps(sps: Buffer): SpsInfo | undefined {
  return withReader(sps, (r) => {
    r.u(4); // sps_video_parameter_set_id
    const maxSubLayersMinus1 = r.u(3);
    if (maxSubLayersMinus1 > 6) return undefined; // 7.4.3.2.1 range
    const temporalIdNesting = r.u1();
    const generalPtl = Buffer.allocUnsafe(12);
    for (let i = 0; i < 12; i++) generalPtl[i] = r.u(8);
    const subProfile: number[] = [];
    const subLevel: number[] = [];
    for (let i = 0; i < maxSubLayersMinus1; i++) {
      subProfile.push(r.u1());
      subLevel.push(r.u1());
    }
    if (maxSubLayersMinus1 > 0) for (let i = maxSubLayersMinus1; i < 8; i++) r.u(2);
    for (let i = 0; i < maxSubLayersMinus1; i++) {
      if (subProfile[i] === 1) for (let k = 0; k < 11; k++) r.u(8); // 88 bits
      if (subLevel[i] === 1) r.u(8);
    }
    const id = r.ue();
    const chromaFormatIdc = r.ue();
    if (chromaFormatIdc === 3) r.u1(); // separate_colour_plane_flag
    r.ue(); // pic_width_in_luma_samples
    r.ue(); // pic_height_in_luma_samples
    if (r.u1() === 1) for (let i = 0; i < 4; i++) r.ue(); // conformance window offsets
    const bitDepthLumaMinus8 = r.ue();
    const bitDepthChromaMinus8 = r.ue();
    if (id > MAX_SPS_ID || chromaFormatIdc > 3 || bitDepthLumaMinus8 > 8 || bitDepthChromaMinus8 > 8) return undefined;
    return { id, maxSubLayersMinus1, temporalIdNesting, generalPtl, chromaFormatIdc, bitDepthLumaMinus8, bitDepthChromaMinus8 };
  });
}

/** The HEVCDecoderConfigurationRecord (14496-15 8.3.3.1.2) for these parameter sets. */
export function hevcDecoderConfigurationRecord(vps: Buffer[], sps: Buffer[], pps: Buffer[]): Buffer | undefined {
  const first = sps[0];
  if (first === undefined || vps.length === 0 || pps.length === 0) return undefined;
  const info = parseSps(first);
  if (info === undefined) return undefined;
  const head = Buffer.alloc(23);
  head[0] = 1; // configurationVersion
  info.generalPtl.copy(head, 1);
  head.writeUInt16BE(0xf000, 13); // reserved + min_spatial_segmentation_idc 0 (unknown)
  head[15] = 0xfc; // reserved + parallelismType 0 (unknown)
  head[16] = 0xfc | info.chromaFormatIdc;
  head[17] = 0xf8 | info.bitDepthLumaMinus8;
  head[18] = 0xf8 | info.bitDepthChromaMinus8;
  head.writeUInt16BE(0, 19); // avgFrameRate: unspecified
  // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
  head[21] = ((info.maxSubLayersMinus1 + 1) << 3) | (info.temporalIdNesting << 2) | 3;
  head[22] = 3; // numOfArrays
  const parts: Buffer[] = [head];
  for (const [type, units] of [[NAL_VPS, vps], [NAL_SPS, sps], [NAL_PPS, pps]] as const) {
    const arrayHead = Buffer.allocUnsafe(3);
    arrayHead[0] = 0x80 | type; // array_completeness 1: 'hvc1' keeps parameter sets out of band
    arrayHead.writeUInt16BE(units.length, 1);
    parts.push(arrayHead);
    for (const u of units) {
      const len = Buffer.allocUnsafe(2);
      len.writeUInt16BE(u.length);
      parts.push(len, u);
    }
  }
  return Buffer.concat(parts);
}

function byType(params: ReadonlyMap<string, Buffer>, type: number): Buffer[] {
  const out: Buffer[] = [];
  for (const nal of params.values()) if (nalType(nal) === type) out.push(nal);
  return out;
}

export const hevcRules: VideoCodecRules = {
  role(nal: Buffer): NalRole {
    // Too short for the 2-byte NAL header, or forbidden_zero_bit set: damaged.
    if (nal.length < 2 || ((nal[0] as number) & 0x80) !== 0) return 'drop';
    const type = nalType(nal);
    if (type === NAL_AUD || type === NAL_FILLER) return 'drop';
    if (type === NAL_VPS || type === NAL_SPS || type === NAL_PPS) return 'param';
    return type >= NAL_IRAP_FIRST && type <= NAL_IRAP_LAST ? 'key' : 'frame';
  },

  paramSetKey(nal: Buffer): string | undefined {
    const type = nalType(nal);
    let id: number | undefined;
    if (type === NAL_VPS) id = withReader(nal, (r) => r.u(4));
    else if (type === NAL_SPS) id = parseSps(nal)?.id;
    else id = withReader(nal, (r) => r.ue());
    if (id === undefined || (type === NAL_PPS && id > MAX_PPS_ID)) return undefined;
    return `${type}:${id}`;
  },

  sequenceHeader(params: ReadonlyMap<string, Buffer>): Buffer | undefined {
    const record = hevcDecoderConfigurationRecord(byType(params, NAL_VPS), byType(params, NAL_SPS), byType(params, NAL_PPS));
    if (record === undefined) return undefined;
    const head = Buffer.from([EX_HEADER | (FRAME_KEY << 4) | PACKET_SEQUENCE_START]);
    return Buffer.concat([head, FOURCC_HVC1, record]);
  },

  frameHeader(keyframe: boolean, compositionTimeMs: number): Buffer {
    const frameType = (keyframe ? FRAME_KEY : FRAME_INTER) << 4;
    // CodedFramesX: the same as CodedFrames with a composition time of 0, 3 bytes shorter.
    if (compositionTimeMs === 0) {
      return Buffer.concat([Buffer.from([EX_HEADER | frameType | PACKET_CODED_FRAMES_X]), FOURCC_HVC1]);
    }
    const h = Buffer.allocUnsafe(8);
    h[0] = EX_HEADER | frameType | PACKET_CODED_FRAMES;
    FOURCC_HVC1.copy(h, 1);
    h.writeIntBE(clampSi24(compositionTimeMs), 5, 3);
    return h;
  },
};
