/**
 * Decoder configuration records from FLV video sequence headers, reduced to what the
 * muxer needs: the NAL length size of the frames that follow and the parameter sets,
 * already in Annex B form, to put in front of random access points (an MPEG-TS decoder
 * joining mid-stream gets them nowhere else).
 */
import { ProtocolError } from '../../lib/errors.js';
import { annexBParameterSets } from './annexb.js';

export type MuxVideoCodec = 'avc' | 'hevc';

export interface MuxVideoConfig {
  codec: MuxVideoCodec;
  /** Bytes of the big-endian length before each NAL unit in a frame: 1, 2 or 4. */
  lengthSize: number;
  /** Start-code-prefixed parameter sets (AVC: SPS then PPS; HEVC: VPS, SPS, PPS). */
  parameterSets: Buffer;
}

function malformed(what: string): ProtocolError {
  return new ProtocolError('FLV_MALFORMED', `video sequence header: ${what}`);
}

/** Reads `count` (u16 length, bytes) entries; returns the offset after them. */
function readNalList(rec: Buffer, pos: number, count: number, into: Buffer[]): number {
  for (let i = 0; i < count; i++) {
    if (pos + 2 > rec.length) throw malformed('truncated parameter set length');
    const len = rec.readUInt16BE(pos);
    pos += 2;
    if (pos + len > rec.length) throw malformed('truncated parameter set');
    if (len > 0) into.push(rec.subarray(pos, pos + len));
    pos += len;
  }
  return pos;
}

/**
 * lengthSizeMinusOne 2 (three bytes) is not allowed by ISO/IEC 14496-15; rejecting it
 * here keeps garbage from being read as huge NAL lengths later.
 */
function lengthSizeOf(minusOne: number): number {
  if (minusOne === 2) throw malformed('lengthSizeMinusOne 2 is reserved');
  return minusOne + 1;
}

/** AVCDecoderConfigurationRecord, ISO/IEC 14496-15 5.3.3.1. */
export function parseAvcConfig(rec: Buffer): MuxVideoConfig {
  if (rec.length < 7) throw malformed('AVC record too short');
  if (rec[0] !== 1) throw malformed(`AVC configurationVersion ${rec[0]}`);
  const lengthSize = lengthSizeOf((rec[4] as number) & 0x03);
  const sets: Buffer[] = [];
  let pos = readNalList(rec, 6, (rec[5] as number) & 0x1f, sets);
  if (pos >= rec.length) throw malformed('AVC record has no PPS count');
  const ppsCount = rec[pos] as number;
  pos = readNalList(rec, pos + 1, ppsCount, sets);
  // Anything after (chroma format and SPS extensions for high profiles) is not needed.
  return { codec: 'avc', lengthSize, parameterSets: annexBParameterSets(sets) };
}

const HEVC_NAL_VPS = 32;
export const HEVC_NAL_SPS = 33;
const HEVC_NAL_PPS = 34;
const HEVC_FIXED_PART = 23;

/** The parameter sets of an HEVCDecoderConfigurationRecord by NAL unit type (ISO/IEC 14496-15 8.3.3.1). */
export function hevcParameterSets(rec: Buffer): Map<number, Buffer[]> {
  if (rec.length < HEVC_FIXED_PART) throw malformed('HEVC record too short');
  const numArrays = rec[22] as number;
  const byType = new Map<number, Buffer[]>();
  let pos = HEVC_FIXED_PART;
  for (let i = 0; i < numArrays; i++) {
    if (pos + 3 > rec.length) throw malformed('truncated NAL array header');
    const type = (rec[pos] as number) & 0x3f;
    const count = rec.readUInt16BE(pos + 1);
    const list = byType.get(type) ?? [];
    pos = readNalList(rec, pos + 3, count, list);
    byType.set(type, list);
  }
  return byType;
}

/** HEVCDecoderConfigurationRecord, ISO/IEC 14496-15 8.3.3.1. */
export function parseHevcConfig(rec: Buffer): MuxVideoConfig {
  if (rec.length < HEVC_FIXED_PART) throw malformed('HEVC record too short');
  if (rec[0] !== 1) throw malformed(`HEVC configurationVersion ${rec[0]}`);
  const lengthSize = lengthSizeOf((rec[21] as number) & 0x03);
  const byType = hevcParameterSets(rec);
  // 7.4.2.4.4 of H.265 wants VPS before SPS before PPS; records usually list them so, but
  // the order of arrays in the record is not mandated, so it is imposed here.
  const sets = [HEVC_NAL_VPS, HEVC_NAL_SPS, HEVC_NAL_PPS].flatMap((t) => byType.get(t) ?? []);
  return { codec: 'hevc', lengthSize, parameterSets: annexBParameterSets(sets) };
}
