import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ChunkDecoder, DEFAULT_DECODER_LIMITS, MAX_CHUNK_SIZE, type ChunkDecoderLimits, type RtmpMessage } from '../../src/protocol/rtmp/chunk-decoder.js';
import { encodeChunks, type OutgoingMessage } from '../../src/protocol/rtmp/chunk-encoder.js';
import { MessageType } from '../../src/protocol/rtmp/message-types.js';
import { ProtocolError } from '../../src/lib/errors.js';
import { protocolError } from '../helpers/protocol-error.js';

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/** Deterministic payload bytes (a simple LCG) so failures reproduce. */
function bytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 16;
  }
  return out;
}

/** Plain copy of a decoded message (payload copied so later feeds cannot alias it). */
function snapshot(m: RtmpMessage): RtmpMessage {
  return { csid: m.csid, typeId: m.typeId, streamId: m.streamId, timestamp: m.timestamp, payload: Buffer.from(m.payload) };
}

/** Feeds the pieces to a fresh decoder and returns every message it produced. */
function decodePieces(pieces: readonly Buffer[], limits: Partial<ChunkDecoderLimits> = {}): RtmpMessage[] {
  const decoder = new ChunkDecoder({ minChunkSize: 1, ...limits });
  const out: RtmpMessage[] = [];
  for (const piece of pieces) decoder.feed(piece, (m) => out.push(snapshot(m)));
  return out;
}

function decodeWhole(buf: Buffer, limits: Partial<ChunkDecoderLimits> = {}): RtmpMessage[] {
  return decodePieces([buf], limits);
}

/** Slices buf at the given sorted cut positions. */
function sliceAt(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let prev = 0;
  for (const cut of cuts) {
    pieces.push(buf.subarray(prev, cut));
    prev = cut;
  }
  pieces.push(buf.subarray(prev));
  return pieces;
}

function byteByByte(buf: Buffer): Buffer[] {
  return Array.from({ length: buf.length }, (_, i) => buf.subarray(i, i + 1));
}

/**
 * Decodes buf whole, byte by byte, and cut in two at every possible point, and checks that
 * each run yields exactly `expected`.
 */
function expectDecodesEverywhere(buf: Buffer, expected: readonly RtmpMessage[], limits: Partial<ChunkDecoderLimits> = {}): void {
  expect(decodeWhole(buf, limits)).toEqual(expected);
  expect(decodePieces(byteByByte(buf), limits)).toEqual(expected);
  for (let cut = 0; cut <= buf.length; cut++) {
    const got = decodePieces(sliceAt(buf, [cut]), limits);
    if (got.length !== expected.length || got.some((m, i) => !sameMessage(m, expected[i]!))) {
      throw new Error(`split at byte ${cut} of ${buf.length} decoded differently: ${JSON.stringify(got.map(describeMsg))}`);
    }
  }
}

function sameMessage(a: RtmpMessage, b: RtmpMessage): boolean {
  return a.csid === b.csid && a.typeId === b.typeId && a.streamId === b.streamId && a.timestamp === b.timestamp && a.payload.equals(b.payload);
}

function describeMsg(m: RtmpMessage): unknown {
  return { csid: m.csid, typeId: m.typeId, streamId: m.streamId, timestamp: m.timestamp, length: m.payload.length };
}

/** The message a decoder must produce for an encoded OutgoingMessage (timestamps are 32-bit on the wire). */
function expected(m: OutgoingMessage): RtmpMessage {
  return { csid: m.csid, typeId: m.typeId, streamId: m.streamId, timestamp: m.timestamp % 0x1_0000_0000, payload: Buffer.from(m.payload) };
}

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
};

// Hand-built chunk headers (spec 5.3.1).

function basicHeader(fmt: number, csid: number): Buffer {
  if (csid < 64) return Buffer.from([(fmt << 6) | csid]);
  if (csid < 320) return Buffer.from([fmt << 6, csid - 64]);
  const b = Buffer.from([(fmt << 6) | 1, 0, 0]);
  b.writeUInt16LE(csid - 64, 1);
  return b;
}

function u24(v: number): Buffer {
  const b = Buffer.alloc(3);
  b.writeUIntBE(v, 0, 3);
  return b;
}

/** Type 0: absolute timestamp, length, type, stream id (LE). Extended field when ts >= 0xFFFFFF. */
function type0(csid: number, ts: number, length: number, typeId: number, streamId: number): Buffer {
  const ext = ts >= 0xffffff;
  const sid = Buffer.alloc(4);
  sid.writeUInt32LE(streamId, 0);
  return Buffer.concat([basicHeader(0, csid), u24(ext ? 0xffffff : ts), u24(length), Buffer.from([typeId]), sid, ext ? u32(ts) : Buffer.alloc(0)]);
}

/** Type 1: timestamp delta, length, type (stream id reused). */
function type1(csid: number, delta: number, length: number, typeId: number): Buffer {
  const ext = delta >= 0xffffff;
  return Buffer.concat([basicHeader(1, csid), u24(ext ? 0xffffff : delta), u24(length), Buffer.from([typeId]), ext ? u32(delta) : Buffer.alloc(0)]);
}

/** Type 2: timestamp delta only. */
function type2(csid: number, delta: number): Buffer {
  const ext = delta >= 0xffffff;
  return Buffer.concat([basicHeader(2, csid), u24(ext ? 0xffffff : delta), ext ? u32(delta) : Buffer.alloc(0)]);
}

/** Type 3: nothing but the basic header (and the repeated extended timestamp when given). */
function type3(csid: number, extendedTimestamp?: number): Buffer {
  return Buffer.concat([basicHeader(3, csid), extendedTimestamp === undefined ? Buffer.alloc(0) : u32(extendedTimestamp)]);
}

