/**
 * Serialises one RTMP message into chunks (spec 5.3). The result is a single Buffer so a
 * message fanned out to many players is chunked once and written to each in one call.
 * Every message starts with a type 0 header (absolute timestamp): a few bytes more than
 * delta headers, but the bytes do not depend on what a given player received before,
 * which is what makes sharing them possible. A payload with headroom (./headroom.ts) that
 * fits one chunk gets its header written in front of it instead of being copied.
 */
import { claimHeadroom } from './headroom.js';

export interface OutgoingMessage {
  csid: number;
  typeId: number;
  streamId: number;
  /** Milliseconds; written modulo 2^32 with an extended field when >= 0xFFFFFF. */
  timestamp: number;
  payload: Buffer;
}

function basicHeaderLength(csid: number): number {
  return csid < 64 ? 1 : csid < 320 ? 2 : 3;
}

function writeBasicHeader(out: Buffer, pos: number, fmt: number, csid: number): number {
  if (csid < 64) {
    out[pos] = (fmt << 6) | csid;
    return pos + 1;
  }
  if (csid < 320) {
    out[pos] = fmt << 6;
    out[pos + 1] = csid - 64;
    return pos + 2;
  }
  out[pos] = (fmt << 6) | 1;
  out.writeUInt16LE(csid - 64, pos + 1);
  return pos + 3;
}

export function encodeChunks(message: OutgoingMessage, chunkSize: number): Buffer {
  const { csid, payload } = message;
  const timestamp = message.timestamp % 0x1_0000_0000;
  const extended = timestamp >= 0xffffff;
  const extLength = extended ? 4 : 0;
  const basicLength = basicHeaderLength(csid);
  const headerLength = basicLength + 11 + extLength;
  if (payload.length > 0 && payload.length <= chunkSize) {
    // One chunk: the header may go in front of the payload's own bytes (no copy).
    const inPlace = claimHeadroom(payload, headerLength);
    if (inPlace) {
      writeMessageHeader(inPlace, message, timestamp, extended);
      return inPlace;
    }
  }
  const chunkCount = Math.max(1, Math.ceil(payload.length / chunkSize));
  const total = headerLength + (chunkCount - 1) * (basicLength + extLength) + payload.length;
  const out = Buffer.allocUnsafe(total);

  let pos = writeMessageHeader(out, message, timestamp, extended);
  for (let offset = 0; offset < payload.length || offset === 0; offset += chunkSize) {
    if (offset > 0) {
      pos = writeBasicHeader(out, pos, 3, csid);
      // Type 3 chunks repeat the extended timestamp (as FMS, librtmp and ffmpeg expect).
      if (extended) pos = out.writeUInt32BE(timestamp, pos);
    }
    const end = Math.min(offset + chunkSize, payload.length);
    pos += payload.copy(out, pos, offset, end);
    if (payload.length === 0) break;
  }
  return out;
}

/** The first chunk's basic and type 0 headers (and extended timestamp) at the start of out. */
function writeMessageHeader(out: Buffer, message: OutgoingMessage, timestamp: number, extended: boolean): number {
  let pos = writeBasicHeader(out, 0, 0, message.csid);
  out.writeUIntBE(extended ? 0xffffff : timestamp, pos, 3);
  out.writeUIntBE(message.payload.length, pos + 3, 3);
  out[pos + 6] = message.typeId;
  out.writeUInt32LE(message.streamId, pos + 7);
  pos += 11;
  if (extended) pos = out.writeUInt32BE(timestamp, pos);
  return pos;
}
