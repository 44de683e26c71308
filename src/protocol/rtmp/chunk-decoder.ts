import { ProtocolError } from '../../lib/errors.js';
import { isKnownMessageType, MessageType } from './message-types.js';
import { allocWithHeadroom } from './headroom.js';

/** A complete RTMP message reassembled from its chunks. */
export interface RtmpMessage {
  csid: number;
  typeId: number;
  streamId: number;
  /** Milliseconds, 32-bit as on the wire (wrap handling belongs to the session). */
  timestamp: number;
  payload: Buffer;
}

export interface ChunkDecoderLimits {
  /** Largest message length accepted in a chunk header. */
  maxMessageSize: number;
  /** Distinct chunk stream ids a peer may open (each holds header state). */
  maxChunkStreams: number;
  /**
   * Bytes of unfinished messages held across all chunk streams. Peers interleave audio
   * with a large video message, so the default is twice the message cap.
   */
  maxPendingBytes: number;
  /**
   * Smallest chunk size a peer may set. The spec allows 1, but every chunk costs a header
   * parse and a slice object: 1-byte chunks turn a modest message into a CPU and heap
   * flood. Encoders use 128 and up (SRS enforces the same floor).
   */
  minChunkSize: number;
  /** Largest chunk size a peer may set (at most the spec's 2^31 - 1). */
  maxChunkSize: number;
}

export const DEFAULT_DECODER_LIMITS: Omit<ChunkDecoderLimits, 'maxPendingBytes'> = {
  maxMessageSize: 8 * 1024 * 1024,
  maxChunkStreams: 64,
  minChunkSize: 128,
  maxChunkSize: 0x7fffffff,
};
/** What holding one chunk's slice costs beyond its bytes (object, array slot), for the pending cap. */
const PART_OVERHEAD_BYTES = 64;

/** Largest chunk size the spec allows (5.4.1: the top bit must be zero). */
export const MAX_CHUNK_SIZE = 0x7fffffff;
const DEFAULT_CHUNK_SIZE = 128;
/** Basic header (up to 3) + type 0 message header (11) + extended timestamp (4). */
const MAX_HEADER_BYTES = 18;

interface ChunkStreamState {
  timestamp: number;
  /** Last timestamp field: absolute after type 0, a delta after 1/2, reused by type 3. */
  timestampField: number;
  extended: boolean;
  length: number;
  typeId: number;
  streamId: number;
  /**
   * Slices of the message being assembled (undefined when none is). Memory follows the
   * bytes that arrived, never the length a header announced.
   */
  parts: Buffer[] | undefined;
  received: number;
}

/**
 * Reassembles RTMP messages from a chunk stream (spec 5.3). Sans-I/O and incremental:
 * feed any slicing of the byte stream. Set Chunk Size and Abort are applied here, at the
 * exact byte they take effect, and also passed on to the caller.
 *
 * Timestamp semantics follow ffmpeg/librtmp (whose writers we must read): a type 3 chunk
 * that starts a new message adds the previous header's timestamp field, which after a
 * type 0 header is the absolute value.
 */
export class ChunkDecoder {
  private chunkSize = DEFAULT_CHUNK_SIZE;
  private readonly streams = new Map<number, ChunkStreamState>();
  /** Unparsed bytes of a header split across reads (never more than MAX_HEADER_BYTES). */
  private partialHeader: Buffer | undefined;
  /** Set while the bytes of a chunk body are still arriving. */
  private inBody: { state: ChunkStreamState; csid: number; remaining: number } | undefined;
  private readonly limits: ChunkDecoderLimits;
  /** Sum of `received` over chunk streams with a message in progress. */
  private pendingBytes = 0;

  private readonly explicitPendingCap: boolean;

  constructor(limits: Partial<ChunkDecoderLimits> = {}) {
    this.explicitPendingCap = limits.maxPendingBytes !== undefined;
    const maxMessageSize = limits.maxMessageSize ?? DEFAULT_DECODER_LIMITS.maxMessageSize;
    this.limits = { ...DEFAULT_DECODER_LIMITS, maxPendingBytes: 2 * maxMessageSize, ...limits };
  }

