/**
 * What an MP4 video track needs from an FLV video sequence header: the decoder
 * configuration record (stored verbatim as avcC/hvcC), the NAL length size that frames
 * are checked against, and the picture size for tkhd and the sample entry.
 */
import { avcResolution } from '../flv/tag.js';
import { RbspEnd, RbspReader } from '../bitstream/rbsp-reader.js';
import { ProtocolError } from '../../lib/errors.js';
import { HEVC_NAL_SPS, hevcParameterSets, parseAvcConfig, parseHevcConfig, type MuxVideoCodec } from '../mpegts/mux-video-config.js';

export interface Mp4VideoConfig {
  codec: MuxVideoCodec;
  /** AVCDecoderConfigurationRecord or HEVCDecoderConfigurationRecord, as received. */
  record: Buffer;
  /** Bytes of the length before each NAL unit in a sample: 1, 2 or 4. */
  lengthSize: number;
  /**
   * From the first SPS, cropped. 0 when the SPS cannot be read: the sizes in tkhd and
   * the sample entry are advisory, decoders take theirs from the SPS, so a recording is
   * not refused for it.
   */
  width: number;
  height: number;
}

/** Throws FLV_MALFORMED when the record is not a well-formed AVC/HEVC configuration record. */
export function mp4VideoConfig(codec: MuxVideoCodec, record: Buffer): Mp4VideoConfig {
  const { lengthSize } = codec === 'avc' ? parseAvcConfig(record) : parseHevcConfig(record);
  const size = codec === 'avc' ? avcResolution(record) : hevcResolution(record);
  return { codec, record, lengthSize, width: size?.width ?? 0, height: size?.height ?? 0 };
}

const MAX_DIMENSION = 0xffff;

/** The first SPS of an HEVC record (one too short to hold a NAL header and more does not count). */
function firstHevcSps(rec: Buffer): Buffer | undefined {
  try {
    return hevcParameterSets(rec).get(HEVC_NAL_SPS)?.find((sps) => sps.length > 2);
  } catch (err) {
    if (err instanceof ProtocolError) return undefined;
    throw err;
  }
}

/**
 * pic_width/height_in_luma_samples minus the conformance window, ITU-T H.265 7.3.2.2.1
 * (with profile_tier_level, 7.3.3) and 7.4.3.2.1 (SubWidthC/SubHeightC from table 6-1).
 */
export function hevcResolution(rec: Buffer): { width: number; height: number } | undefined {
  const sps = firstHevcSps(rec);
  if (sps === undefined) return undefined;
  try {
    const r = new RbspReader(sps, 2); // after the two-byte NAL unit header
    r.u(4); // sps_video_parameter_set_id
    const maxSubLayersMinus1 = r.u(3);
    if (maxSubLayersMinus1 > 6) return undefined;
    r.u1(); // sps_temporal_id_nesting_flag
    r.u(8); // general_profile_space, general_tier_flag, general_profile_idc
    r.u(32); // general_profile_compatibility_flag[32]
    r.u(24); // 48 bits of source and constraint flags
    r.u(24);
    r.u(8); // general_level_idc
    const profilePresent: number[] = [];
    const levelPresent: number[] = [];
    for (let i = 0; i < maxSubLayersMinus1; i++) {
      profilePresent.push(r.u1());
      levelPresent.push(r.u1());
    }
    if (maxSubLayersMinus1 > 0) for (let i = maxSubLayersMinus1; i < 8; i++) r.u(2); // reserved_zero_2bits
    for (let i = 0; i < maxSubLayersMinus1; i++) {
      if (profilePresent[i] === 1) {
        r.u(32);
        r.u(32);
        r.u(24); // 88 bits of sub-layer profile
      }
      if (levelPresent[i] === 1) r.u(8);
    }
    r.ue(); // sps_seq_parameter_set_id
    const chromaFormatIdc = r.ue();
    if (chromaFormatIdc > 3) return undefined;
    const separateColourPlane = chromaFormatIdc === 3 ? r.u1() : 0;
    let width = r.ue();
    let height = r.ue();
    if (r.u1() === 1) {
      // Offsets count chroma samples: 2 luma columns/rows for 4:2:0, per table 6-1.
      const chroma = separateColourPlane === 1 ? 0 : chromaFormatIdc;
      const subWidthC = chroma === 1 || chroma === 2 ? 2 : 1;
      const subHeightC = chroma === 1 ? 2 : 1;
      const left = r.ue();
      const right = r.ue();
      const top = r.ue();
      const bottom = r.ue();
      width -= subWidthC * (left + right);
      height -= subHeightC * (top + bottom);
    }
    if (!(width > 0 && height > 0 && width <= MAX_DIMENSION && height <= MAX_DIMENSION)) return undefined;
    return { width, height };
  } catch (err) {
    if (err instanceof RbspEnd) return undefined;
    throw err;
  }
}