const msg = (over: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  csid: 4,
  typeId: MessageType.Audio,
  streamId: 1,
  timestamp: 0,
  payload: bytes(10),
  ...over,
});

// ---------------------------------------------------------------------------------------
// Encoder output layout
// ---------------------------------------------------------------------------------------

describe('encodeChunks', () => {
  it('writes a single type 0 chunk for a message that fits in one chunk', () => {
    const payload = Buffer.from('abcdef');
    const out = encodeChunks({ csid: 3, typeId: MessageType.CommandAmf0, streamId: 0x01020304, timestamp: 0x0a0b0c, payload }, 128);
    expect(out.toString('hex')).toBe(
      '03' + '0a0b0c' + '000006' + '14' + '04030201' + payload.toString('hex'),
    );
  });

  it('splits a payload into type 3 continuation chunks at the chunk size', () => {
    const payload = bytes(300);
    const out = encodeChunks(msg({ csid: 6, timestamp: 40, payload }), 128);
    // 12-byte header + 128, then 1 + 128, then 1 + 44.
    expect(out.length).toBe(12 + 128 + 1 + 128 + 1 + 44);
    expect(out[0]).toBe(0x06);
    expect(out[12 + 128]).toBe(0xc6);
    expect(out[12 + 128 + 1 + 128]).toBe(0xc6);
    expect(out.subarray(12, 140).equals(payload.subarray(0, 128))).toBe(true);
    expect(out.subarray(141, 269).equals(payload.subarray(128, 256))).toBe(true);
    expect(out.subarray(270).equals(payload.subarray(256))).toBe(true);
  });

  it('does not add an empty continuation chunk when the payload is an exact multiple of the chunk size', () => {
    const out = encodeChunks(msg({ payload: bytes(256) }), 128);
    expect(out.length).toBe(12 + 128 + 1 + 128);
  });

  it('writes a zero-length message as a lone header', () => {
    const out = encodeChunks(msg({ payload: Buffer.alloc(0), timestamp: 5 }), 128);
    expect(out.toString('hex')).toBe('04' + '000005' + '000000' + '08' + '01000000');
  });

  it.each([
    [2, 1],
    [63, 1],
    [64, 2],
    [319, 2],
    [320, 3],
    [65599, 3],
  ])('uses the right basic header form for csid %i (%i bytes)', (csid, basicLength) => {
    const out = encodeChunks(msg({ csid, payload: bytes(20) }), 7);
    // 3 chunks: 7 + 7 + 6.
    expect(out.length).toBe(basicLength + 11 + 2 * basicLength + 20);
    const cont = basicLength + 11 + 7;
    if (basicLength === 1) {
      expect(out[0]).toBe(csid);
      expect(out[cont]).toBe(0xc0 | csid);
    } else if (basicLength === 2) {
      expect([out[0], out[1]]).toEqual([0x00, csid - 64]);
      expect([out[cont], out[cont + 1]]).toEqual([0xc0, csid - 64]);
    } else {
      expect(out[0]).toBe(0x01);
      expect(out.readUInt16LE(1)).toBe(csid - 64);
      expect(out[cont]).toBe(0xc1);
      expect(out.readUInt16LE(cont + 1)).toBe(csid - 64);
    }
  });

  it('writes the extended timestamp on the type 0 chunk and repeats it on every type 3 chunk', () => {
    const ts = 0x12345678;
    const out = encodeChunks(msg({ timestamp: ts, payload: bytes(10) }), 4);
    // Header: 1 + 11 + 4; chunks 4, then (1 + 4 + 4), then (1 + 4 + 2).
    expect(out.length).toBe(16 + 4 + 9 + 7);
    expect(out.readUIntBE(1, 3)).toBe(0xffffff);
    expect(out.readUInt32BE(12)).toBe(ts);
    expect(out[20]).toBe(0xc4);
    expect(out.readUInt32BE(21)).toBe(ts);
    expect(out[29]).toBe(0xc4);
    expect(out.readUInt32BE(30)).toBe(ts);
  });

  it('uses the extended field for exactly 0xFFFFFF and not for 0xFFFFFE', () => {
    expect(encodeChunks(msg({ timestamp: 0xfffffe }), 128).length).toBe(12 + 10);
    const at = encodeChunks(msg({ timestamp: 0xffffff }), 128);
    expect(at.length).toBe(16 + 10);
    expect(at.readUInt32BE(12)).toBe(0xffffff);
  });

  it('writes timestamps modulo 2^32', () => {
    const out = encodeChunks(msg({ timestamp: 0x1_0000_0000 + 5 }), 128);
    expect(out.length).toBe(12 + 10);
    expect(out.readUIntBE(1, 3)).toBe(5);
  });
});

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