  /**
   * Changes the message cap from the next message header on (sessions lift it once a
   * publisher is accepted). The cap on unfinished bytes follows it, unless it was set
   * explicitly: it must hold a whole message plus interleaved audio.
   */
  setMaxMessageSize(bytes: number): void {
    this.limits.maxMessageSize = bytes;
    if (!this.explicitPendingCap) this.limits.maxPendingBytes = 2 * bytes;
  }

  get incomingChunkSize(): number {
    return this.chunkSize;
  }

  feed(input: Buffer, onMessage: (m: RtmpMessage) => void): void {
    const buf = input;
    let offset = 0;
    if (this.partialHeader) {
      // Finish the split header from a small joined buffer rather than copying the whole read.
      const held = this.partialHeader;
      const joined = Buffer.concat([held, input.subarray(0, MAX_HEADER_BYTES)]);
      this.partialHeader = undefined;
      const consumed = this.readHeader(joined, 0);
      if (consumed === 0) {
        this.partialHeader = joined;
        return;
      }
      offset = consumed - held.length;
      if (this.emptyBodyPending()) this.finishChunk(onMessage);
    }
    while (offset < buf.length) {
      if (this.inBody) {
        offset = this.readBody(buf, offset, onMessage);
        continue;
      }
      const consumed = this.readHeader(buf, offset);
      if (consumed === 0) {
        this.partialHeader = Buffer.from(buf.subarray(offset));
        return;
      }
      offset += consumed;
      // Zero-length messages have no body bytes; complete them here.
      if (this.emptyBodyPending()) this.finishChunk(onMessage);
    }
  }

  /** True right after the header of a zero-length message, which has no body bytes to wait for. */
  private emptyBodyPending(): boolean {
    return this.inBody !== undefined && this.inBody.remaining === 0;
  }

  /** Parses one chunk header at offset; returns bytes consumed, or 0 if incomplete. */
  private readHeader(buf: Buffer, offset: number): number {
    const available = buf.length - offset;
    const b0 = buf[offset]!;
    const fmt = b0 >> 6;
    let csid = b0 & 0x3f;
    let pos = offset + 1;
    if (csid === 0) {
      if (available < 2) return 0;
      csid = 64 + buf[pos]!;
      pos += 1;
    } else if (csid === 1) {
      if (available < 3) return 0;
      csid = 64 + buf[pos]! + buf[pos + 1]! * 256;
      pos += 2;
    }
    const headerLength = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
    if (buf.length - pos < headerLength) return 0;

    let state = this.streams.get(csid);
    if (!state) {
      if (fmt !== 0) {
        throw new ProtocolError('RTMP_BAD_CHUNK', `chunk type ${fmt} on chunk stream ${csid} without a preceding type 0 header`);
      }
      if (this.streams.size >= this.limits.maxChunkStreams) {
        throw new ProtocolError('RTMP_TOO_MANY_CHUNK_STREAMS', `more than ${this.limits.maxChunkStreams} chunk streams`);
      }
      state = { timestamp: 0, timestampField: 0, extended: false, length: 0, typeId: 0, streamId: 0, parts: undefined, received: 0 };
      this.streams.set(csid, state);
    }

    let timestampField = state.timestampField;
    let length = state.length;
    let typeId = state.typeId;
    let streamId = state.streamId;
    let extended = state.extended;
    if (fmt <= 2) {
      timestampField = buf.readUIntBE(pos, 3);
      extended = timestampField === 0xffffff;
    }
    if (fmt <= 1) {
      length = buf.readUIntBE(pos + 3, 3);
      typeId = buf[pos + 6]!;
    }
    if (fmt === 0) streamId = buf.readUInt32LE(pos + 7);
    pos += headerLength;
    if (extended) {
      if (buf.length - pos < 4) return 0;
      // For type 3 continuation chunks the field repeats the previous value; read and skip.
      if (fmt <= 2 || state.parts === undefined) timestampField = buf.readUInt32BE(pos);
      pos += 4;
    }

    // The header is complete: commit it.
    const startsMessage = state.parts === undefined || fmt !== 3;
    if (startsMessage) {
      if (fmt <= 1 && length > this.limits.maxMessageSize) {
        throw new ProtocolError('RTMP_MESSAGE_TOO_LARGE', `message of ${length} bytes exceeds the ${this.limits.maxMessageSize}-byte limit`);
      }
      if (fmt <= 1 && !isKnownMessageType(typeId)) {
        throw new ProtocolError('RTMP_UNKNOWN_MESSAGE_TYPE', `unknown message type ${typeId} on chunk stream ${csid}`);
      }
      state.timestamp = fmt === 0 ? timestampField : (state.timestamp + timestampField) >>> 0;
      state.timestampField = timestampField;
      state.extended = extended;
      state.length = length;
      state.typeId = typeId;
      state.streamId = streamId;
      // A new header while a message was mid-way abandons that message (peers do this after errors).
      this.discardPartial(state);
      state.parts = [];
    }
    const remainingInMessage = state.length - state.received;
    this.inBody = { state, csid, remaining: Math.min(this.chunkSize, remainingInMessage) };
    return pos - offset;
  }

