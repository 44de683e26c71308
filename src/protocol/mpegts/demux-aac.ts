/**
 * AAC in MPEG-TS is ADTS (stream_type 0x0F; ISO/IEC 13818-7 6.2 / 14496-3 1.A.2.2): a
 * sequence of frames, each a 7-byte header (9 with CRC) and one raw_data_block. FLV
 * wants the raw blocks plus an AudioSpecificConfig (14496-3 1.6.2.1) sent once, so this
 * reads the headers, derives the config and times each frame.
 *
 * A PES may carry several frames, and a frame may straddle two PES packets. The PTS of a
 * PES belongs to the first frame that starts in it (13818-1 2.4.3.7); the other frames
 * are 1024 samples apart.
 */

/** aac_frame_length is 13 bits. */
const MAX_FRAME = 8191;
/** samples per raw_data_block for AAC-LC and the other 1024-sample object types. */
const SAMPLES_PER_FRAME = 1024;
/** Table 1.18 sampling_frequency_index; 13 and 14 are reserved, 15 (explicit) is not allowed in ADTS. */
const SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

export interface AdtsFrame {
  /** Unwrapped 90 kHz ticks; fractional when 1024 samples are not a whole number of ticks. */
  ticks: number;
  /** The 2-byte AudioSpecificConfig as a number (audioObjectType, frequency index, channels). */
  config: number;
  /** The raw_data_block: a view that is only valid during the callback. */
  raw: Buffer;
}

interface AdtsHeader {
  headerLength: number;
  frameLength: number;
  config: number;
  sampleRate: number;
  rawBlocks: number;
}

function readHeader(b: Buffer, at: number): AdtsHeader | undefined {
  // syncword 0xFFF and layer 00; the ID bit (MPEG-2/MPEG-4) may be either.
  if (b[at] !== 0xff || ((b[at + 1] as number) & 0xf6) !== 0xf0) return undefined;
  const protectionAbsent = (b[at + 1] as number) & 0x01;
  const b2 = b[at + 2] as number;
  const b3 = b[at + 3] as number;
  const frequencyIndex = (b2 >> 2) & 0x0f;
  const sampleRate = SAMPLE_RATES[frequencyIndex];
  if (sampleRate === undefined) return undefined;
  const objectType = (b2 >> 6) + 1; // ADTS profile is audioObjectType - 1
  const channels = ((b2 & 0x01) << 2) | (b3 >> 6);
  const frameLength = ((b3 & 0x03) << 11) | ((b[at + 4] as number) << 3) | ((b[at + 5] as number) >> 5);
  const headerLength = protectionAbsent === 1 ? 7 : 9; // 9: adts_error_check's crc_check
  if (frameLength <= headerLength) return undefined;
  return {
    headerLength,
    frameLength,
    config: (objectType << 11) | (frequencyIndex << 7) | (channels << 3),
    sampleRate,
    rawBlocks: ((b[at + 6] as number) & 0x03) + 1,
  };
}

export class AdtsReader {
  /** The start of a frame that continues in the next PES (a private copy). */
  private carry: Buffer | undefined;
  /** Where the next frame falls if its PES gives no PTS for it. */
  private nextTicks: number | undefined;

  constructor(private readonly onFrame: (frame: AdtsFrame) => void) {}

  /** One PES payload, with its PTS already unwrapped (undefined when it has none). */
  push(data: Buffer, ptsTicks: number | undefined): void {
    const carried = this.carry?.length ?? 0;
    const buf = this.carry === undefined ? data : Buffer.concat([this.carry, data]);
    this.carry = undefined;
    let pts = ptsTicks;
    let pos = 0;
    while (pos + 7 <= buf.length) {
      const h = readHeader(buf, pos);
      if (h === undefined) {
        pos = this.findSync(buf, pos + 1);
        continue;
      }
      if (pos + h.frameLength > buf.length) break;
      // The PTS is for the first frame that starts in this PES, not for a carried one.
      let ticks = this.nextTicks;
      if (pos >= carried && pts !== undefined) {
        ticks = pts;
        pts = undefined;
      }
      if (ticks !== undefined) {
        this.nextTicks = ticks + (h.rawBlocks * SAMPLES_PER_FRAME * 90000) / h.sampleRate;
        // Several raw_data_blocks in one frame cannot be told apart without decoding them
        // (their positions are only given with CRC), and FLV wants one per tag: skipped.
        // Encoders do not write them in practice.
        if (h.rawBlocks === 1) {
          this.onFrame({ ticks, config: h.config, raw: buf.subarray(pos + h.headerLength, pos + h.frameLength) });
        }
      }
      pos += h.frameLength;
    }
    const rest = buf.length - pos;
    if (rest > 0 && rest < MAX_FRAME) {
      this.carry = Buffer.from(buf.subarray(pos));
      // A frame that starts here and ends in the next PES still takes this PES's PTS.
      if (pos >= carried && pts !== undefined) this.nextTicks = pts;
    }
  }

  /** A hole in the stream (a lost or dropped PES): a carried partial frame cannot be completed. */
  reset(): void {
    this.carry = undefined;
  }

  private findSync(buf: Buffer, from: number): number {
    const at = buf.indexOf(0xff, from);
    return at < 0 ? buf.length : at;
  }
}