describe('ChunkDecoder round trips encodeChunks output', () => {
  const messages: OutgoingMessage[] = [
    msg({ csid: 3, typeId: MessageType.CommandAmf0, streamId: 0, timestamp: 0, payload: bytes(200, 1) }),
    msg({ csid: 4, typeId: MessageType.Audio, streamId: 1, timestamp: 23, payload: bytes(17, 2) }),
    msg({ csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: 40, payload: bytes(333, 3) }),
    msg({ csid: 5, typeId: MessageType.DataAmf0, streamId: 1, timestamp: 40, payload: Buffer.alloc(0) }),
    msg({ csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: 0xfffffe, payload: bytes(129, 4) }),
    msg({ csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: 0xffffff, payload: bytes(130, 5) }),
    msg({ csid: 4, typeId: MessageType.Audio, streamId: 1, timestamp: 0xfedcba98, payload: bytes(300, 6) }),
    msg({ csid: 100, typeId: MessageType.Aggregate, streamId: 7, timestamp: 0xffffffff, payload: bytes(64, 7) }),
    msg({ csid: 1000, typeId: MessageType.UserControl, streamId: 0xffffffff, timestamp: 1, payload: bytes(6, 8) }),
  ];
  const chunkSizes = [1, 7, 128, 4096];

  it.each(chunkSizes)('decodes every message back at chunk size %i, whole, byte by byte and at every split point', (chunkSize) => {
    const wire = Buffer.concat(messages.map((m) => encodeChunks(m, chunkSize)));
    const decoder = new ChunkDecoder({ minChunkSize: 1 });
    // The decoder starts at 128; tell it about the others the way a peer would.
    const prefix = chunkSize === 128 ? Buffer.alloc(0) : encodeChunks({ csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: u32(chunkSize) }, 128);
    const prefixMessages = chunkSize === 128 ? [] : [{ csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: u32(chunkSize) }];
    const all = Buffer.concat([prefix, wire]);
    expectDecodesEverywhere(all, [...prefixMessages, ...messages.map(expected)]);
    decoder.feed(all, () => undefined);
    expect(decoder.incomingChunkSize).toBe(chunkSize);
  });

  it.each([
    [2, 'one-byte'],
    [63, 'one-byte'],
    [64, 'two-byte'],
    [200, 'two-byte'],
    [319, 'two-byte'],
    [320, 'three-byte'],
    [4000, 'three-byte'],
    [65599, 'three-byte'],
  ])('round-trips csid %i (%s basic header) across continuation chunks', (csid) => {
    const m = msg({ csid, payload: bytes(300, csid) });
    expectDecodesEverywhere(encodeChunks(m, 128), [expected(m)]);
  });

  it('treats the two- and three-byte forms of the same csid as one chunk stream', () => {
    // csid 64 as a two-byte type 0 header, its continuation as a three-byte type 3 header.
    const payload = bytes(200);
    const wire = Buffer.concat([
      Buffer.from([0x00, 0x00]), u24(10), u24(200), Buffer.from([MessageType.Video]), Buffer.from([1, 0, 0, 0]),
      payload.subarray(0, 128),
      Buffer.from([0xc1, 0x00, 0x00]),
      payload.subarray(128),
    ]);
    expectDecodesEverywhere(wire, [{ csid: 64, typeId: MessageType.Video, streamId: 1, timestamp: 10, payload }]);
  });

  it('round-trips extended timestamps at chunk size 1 (extended field on every type 3 chunk)', () => {
    const m = msg({ timestamp: 0x80000000, payload: bytes(9) });
    const wire = Buffer.concat([encodeChunks({ csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: u32(1) }, 128), encodeChunks(m, 1)]);
    const out = decodeWhole(wire);
    expect(out).toHaveLength(2);
    expect(out[1]).toEqual(expected(m));
  });

  it('reassembles messages interleaved chunk by chunk on different chunk streams', () => {
    const a = msg({ csid: 4, typeId: MessageType.Audio, timestamp: 100, payload: bytes(300, 11) });
    const b = msg({ csid: 6, typeId: MessageType.Video, timestamp: 90, payload: bytes(200, 12) });
    const ea = encodeChunks(a, 128); // [12 + 128][1 + 128][1 + 44]
    const eb = encodeChunks(b, 128); // [12 + 128][1 + 72]
    const wire = Buffer.concat([
      ea.subarray(0, 140),
      eb.subarray(0, 140),
      ea.subarray(140, 269),
      eb.subarray(140),
      ea.subarray(269),
    ]);
    expectDecodesEverywhere(wire, [expected(b), expected(a)]);
  });

  it('emits zero-length messages, alone and between others, at any split', () => {
    const empty = msg({ csid: 5, typeId: MessageType.DataAmf0, timestamp: 7, payload: Buffer.alloc(0) });
    expectDecodesEverywhere(encodeChunks(empty, 128), [expected(empty)]);
    const before = msg({ csid: 4, payload: bytes(3) });
    const after = msg({ csid: 4, timestamp: 9, payload: bytes(4) });
    const wire = Buffer.concat([encodeChunks(before, 128), encodeChunks(empty, 128), encodeChunks(empty, 128), encodeChunks(after, 128)]);
    expectDecodesEverywhere(wire, [expected(before), expected(empty), expected(empty), expected(after)]);
  });

  it('produces payloads that stay intact after the fed buffers are overwritten', () => {
    // Whether or not the decoder shares the caller's bytes, what it hands out must equal the wire content.
    const m = msg({ payload: bytes(5000) });
    const wire = Buffer.concat([encodeChunks({ csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: u32(8192) }, 128), encodeChunks(m, 8192)]);
    const decoder = new ChunkDecoder({ minChunkSize: 1 });
    const out: RtmpMessage[] = [];
    const pieces = sliceAt(wire, [100, 3000]).map((p) => Buffer.from(p));
    for (const piece of pieces) decoder.feed(piece, (x) => out.push(x));
    pieces[1]!.fill(0); // the message was not whole in one read, so it must have been copied
    expect(out[1]!.payload.equals(m.payload)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------
// Hand-built headers: delta semantics
// ---------------------------------------------------------------------------------------

describe('ChunkDecoder header types', () => {
  it('type 1 and type 2 headers add deltas and reuse the fields they omit', () => {
    const wire = Buffer.concat([
      type0(4, 1000, 3, MessageType.Audio, 1), bytes(3, 1),
      type1(4, 20, 2, MessageType.Video), bytes(2, 2), // stream id 1 reused
      type2(4, 30), bytes(2, 3), // length 2 and type 9 reused
    ]);
    expectDecodesEverywhere(wire, [
      { csid: 4, typeId: MessageType.Audio, streamId: 1, timestamp: 1000, payload: bytes(3, 1) },
      { csid: 4, typeId: MessageType.Video, streamId: 1, timestamp: 1020, payload: bytes(2, 2) },
      { csid: 4, typeId: MessageType.Video, streamId: 1, timestamp: 1050, payload: bytes(2, 3) },
    ]);
  });

  it('a type 3 chunk starting a new message adds the previous delta (after type 1/2)', () => {
    const wire = Buffer.concat([
      type0(4, 1000, 2, MessageType.Audio, 1), bytes(2, 1),
      type2(4, 30), bytes(2, 2),
      type3(4), bytes(2, 3),
      type3(4), bytes(2, 4),
    ]);
    expect(decodeWhole(wire).map((m) => m.timestamp)).toEqual([1000, 1030, 1060, 1090]);
    expectDecodesEverywhere(wire, decodeWhole(wire));
  });

  it('a type 3 chunk starting a new message right after a type 0 header adds the absolute value (ffmpeg/librtmp)', () => {
    const wire = Buffer.concat([
      type0(4, 1000, 2, MessageType.Audio, 1), bytes(2, 1),
      type3(4), bytes(2, 2),
      type3(4), bytes(2, 3),
    ]);
    const out = decodeWhole(wire);
    expect(out.map((m) => m.timestamp)).toEqual([1000, 2000, 3000]);
    expect(out.every((m) => m.typeId === MessageType.Audio && m.streamId === 1 && m.payload.length === 2)).toBe(true);
    expectDecodesEverywhere(wire, out);
  });

  it('type 3 continuation chunks do not change the timestamp of the message they continue', () => {
    const payload = bytes(300);
    const wire = Buffer.concat([
      type0(6, 500, 300, MessageType.Video, 1), payload.subarray(0, 128),
      type3(6), payload.subarray(128, 256),
      type3(6), payload.subarray(256),
      type3(6), bytes(300, 9).subarray(0, 128), // new message: +500
      type3(6), bytes(300, 9).subarray(128, 256),
      type3(6), bytes(300, 9).subarray(256),
    ]);
    const out = decodeWhole(wire);
    expect(out).toEqual([
      { csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: 500, payload },
      { csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: 1000, payload: bytes(300, 9) },
    ]);
    expectDecodesEverywhere(wire, out);
  });

  it('reads an extended timestamp on type 0 and skips the repeated one on type 3 continuations', () => {
    const payload = bytes(200);
    const ts = 0x01020304;
    const wire = Buffer.concat([type0(4, ts, 200, MessageType.Audio, 1), payload.subarray(0, 128), type3(4, ts), payload.subarray(128)]);
    const out = decodeWhole(wire);
    expect(out).toEqual([{ csid: 4, typeId: MessageType.Audio, streamId: 1, timestamp: ts, payload }]);
    expectDecodesEverywhere(wire, out);
  });

  it('a type 3 chunk starting a new message after an extended header reads its extended field as the delta', () => {
    const wire = Buffer.concat([
      type0(4, 0x01000000, 2, MessageType.Audio, 1), bytes(2, 1),
      type3(4, 0x01000000), bytes(2, 2),
    ]);
    const out = decodeWhole(wire);
    expect(out.map((m) => m.timestamp)).toEqual([0x01000000, 0x02000000]);
    expectDecodesEverywhere(wire, out);
  });

  it('type 1 and type 2 headers carry extended deltas', () => {
    const wire = Buffer.concat([
      type0(4, 10, 2, MessageType.Audio, 1), bytes(2, 1),
      type1(4, 0x01000000, 3, MessageType.Video), bytes(3, 2),
      type2(4, 0xffffff), bytes(3, 3),
      type2(4, 5), bytes(3, 4), // back to a plain delta: no extended field follows
    ]);
    const out = decodeWhole(wire);
    expect(out.map((m) => m.timestamp)).toEqual([10, 10 + 0x01000000, 10 + 0x01000000 + 0xffffff, 10 + 0x01000000 + 0xffffff + 5]);
    expect(out.map((m) => m.payload.length)).toEqual([2, 3, 3, 3]);
    expectDecodesEverywhere(wire, out);
  });

  it('timestamps wrap modulo 2^32 when deltas cross the top', () => {
    const wire = Buffer.concat([
      type0(4, 0xfffffff0, 1, MessageType.Audio, 1), bytes(1, 1),
      type2(4, 0x20), bytes(1, 2),
    ]);
    expect(decodeWhole(wire).map((m) => m.timestamp)).toEqual([0xfffffff0, 0x10]);
  });

  it('keeps separate header state per chunk stream', () => {
    const wire = Buffer.concat([
      type0(4, 100, 1, MessageType.Audio, 1), bytes(1, 1),
      type0(6, 5000, 2, MessageType.Video, 3), bytes(2, 2),
      type2(4, 10), bytes(1, 3),
      type2(6, 40), bytes(2, 4),
    ]);
    expect(decodeWhole(wire).map((m) => [m.csid, m.typeId, m.streamId, m.timestamp])).toEqual([
      [4, MessageType.Audio, 1, 100],
      [6, MessageType.Video, 3, 5000],
      [4, MessageType.Audio, 1, 110],
      [6, MessageType.Video, 3, 5040],
    ]);
  });

  it('a new type 0 header on a chunk stream abandons its half-received message', () => {
    const wire = Buffer.concat([
      type0(4, 1, 300, MessageType.Audio, 1), bytes(128, 1),
      type0(4, 2, 5, MessageType.Audio, 1), bytes(5, 2),
    ]);
    expectDecodesEverywhere(wire, [{ csid: 4, typeId: MessageType.Audio, streamId: 1, timestamp: 2, payload: bytes(5, 2) }]);
  });
});

// ---------------------------------------------------------------------------------------
// Set Chunk Size and Abort
// ---------------------------------------------------------------------------------------

describe('ChunkDecoder protocol control', () => {
  const setChunkSizeMessage = (size: number): Buffer =>
    encodeChunks({ csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: u32(size) }, 128);

  it('applies Set Chunk Size at the byte it takes effect, within one buffer', () => {
    const big = msg({ csid: 6, typeId: MessageType.Video, timestamp: 33, payload: bytes(3000) });
    const wire = Buffer.concat([setChunkSizeMessage(4096), encodeChunks(big, 4096)]);
    // A single 3000-byte chunk: misread entirely if the new size were not applied.
    expect(encodeChunks(big, 4096).length).toBe(12 + 3000);
    const decoder = new ChunkDecoder({ minChunkSize: 1 });
    const out: RtmpMessage[] = [];
    decoder.feed(wire, (m) => out.push(snapshot(m)));
    expect(out).toEqual([
      { csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: u32(4096) },
      expected(big),
    ]);
    expect(decoder.incomingChunkSize).toBe(4096);
    expectDecodesEverywhere(wire, out);
  });

  it('applies a Set Chunk Size that arrives between the chunks of another message', () => {
    const a = msg({ csid: 4, payload: bytes(500, 3) });
    const ea = encodeChunks(a, 128);
    const rest = a.payload.subarray(128);
    const wire = Buffer.concat([ea.subarray(0, 140), setChunkSizeMessage(1000), type3(4), rest]);
    expectDecodesEverywhere(wire, [
      { csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: u32(1000) },
      expected(a),
    ]);
  });

  it('accepts the largest chunk size the spec allows', () => {
    const decoder = new ChunkDecoder({ minChunkSize: 1 });
    decoder.feed(setChunkSizeMessage(MAX_CHUNK_SIZE), () => undefined);
    expect(decoder.incomingChunkSize).toBe(0x7fffffff);
  });

  it('starts at chunk size 128', () => {
    expect(new ChunkDecoder({ minChunkSize: 1 }).incomingChunkSize).toBe(128);
  });

  it('Abort discards the partial message on the named chunk stream', () => {
    const abort = encodeChunks({ csid: 2, typeId: MessageType.Abort, streamId: 0, timestamp: 0, payload: u32(4) }, 128);
    const next = msg({ csid: 4, timestamp: 77, payload: bytes(10, 5) });
    const wire = Buffer.concat([
      type0(4, 50, 300, MessageType.Audio, 1), bytes(128, 1), // first chunk of a 300-byte message
      abort,
      encodeChunks(next, 128),
    ]);
    expectDecodesEverywhere(wire, [
      { csid: 2, typeId: MessageType.Abort, streamId: 0, timestamp: 0, payload: u32(4) },
      expected(next),
    ]);
  });

  it('after an Abort, a type 3 chunk on that stream starts a new message with the old header', () => {
    const abort = encodeChunks({ csid: 2, typeId: MessageType.Abort, streamId: 0, timestamp: 0, payload: u32(4) }, 128);
    const wire = Buffer.concat([
      type0(4, 50, 130, MessageType.Audio, 1), bytes(128, 1),
      abort,
      type3(4), bytes(128, 2), type3(4), bytes(2, 3),
    ]);
    const out = decodeWhole(wire);
    expect(out).toEqual([
      { csid: 2, typeId: MessageType.Abort, streamId: 0, timestamp: 0, payload: u32(4) },
      { csid: 4, typeId: MessageType.Audio, streamId: 1, timestamp: 100, payload: Buffer.concat([bytes(128, 2), bytes(2, 3)]) },
    ]);
    expectDecodesEverywhere(wire, out);
  });

  it('an Abort for a chunk stream that does not exist is passed on and changes nothing', () => {
    const abort = encodeChunks({ csid: 2, typeId: MessageType.Abort, streamId: 0, timestamp: 0, payload: u32(33) }, 128);
    const a = msg({ csid: 4, payload: bytes(200) });
    const ea = encodeChunks(a, 128);
    const wire = Buffer.concat([ea.subarray(0, 140), abort, ea.subarray(140)]);
    expect(decodeWhole(wire)).toEqual([
      { csid: 2, typeId: MessageType.Abort, streamId: 0, timestamp: 0, payload: u32(33) },
      expected(a),
    ]);
  });
});

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

describe('ChunkDecoder errors', () => {
  const control = (typeId: number, payload: Buffer): Buffer => encodeChunks({ csid: 2, typeId, streamId: 0, timestamp: 0, payload }, 128);

  function errorCode(wire: Buffer, limits: Partial<ChunkDecoderLimits> = {}): string {
    return protocolError(() => decodeWhole(wire, limits)).code;
  }

  function errorCodeBytewise(wire: Buffer, limits: Partial<ChunkDecoderLimits> = {}): string {
    return protocolError(() => decodePieces(byteByByte(wire), limits)).code;
  }

  it.each([0, 0x80000000, 0xffffffff])('rejects Set Chunk Size %i', (size) => {
    const wire = control(MessageType.SetChunkSize, u32(size));
    expect(errorCode(wire)).toBe('RTMP_BAD_CHUNK_SIZE');
    expect(errorCodeBytewise(wire)).toBe('RTMP_BAD_CHUNK_SIZE');
  });

  it('rejects a Set Chunk Size message shorter than 4 bytes', () => {
    expect(errorCode(control(MessageType.SetChunkSize, Buffer.from([0, 0, 16])))).toBe('RTMP_BAD_CHUNK_SIZE');
  });

  it('rejects an Abort message shorter than 4 bytes', () => {
    expect(errorCode(control(MessageType.Abort, Buffer.from([0, 4])))).toBe('RTMP_BAD_CHUNK');
  });

  it('rejects a message longer than maxMessageSize, and accepts one exactly at it', () => {
    const limits = { maxMessageSize: 1000 };
    expect(decodeWhole(encodeChunks(msg({ payload: bytes(1000) }), 128), limits)[0]!.payload.length).toBe(1000);
    const header = type0(4, 0, 1001, MessageType.Video, 1);
    expect(errorCode(header, limits)).toBe('RTMP_MESSAGE_TOO_LARGE');
    expect(errorCodeBytewise(header, limits)).toBe('RTMP_MESSAGE_TOO_LARGE');
  });

  it('checks the length in type 1 headers too', () => {
    const wire = Buffer.concat([type0(4, 0, 1, MessageType.Audio, 1), bytes(1), type1(4, 10, 5000, MessageType.Audio)]);
    expect(errorCode(wire, { maxMessageSize: 4096 })).toBe('RTMP_MESSAGE_TOO_LARGE');
  });

  it('uses an 8 MiB default limit', () => {
    expect(DEFAULT_DECODER_LIMITS.maxMessageSize).toBe(8 * 1024 * 1024);
    expect(errorCode(type0(4, 0, 8 * 1024 * 1024 + 1, MessageType.Video, 1))).toBe('RTMP_MESSAGE_TOO_LARGE');
    expect(errorCode(type0(4, 0, 0xffffff, MessageType.Video, 1))).toBe('RTMP_MESSAGE_TOO_LARGE');
    // At the limit the header is accepted (the body simply has not arrived yet).
    expect(decodeWhole(type0(4, 0, 8 * 1024 * 1024, MessageType.Video, 1))).toEqual([]);
  });

  it.each([0, 7, 10, 21, 23, 99, 255])('rejects unknown message type %i in a type 0 header', (typeId) => {
    const wire = type0(4, 0, 2, typeId, 1);
    expect(errorCode(wire)).toBe('RTMP_UNKNOWN_MESSAGE_TYPE');
    expect(errorCodeBytewise(wire)).toBe('RTMP_UNKNOWN_MESSAGE_TYPE');
  });

  it('rejects an unknown message type in a type 1 header', () => {
    const wire = Buffer.concat([type0(4, 0, 1, MessageType.Audio, 1), bytes(1), type1(4, 1, 1, 7)]);
    expect(errorCode(wire)).toBe('RTMP_UNKNOWN_MESSAGE_TYPE');
  });

  it.each([1, 2, 3])('rejects a type %i chunk on a chunk stream never opened', (fmt) => {
    const header = fmt === 1 ? type1(5, 0, 1, MessageType.Audio) : fmt === 2 ? type2(5, 0) : type3(5);
    const wire = Buffer.concat([type0(4, 0, 1, MessageType.Audio, 1), bytes(1), header, bytes(1)]);
    expect(errorCode(wire)).toBe('RTMP_BAD_CHUNK');
    expect(errorCodeBytewise(wire)).toBe('RTMP_BAD_CHUNK');
    // First thing on the connection, too.
    expect(errorCode(Buffer.concat([header, bytes(1)]))).toBe('RTMP_BAD_CHUNK');
  });

  it('limits the number of chunk streams a peer may open', () => {
    const open = (csids: number[]): Buffer => Buffer.concat(csids.flatMap((c) => [type0(c, 0, 1, MessageType.Audio, 1), bytes(1)]));
    expect(decodeWhole(open([2, 3, 4]), { maxChunkStreams: 3 })).toHaveLength(3);
    // Reusing an open stream is fine.
    expect(decodeWhole(open([2, 3, 4, 2, 3, 4]), { maxChunkStreams: 3 })).toHaveLength(6);
    expect(errorCode(open([2, 3, 4, 5]), { maxChunkStreams: 3 })).toBe('RTMP_TOO_MANY_CHUNK_STREAMS');
    expect(errorCodeBytewise(open([2, 3, 4, 5]), { maxChunkStreams: 3 })).toBe('RTMP_TOO_MANY_CHUNK_STREAMS');
  });

  it('allows 64 chunk streams by default and refuses the 65th', () => {
    expect(DEFAULT_DECODER_LIMITS.maxChunkStreams).toBe(64);
    const csids = Array.from({ length: 65 }, (_, i) => 2 + i * 7);
    const wire = Buffer.concat(csids.flatMap((c) => [type0(c, 0, 1, MessageType.Audio, 1), bytes(1)]));
    const out: RtmpMessage[] = [];
    const decoder = new ChunkDecoder({ minChunkSize: 1 });
    const err = protocolError(() => decoder.feed(wire, (m) => out.push(m)));
    expect(err.code).toBe('RTMP_TOO_MANY_CHUNK_STREAMS');
    expect(out).toHaveLength(64);
  });

  // A peer announcing big messages on many chunk streams but sending little must not make
  // the decoder hold the announced lengths (62 x 8 MiB from 8,680 bytes on the wire).
  it('holds memory in proportion to the bytes received, not to the lengths announced', () => {
    const wire = Buffer.concat(
      Array.from({ length: 62 }, (_, i) => Buffer.concat([type0(2 + i, 0, 8 * 1024 * 1024, MessageType.Video, 1), Buffer.alloc(128)])),
    );
    expect(wire.length).toBe(8680);
    const decoder = new ChunkDecoder({ minChunkSize: 1 });
    const before = process.memoryUsage().arrayBuffers;
    decoder.feed(wire, () => undefined);
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(decoder.incomingChunkSize).toBe(128); // keep the decoder (and what it holds) alive until measured
    expect(grown).toBeLessThan(32 * 1024 * 1024);
  });

  it('refuses more unfinished bytes across chunk streams than maxPendingBytes', () => {
    const decoder = new ChunkDecoder({ minChunkSize: 1, maxMessageSize: 4096, maxPendingBytes: 5000 });
    // Chunks of 3000 bytes: each 4096-byte message stays unfinished after its first chunk.
    decoder.feed(setChunkSizeWire(3000), () => undefined);
    const first = Buffer.concat([type0(4, 0, 4096, MessageType.Video, 1), Buffer.alloc(3000)]);
    decoder.feed(first, () => undefined);
    const second = Buffer.concat([type0(5, 0, 4096, MessageType.Video, 1), Buffer.alloc(3000)]);
    expect(protocolError(() => decoder.feed(second, () => undefined)).code).toBe('RTMP_TOO_MUCH_PENDING');
  });

  it('refuses a chunk size below minChunkSize (default 128): tiny chunks are a CPU and heap flood', () => {
    const decoder = new ChunkDecoder();
    expect(protocolError(() => decoder.feed(setChunkSizeWire(127), () => undefined)).code).toBe('RTMP_BAD_CHUNK_SIZE');
    const ok = new ChunkDecoder();
    ok.feed(setChunkSizeWire(128), () => undefined);
    expect(ok.incomingChunkSize).toBe(128);
  });

  it('raising the message cap raises the cap on unfinished bytes with it (a publisher\'s large keyframes)', () => {
    const decoder = new ChunkDecoder({ maxMessageSize: 64 * 1024 });
    decoder.setMaxMessageSize(8 * 1024 * 1024);
    decoder.feed(setChunkSizeWire(4096), () => undefined);
    const big = { csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: 0, payload: Buffer.alloc(600_000, 7) };
    const out: RtmpMessage[] = [];
    decoder.feed(encodeChunks(big, 4096), (m) => out.push(m));
    expect(out).toHaveLength(1);
    expect(out[0]!.payload.length).toBe(600_000);
  });

  it('frees pending bytes when a message completes, so the cap is per moment, not cumulative', () => {
    const decoder = new ChunkDecoder({ minChunkSize: 1, maxMessageSize: 4096, maxPendingBytes: 5000 });
    decoder.feed(setChunkSizeWire(4096), () => undefined);
    const out: RtmpMessage[] = [];
    for (let i = 0; i < 10; i++) {
      decoder.feed(Buffer.concat([type0(4, i, 4000, MessageType.Video, 1), Buffer.alloc(4000)]), (m) => out.push(m));
    }
    expect(out).toHaveLength(10);
  });

  it('messages completed before the bad bytes are still delivered', () => {
    const good = msg({ payload: bytes(5) });
    const out: RtmpMessage[] = [];
    const decoder = new ChunkDecoder({ minChunkSize: 1 });
    expect(() => decoder.feed(Buffer.concat([encodeChunks(good, 128), type0(4, 0, 1, 99, 1)]), (m) => out.push(snapshot(m)))).toThrow(ProtocolError);
    expect(out).toEqual([expected(good)]);
  });
});

/** A Set Chunk Size message on chunk stream 2, as a peer sends it. */
function setChunkSizeWire(size: number): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt32BE(size, 0);
  return Buffer.concat([type0(2, 0, 4, MessageType.SetChunkSize, 0), body]);
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

const KNOWN_NON_CONTROL_TYPES = [3, 4, 5, 6, 8, 9, 15, 16, 17, 18, 19, 20, 22];

type Item = { kind: 'message'; message: OutgoingMessage } | { kind: 'chunkSize'; size: number };

const csidArb = fc.oneof(fc.integer({ min: 2, max: 63 }), fc.integer({ min: 64, max: 319 }), fc.integer({ min: 320, max: 65599 }));
const timestampArb = fc.oneof(
  fc.integer({ min: 0, max: 0xfffffe }),
  fc.integer({ min: 0xfffff0, max: 0x100000f }),
  fc.integer({ min: 0, max: 0xffffffff }),
);
const chunkSizeArb = fc.oneof(fc.constantFrom(1, 2, 7, 128, 4096), fc.integer({ min: 1, max: 700 }));

const messageArb: fc.Arbitrary<OutgoingMessage> = fc.record({
  csid: csidArb,
  typeId: fc.constantFrom(...KNOWN_NON_CONTROL_TYPES),
  streamId: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 0xffffffff })),
  timestamp: timestampArb,
  payload: fc.oneof(fc.constant(Buffer.alloc(0)), fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a))),
});