  private readBody(buf: Buffer, offset: number, onMessage: (m: RtmpMessage) => void): number {
    const body = this.inBody!;
    const state = body.state;
    const take = Math.min(body.remaining, buf.length - offset);
    state.parts!.push(buf.subarray(offset, offset + take));
    state.received += take;
    this.pendingBytes += take + PART_OVERHEAD_BYTES;
    if (this.pendingBytes > this.limits.maxPendingBytes) {
      throw new ProtocolError('RTMP_TOO_MUCH_PENDING', `more than ${this.limits.maxPendingBytes} bytes of unfinished messages`);
    }
    body.remaining -= take;
    if (body.remaining === 0) this.finishChunk(onMessage);
    return offset + take;
  }

  private finishChunk(onMessage: (m: RtmpMessage) => void): void {
    const { state, csid } = this.inBody!;
    this.inBody = undefined;
    if (state.received < state.length) return;
    const message: RtmpMessage = {
      csid,
      typeId: state.typeId,
      streamId: state.streamId,
      timestamp: state.timestamp,
      payload: joinParts(state.parts!, state.length),
    };
    this.discardPartial(state);
    if (message.typeId === MessageType.SetChunkSize) this.applyChunkSize(message.payload);
    else if (message.typeId === MessageType.Abort) this.applyAbort(message.payload);
    onMessage(message);
  }

  private discardPartial(state: ChunkStreamState): void {
    this.pendingBytes -= state.received + (state.parts?.length ?? 0) * PART_OVERHEAD_BYTES;
    state.parts = undefined;
    state.received = 0;
  }

  private applyChunkSize(payload: Buffer): void {
    if (payload.length < 4) throw new ProtocolError('RTMP_BAD_CHUNK_SIZE', 'Set Chunk Size message shorter than 4 bytes');
    const size = payload.readUInt32BE(0);
    if (size === 0 || size > MAX_CHUNK_SIZE) {
      throw new ProtocolError('RTMP_BAD_CHUNK_SIZE', `invalid chunk size ${size} (must be 1..${MAX_CHUNK_SIZE})`);
    }
    if (size > this.limits.maxChunkSize) {
      throw new ProtocolError('RTMP_BAD_CHUNK_SIZE', `chunk size ${size} is above the accepted maximum of ${this.limits.maxChunkSize}`);
    }
    if (size < this.limits.minChunkSize) {
      throw new ProtocolError('RTMP_BAD_CHUNK_SIZE', `chunk size ${size} is below the accepted minimum of ${this.limits.minChunkSize}`);
    }
    this.chunkSize = size;
  }

  private applyAbort(payload: Buffer): void {
    if (payload.length < 4) throw new ProtocolError('RTMP_BAD_CHUNK', 'Abort message shorter than 4 bytes');
    const state = this.streams.get(payload.readUInt32BE(0));
    if (state) this.discardPartial(state);
  }
}

/**
 * One piece is shared as it is, unless it is small next to the read buffer it would keep
 * alive (GOP caches hold messages for seconds). Otherwise the pieces are copied into one
 * Buffer with headroom, so a player's wire form can be made in front of it (./headroom.ts).
 */
function joinParts(parts: Buffer[], length: number): Buffer {
  if (parts.length === 1) {
    const only = parts[0]!;
    if (only.length * 2 >= only.buffer.byteLength) return only;
  }
  const out = allocWithHeadroom(length);
  let pos = 0;
  for (const part of parts) pos += part.copy(out, pos);
  return out;
}
