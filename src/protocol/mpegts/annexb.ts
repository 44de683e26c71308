/**
 * Length-prefixed NAL units (the ISO/IEC 14496-15 sample format FLV carries) to the
 * Annex B byte stream MPEG-TS carries (ISO/IEC 13818-1 2.14 for AVC, 2.17 for HEVC):
 * each access unit starts with an access unit delimiter, and random access points get
 * the parameter sets in front so a decoder can start there.
 *
 * The result is a list of Buffers (start codes plus views of the input) that the packet
 * writer gathers straight into TS packets, so the frame is copied once.
 */
import { ProtocolError } from '../../lib/errors.js';
import type { MuxVideoCodec } from './mux-video-config.js';

const START_CODE = Buffer.from([0x00, 0x00, 0x00, 0x01]);

/** H.264 AUD (nal_unit_type 9), primary_pic_type 7 (any slice type), then rbsp stop bit. */
const AVC_AUD = Buffer.from([0x00, 0x00, 0x00, 0x01, 0x09, 0xf0]);
/** H.265 AUD (nal_unit_type 35, layer 0, TemporalId 0), pic_type 2 (any), then stop bit. */
const HEVC_AUD = Buffer.from([0x00, 0x00, 0x00, 0x01, 0x46, 0x01, 0x50]);

const AVC_NAL_IDR = 5;
const AVC_NAL_SPS = 7;
const AVC_NAL_AUD = 9;
const HEVC_NAL_IRAP_FIRST = 16; // BLA_W_LP .. RSV_IRAP_VCL23 (H.265 table 7-1)
const HEVC_NAL_IRAP_LAST = 23;
const HEVC_NAL_VPS = 32;
const HEVC_NAL_AUD = 35;
/**
 * Parameter sets up to this size go before every keyframe, however small the frame.
 * Real ones are far below it (x264 about 40 bytes, x265 VPS+SPS+PPS about 85, more with
 * HDR metadata in the VUI) and must reach every keyframe: a static slate can have IDR
 * pictures of 100 bytes. Larger sets go only before frames at least twice their size.
 */
const ALWAYS_REPEATED_BYTES = 1024;

export function annexBParameterSets(sets: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const s of sets) parts.push(START_CODE, s);
  return Buffer.concat(parts);
}

export interface AnnexBAccessUnit {
  segments: Buffer[];
  length: number;
  /** The frame holds an IDR (H.264) or IRAP (HEVC) picture. */
  randomAccess: boolean;
}

function nalType(codec: MuxVideoCodec, firstByte: number): number {
  return codec === 'avc' ? firstByte & 0x1f : (firstByte >> 1) & 0x3f;
}

/**
 * Converts one frame. `keyframe` is what the FLV header says; the NAL types are checked
 * too, because parameter sets must precede every IDR/IRAP picture whatever the header
 * claims, unless they are over ALWAYS_REPEATED_BYTES and more than half the frame's size
 * (only a hostile stream has those). Parameter sets already in the frame are not
 * duplicated, and AUDs in the input are dropped: there must be exactly one, first
 * (H.264 7.4.1.2.3, H.265 7.4.2.4.4).
 */
export function toAnnexB(
  data: Buffer,
  lengthSize: number,
  codec: MuxVideoCodec,
  parameterSets: Buffer,
  keyframe: boolean,
): AnnexBAccessUnit {
  const nalus: Buffer[] = [];
  let randomAccess = false;
  let hasParameterSets = false;
  let pos = 0;
  while (pos < data.length) {
    if (pos + lengthSize > data.length) throw new ProtocolError('FLV_MALFORMED', 'video frame: truncated NAL unit length');
    const len = data.readUIntBE(pos, lengthSize);
    pos += lengthSize;
    if (len > data.length - pos) throw new ProtocolError('FLV_MALFORMED', `video frame: NAL unit of ${len} bytes overruns the frame`);
    if (len === 0) continue;
    const nal = data.subarray(pos, pos + len);
    pos += len;
    const type = nalType(codec, nal[0] as number);
    if (codec === 'avc') {
      if (type === AVC_NAL_AUD) continue;
      if (type === AVC_NAL_IDR) randomAccess = true;
      if (type === AVC_NAL_SPS) hasParameterSets = true;
    } else {
      if (type === HEVC_NAL_AUD) continue;
      if (type >= HEVC_NAL_IRAP_FIRST && type <= HEVC_NAL_IRAP_LAST) randomAccess = true;
      if (type === HEVC_NAL_VPS) hasParameterSets = true;
    }
    nalus.push(nal);
  }

  const aud = codec === 'avc' ? AVC_AUD : HEVC_AUD;
  const segments: Buffer[] = [aud];
  let length = aud.length;
  // Bounded by the frame they precede: a publisher cannot make every tiny keyframe carry
  // a huge sequence header to each SRT reader.
  const repeatable = parameterSets.length <= Math.max(ALWAYS_REPEATED_BYTES, data.length / 2);
  if ((randomAccess || keyframe) && !hasParameterSets && parameterSets.length > 0 && repeatable) {
    segments.push(parameterSets);
    length += parameterSets.length;
  }
  for (const nal of nalus) {
    segments.push(START_CODE, nal);
    length += START_CODE.length + nal.length;
  }
  return { segments, length, randomAccess };
}