const itemsArb: fc.Arbitrary<Item[]> = fc.array(
  fc.oneof(
    { weight: 5, arbitrary: messageArb.map((message): Item => ({ kind: 'message', message })) },
    { weight: 1, arbitrary: chunkSizeArb.map((size): Item => ({ kind: 'chunkSize', size })) },
  ),
  { maxLength: 12 },
);

/** Encodes the items the way a peer would: each Set Chunk Size changes how later messages are chunked. */
function encodeItems(items: readonly Item[], initialChunkSize: number): { wire: Buffer; expected: RtmpMessage[] } {
  let chunkSize = 128;
  const pieces: Buffer[] = [];
  const out: RtmpMessage[] = [];
  const all: Item[] = [{ kind: 'chunkSize', size: initialChunkSize }, ...items];
  for (const item of all) {
    const m: OutgoingMessage =
      item.kind === 'message' ? item.message : { csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: u32(item.size) };
    pieces.push(encodeChunks(m, chunkSize));
    out.push(expected(m));
    if (item.kind === 'chunkSize') chunkSize = item.size;
  }
  return { wire: Buffer.concat(pieces), expected: out };
}

function cutsFor(length: number, raw: readonly number[]): number[] {
  return [...new Set(raw.map((r) => (length === 0 ? 0 : r % (length + 1))))].sort((a, b) => a - b);
}

