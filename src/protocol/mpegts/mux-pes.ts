/**
 * PES packet headers for the muxer (ISO/IEC 13818-1 2.4.3.6 / 2.4.3.7) and the 90 kHz
 * timestamp arithmetic they need.
 */

const TWO_30 = 2 ** 30;
const TWO_32 = 2 ** 32;
const TWO_33 = 2 ** 33;

/**
 * Milliseconds to a 33-bit 90 kHz value (PTS, DTS and the PCR base all wrap at 2^33,
 * 2.4.3.7). The hub's ms timeline does not wrap, so it is reduced modulo 2^32 first:
 * 90 x 2^32 is a multiple of 2^33, so the result is unchanged and the product stays far
 * below 2^53, exact for any input. Negative values (a negative composition offset at the
 * very start) wrap like the 33-bit counter would.
 */
export function msTo90kHz(ms: number): number {
  const m = ((ms % TWO_32) + TWO_32) % TWO_32;
  return Math.floor(m * 90) % TWO_33;
}

/**
 * The 5-byte PTS/DTS field: a 4-bit prefix, then the 33 bits as 3 + 15 + 15 with a
 * marker bit after each part (2.4.3.7, table 2-21). Done with division, not 32-bit
 * shifts, because the top bit does not fit a JS int32.
 */
export function writePesTimestamp(buf: Buffer, at: number, prefix: number, value90k: number): void {
  const low30 = value90k % TWO_30;
  buf[at] = (prefix << 4) | ((Math.floor(value90k / TWO_30) & 0x07) << 1) | 1;
  buf.writeUInt16BE((((low30 >>> 15) & 0x7fff) << 1) | 1, at + 1);
  buf.writeUInt16BE(((low30 & 0x7fff) << 1) | 1, at + 3);
}

/** Inverse of writePesTimestamp; used by tests and kept next to the writer it mirrors. */
export function readPesTimestamp(buf: Buffer, at: number): number {
  const hi = ((buf[at] as number) >> 1) & 0x07;
  const mid = buf.readUInt16BE(at + 1) >>> 1;
  const lo = buf.readUInt16BE(at + 3) >>> 1;
  return hi * TWO_30 + mid * 2 ** 15 + lo;
}

export interface PesHeaderSpec {
  /** stream_id, table 2-22: 0xE0 first video stream, 0xC0 first audio stream. */
  streamId: number;
  pts90k: number;
  /** Written only when it differs from the PTS (2.4.3.7: PTS_DTS_flags '11' vs '10'). */
  dts90k?: number;
  /** Bytes of elementary stream data that follow the header. */
  payloadLength: number;
  /**
   * Write the real PES_packet_length. When false it is 0 (unbounded), which 2.4.3.7
   * allows only for video in a transport stream; video frames often exceed 64 KiB.
   */
  bounded: boolean;
}

/** The largest PES_packet_length (16 bits). */
const MAX_PES_PACKET_LENGTH = 0xffff;

export function pesHeader(spec: PesHeaderSpec): Buffer {
  const withDts = spec.dts90k !== undefined && spec.dts90k !== spec.pts90k;
  const headerDataLength = withDts ? 10 : 5;
  const h = Buffer.allocUnsafe(9 + headerDataLength);
  h[0] = 0x00;
  h[1] = 0x00;
  h[2] = 0x01;
  h[3] = spec.streamId;
  let packetLength = 0;
  if (spec.bounded) {
    packetLength = 3 + headerDataLength + spec.payloadLength;
    if (packetLength > MAX_PES_PACKET_LENGTH) throw new RangeError(`PES packet of ${packetLength} bytes exceeds PES_packet_length`);
  }
  h.writeUInt16BE(packetLength, 4);
  // '10', not scrambled, priority 0, data_alignment_indicator 1 (every PES starts with an
  // access unit: an AUD or an ADTS sync word), no copyright, copy.
  h[6] = 0x84;
  h[7] = withDts ? 0xc0 : 0x80;
  h[8] = headerDataLength;
  writePesTimestamp(h, 9, withDts ? 0x3 : 0x2, spec.pts90k);
  if (withDts) writePesTimestamp(h, 14, 0x1, spec.dts90k as number);
  return h;
}
