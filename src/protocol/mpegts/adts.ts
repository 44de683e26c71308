/**
 * AAC in MPEG-TS is ADTS (stream_type 0x0F, ISO/IEC 13818-1 table 2-34): each raw frame
 * from FLV gets the 7-byte ADTS header built from the AudioSpecificConfig of the audio
 * sequence header (ISO/IEC 14496-3 1.6.2.1 and 1.A.2.2).
 */
import { ProtocolError } from '../../lib/errors.js';

export interface AdtsConfig {
  /** ADTS profile = audioObjectType - 1 (0 Main, 1 LC, 2 SSR, 3 LTP). */
  profile: number;
  samplingFrequencyIndex: number;
  channelConfiguration: number;
}

export const ADTS_HEADER_SIZE = 7;
/** frame_length is 13 bits and counts the header. */
export const ADTS_MAX_RAW_FRAME = 0x1fff - ADTS_HEADER_SIZE;

/** samplingFrequencyIndex to Hz, ISO/IEC 14496-3 table 1.18. */
export const SAMPLING_RATES: readonly number[] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
const AOT_SBR = 5;
const AOT_PS = 29;
const AOT_ESCAPE = 31;

class BitReader {
  private bit = 0;
  constructor(private readonly buf: Buffer) {}

  read(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.buf[this.bit >> 3];
      if (byte === undefined) throw new ProtocolError('FLV_MALFORMED', 'AudioSpecificConfig is truncated');
      v = v * 2 + ((byte >> (7 - (this.bit & 7))) & 1);
      this.bit += 1;
    }
    return v;
  }
}

function audioObjectType(r: BitReader): number {
  const aot = r.read(5);
  return aot === AOT_ESCAPE ? 32 + r.read(6) : aot;
}

/** An explicit 24-bit rate has no ADTS index; the nearest standard rate is the best ADTS can say. */
function samplingIndex(r: BitReader): number {
  const index = r.read(4);
  if (index !== 0x0f) return index;
  const rate = r.read(24);
  let best = 0;
  for (let i = 1; i < SAMPLING_RATES.length; i++) {
    if (Math.abs((SAMPLING_RATES[i] as number) - rate) < Math.abs((SAMPLING_RATES[best] as number) - rate)) best = i;
  }
  return best;
}

/**
 * Returns undefined for configurations ADTS cannot carry (object types beyond LTP, such
 * as ER or USAC, and reserved sampling indexes). HE-AAC v1/v2 (explicit SBR/PS
 * signalling) is carried as its AAC-LC core with implicit SBR, which is how ADTS streams
 * carry it: the core object type and core sampling rate go in the header.
 */
export function parseAudioSpecificConfig(asc: Buffer): AdtsConfig | undefined {
  const r = new BitReader(asc);
  let aot = audioObjectType(r);
  const samplingFrequencyIndex = samplingIndex(r);
  const channelConfiguration = r.read(4);
  if (aot === AOT_SBR || aot === AOT_PS) {
    samplingIndex(r); // extensionSamplingFrequencyIndex: the SBR output rate
    aot = audioObjectType(r);
  }
  if (aot < 1 || aot > 4) return undefined;
  if (samplingFrequencyIndex >= SAMPLING_RATES.length) return undefined;
  if (channelConfiguration > 7) return undefined;
  return { profile: aot - 1, samplingFrequencyIndex, channelConfiguration };
}

/** The fixed + variable ADTS header (1.A.2.2.1/2), no CRC, buffer fullness 0x7FF (VBR). */
export function writeAdtsHeader(buf: Buffer, at: number, cfg: AdtsConfig, rawLength: number): void {
  if (rawLength > ADTS_MAX_RAW_FRAME) throw new RangeError(`AAC frame of ${rawLength} bytes does not fit ADTS`);
  const frameLength = rawLength + ADTS_HEADER_SIZE;
  buf[at] = 0xff;
  buf[at + 1] = 0xf1; // syncword low nibble, ID 0 (MPEG-4), layer 00, protection_absent 1
  buf[at + 2] = (cfg.profile << 6) | (cfg.samplingFrequencyIndex << 2) | ((cfg.channelConfiguration >> 2) & 0x01);
  buf[at + 3] = ((cfg.channelConfiguration & 0x03) << 6) | ((frameLength >> 11) & 0x03);
  buf[at + 4] = (frameLength >> 3) & 0xff;
  buf[at + 5] = ((frameLength & 0x07) << 5) | 0x1f;
  buf[at + 6] = 0xfc; // buffer fullness low bits, number_of_raw_data_blocks_in_frame 0
}