/** Messages produced and the error code thrown (if any) when feeding the pieces to a fresh decoder. */
function outcomeOf(pieces: readonly Buffer[]): { messages: RtmpMessage[]; error?: string } {
  const decoder = new ChunkDecoder({ minChunkSize: 1, maxMessageSize: 64 * 1024, maxChunkStreams: 8 });
  const messages: RtmpMessage[] = [];
  try {
    for (const piece of pieces) decoder.feed(piece, (m) => messages.push(snapshot(m)));
    return { messages };
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    return { messages, error: err.code };
  }
}

/**
 * Byte soup shaped like chunk streams, so the decoder is driven into every state: headers of
 * each type on a few chunk streams (2- and 3-byte forms too), extended timestamps, small and
 * unknown message types and lengths, Set Chunk Size and Abort with any payload, stray bytes.
 */
const fragmentArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 10, arbitrary: fc
    .record({
      fmt: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }) }),
      csid: fc.constantFrom(2, 3, 4, 63, 64, 319, 320, 5000),
      ts: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 100 }) }, { weight: 1, arbitrary: fc.constantFrom(0xfffffe, 0xffffff, 0x1000000, 0xffffffff) }),
      length: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 300 }) }, { weight: 1, arbitrary: fc.constantFrom(0xffffff, 64 * 1024 + 1) }),
      typeId: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(3, 4, 8, 9, 18, 20, 22) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
      // Usually exactly what the header announces (up to one 128-byte chunk), sometimes anything.
      body: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) }),
    })
    .map(({ fmt, csid, ts, length, typeId, body }) => {
      const header =
        fmt === 0 ? type0(csid, ts, length, typeId, 1) : fmt === 1 ? type1(csid, ts, length, typeId) : fmt === 2 ? type2(csid, ts) : type3(csid, ts >= 0xffffff ? ts : undefined);
      return Buffer.concat([header, body ? Buffer.from(body) : bytes(Math.min(length, 128), length)]);
    }) },
  { weight: 2, arbitrary: fc
    .tuple(fc.constantFrom(MessageType.SetChunkSize, MessageType.Abort), fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constant(0x80000000), fc.integer({ min: 0, max: 0xffffffff })), fc.integer({ min: 0, max: 5 }))
    .map(([typeId, value, length]) => {
      const payload = Buffer.alloc(Math.max(length, 0));
      u32(value).copy(payload, 0, 0, Math.min(4, length));
      return encodeChunks({ csid: 2, typeId, streamId: 0, timestamp: 0, payload }, 128);
    }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((a) => Buffer.from(a)) },
);

