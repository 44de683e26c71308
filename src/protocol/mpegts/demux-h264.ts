/**
 * H.264 specifics for the demuxer: NAL unit roles (ITU-T H.264 table 7-1), parameter set
 * ids (7.3.2.1.1, 7.3.2.2), the AVCDecoderConfigurationRecord (ISO/IEC 14496-15,
 * 5.3.3.1) and the legacy FLV AVC video tag headers (FLV spec v10.1, E.4.3.1).
 */
import { RbspEnd, RbspReader } from './demux-nal.js';
import { clampSi24, type NalRole, type VideoCodecRules } from './demux-video.js';

const NAL_IDR = 5;
const NAL_SPS = 7;
const NAL_PPS = 8;
const NAL_AUD = 9;
const NAL_FILLER = 12;

/** 7.4.2.1.1 / 7.4.2.2 value ranges. */
const MAX_SPS_ID = 31;
const MAX_PPS_ID = 255;

/** profile_idc values whose SPS carries chroma_format_idc and bit depths (7.3.2.1.1). */
const CHROMA_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);
/** 14496-15 5.3.3.1.2: the record's chroma/bit-depth trailer is present for these profiles. */
const TRAILER_PROFILES = new Set([100, 110, 122, 144]);

const nalType = (nal: Buffer): number => (nal[0] as number) & 0x1f;

function readUe(nal: Buffer, skipBytes: number): number | undefined {
  try {
    return new RbspReader(nal, 1 + skipBytes).ue();
  } catch (err) {
    if (err instanceof RbspEnd) return undefined;
    throw err;
  }
}

interface SpsInfo {
  profile: number;
  compatibility: number;
  level: number;
  chromaFormatIdc: number;
  bitDepthLumaMinus8: number;
  bitDepthChromaMinus8: number;
}

function parseSps(sps: Buffer): SpsInfo | undefined {
  try {
    const r = new RbspReader(sps, 1);
    const profile = r.u(8);
    const compatibility = r.u(8);
    const level = r.u(8);
    r.ue(); // seq_parameter_set_id
    let chromaFormatIdc = 1; // 7.4.2.1.1: 4:2:0 when absent
    let bitDepthLumaMinus8 = 0;
    let bitDepthChromaMinus8 = 0;
    if (CHROMA_PROFILES.has(profile)) {
      chromaFormatIdc = r.ue();
      if (chromaFormatIdc === 3) r.u1(); // separate_colour_plane_flag
      bitDepthLumaMinus8 = r.ue();
      bitDepthChromaMinus8 = r.ue();
      if (chromaFormatIdc > 3 || bitDepthLumaMinus8 > 6 || bitDepthChromaMinus8 > 6) return undefined;
    }
    return { profile, compatibility, level, chromaFormatIdc, bitDepthLumaMinus8, bitDepthChromaMinus8 };
  } catch (err) {
    if (err instanceof RbspEnd) return undefined;
    throw err;
  }
}

function lengthPrefixed(units: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const u of units) {
    const len = Buffer.allocUnsafe(2);
    len.writeUInt16BE(u.length);
    out.push(len, u);
  }
  return out;
}

/** The AVCDecoderConfigurationRecord (14496-15 5.3.3.1) for these SPS and PPS units. */
export function avcDecoderConfigurationRecord(spsList: Buffer[], ppsList: Buffer[]): Buffer | undefined {
  const first = spsList[0];
  if (first === undefined || ppsList.length === 0) return undefined;
  const info = parseSps(first);
  if (info === undefined) return undefined;
  // numOfSequenceParameterSets is 5 bits; numOfPictureParameterSets 8 bits.
  const sps = spsList.slice(0, 31);
  const pps = ppsList.slice(0, 255);
  const parts: Buffer[] = [
    Buffer.from([1, info.profile, info.compatibility, info.level, 0xfc | 3, 0xe0 | sps.length]),
    ...lengthPrefixed(sps),
    Buffer.from([pps.length]),
    ...lengthPrefixed(pps),
  ];
  if (TRAILER_PROFILES.has(info.profile)) {
    parts.push(Buffer.from([0xfc | info.chromaFormatIdc, 0xf8 | info.bitDepthLumaMinus8, 0xf8 | info.bitDepthChromaMinus8, 0]));
  }
  return Buffer.concat(parts);
}

function byType(params: ReadonlyMap<string, Buffer>, type: number): Buffer[] {
  const out: Buffer[] = [];
  for (const nal of params.values()) if (nalType(nal) === type) out.push(nal);
  return out;
}

export const h264Rules: VideoCodecRules = {
  role(nal: Buffer): NalRole {
    // forbidden_zero_bit set: the unit is damaged.
    if (((nal[0] as number) & 0x80) !== 0) return 'drop';
    switch (nalType(nal)) {
      case NAL_AUD: case NAL_FILLER: return 'drop';
      case NAL_SPS: case NAL_PPS: return 'param';
      case NAL_IDR: return 'key';
      default: return 'frame';
    }
  },

  paramSetKey(nal: Buffer): string | undefined {
    const type = nalType(nal);
    // The SPS id follows profile_idc, the constraint flags and level_idc; the PPS id comes first.
    const id = readUe(nal, type === NAL_SPS ? 3 : 0);
    if (id === undefined || id > (type === NAL_SPS ? MAX_SPS_ID : MAX_PPS_ID)) return undefined;
    return `${type}:${id}`;
  },

  sequenceHeader(params: ReadonlyMap<string, Buffer>): Buffer | undefined {
    const record = avcDecoderConfigurationRecord(byType(params, NAL_SPS), byType(params, NAL_PPS));
    // Keyframe + AVC (0x17), AVCPacketType 0 (sequence header), CompositionTime 0.
    return record === undefined ? undefined : Buffer.concat([Buffer.from([0x17, 0, 0, 0, 0]), record]);
  },

  frameHeader(keyframe: boolean, compositionTimeMs: number): Buffer {
    const h = Buffer.allocUnsafe(5);
    h[0] = keyframe ? 0x17 : 0x27;
    h[1] = 1; // AVCPacketType 1: NALUs
    h.writeIntBE(clampSi24(compositionTimeMs), 2, 3);
    return h;
  },
};