const OPENERS = [2, 3, 4, 63, 64, 319, 320, 5000].map((csid) => Buffer.concat([type0(csid, 1, 1, MessageType.Audio, 1), bytes(1, csid)]));

const noiseArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
  // Mostly after an opening type 0 message on each chunk stream, so later type 1/2/3 headers have state.
  fc
    .tuple(fc.boolean(), fc.array(fragmentArb, { maxLength: 20 }))
    .map(([open, parts]) => Buffer.concat([...(open ? OPENERS : []), ...parts])),
);

describe('ChunkDecoder properties', () => {
  it('random message lists round-trip at random chunk sizes and random split points', () => {
    fc.assert(
      fc.property(itemsArb, chunkSizeArb, fc.array(fc.nat(), { maxLength: 40 }), (items, initialChunkSize, rawCuts) => {
        const { wire, expected: want } = encodeItems(items, initialChunkSize);
        const got = decodePieces(sliceAt(wire, cutsFor(wire.length, rawCuts)));
        expect(got).toEqual(want);
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('arbitrary bytes either decode to messages or throw ProtocolError, nothing else', () => {
    const outcomes = { ok: 0, errors: 0, messages: 0 };
    fc.assert(
      fc.property(noiseArb, fc.array(fc.nat(), { maxLength: 10 }), (wire, rawCuts) => {
        try {
          const out = decodePieces(sliceAt(wire, cutsFor(wire.length, rawCuts)));
          outcomes.ok += 1;
          outcomes.messages += out.length;
          for (const m of out) {
            expect(Buffer.isBuffer(m.payload)).toBe(true);
            expect(Number.isInteger(m.timestamp) && m.timestamp >= 0 && m.timestamp <= 0xffffffff).toBe(true);
            expect(m.csid).toBeGreaterThanOrEqual(2);
            expect(m.csid).toBeLessThanOrEqual(65599);
          }
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
          outcomes.errors += 1;
        }
      }),
      { seed: 42, numRuns: 500 },
    );
    // The generator must reach past the first header both ways, or the property proves little.
    expect(outcomes.ok).toBeGreaterThan(50);
    expect(outcomes.errors).toBeGreaterThan(50);
    expect(outcomes.messages).toBeGreaterThan(200);
  });

  it('the outcome for arbitrary bytes does not depend on how they were split', () => {
    fc.assert(
      fc.property(noiseArb, fc.array(fc.nat(), { maxLength: 20 }), (wire, rawCuts) => {
        expect(outcomeOf(sliceAt(wire, cutsFor(wire.length, rawCuts)))).toEqual(outcomeOf([wire]));
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('corrupted valid streams either decode or throw ProtocolError, and the outcome does not depend on how the bytes were split', () => {
    const corruptedArb = fc
      .tuple(itemsArb, chunkSizeArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
      .map(([items, size, flips]) => {
        const { wire } = encodeItems(items, size);
        const copy = Buffer.from(wire);
        for (const [at, value] of flips) if (copy.length > 0) copy[at % copy.length] = value;
        return copy;
      });
    fc.assert(
      fc.property(corruptedArb, fc.array(fc.nat(), { maxLength: 20 }), (wire, rawCuts) => {
        expect(outcomeOf(sliceAt(wire, cutsFor(wire.length, rawCuts)))).toEqual(outcomeOf([wire]));
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});
