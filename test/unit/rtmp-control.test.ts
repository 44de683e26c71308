import { describe, expect, it } from 'vitest';
import { ChunkDecoder, type RtmpMessage } from '../../src/protocol/rtmp/chunk-decoder.js';
import {
  acknowledgement,
  parseUserControl,
  pingRequest,
  pingResponse,
  setChunkSize,
  setPeerBandwidth,
  streamBegin,
  streamEof,
  streamIsRecorded,
  windowAckSize,
} from '../../src/protocol/rtmp/control.js';
import { splitAggregate } from '../../src/protocol/rtmp/aggregate.js';
import { MessageType, UserControlEvent } from '../../src/protocol/rtmp/message-types.js';
import { protocolError } from '../helpers/protocol-error.js';

/** Decodes bytes that must hold exactly one message. */
function decodeOne(wire: Buffer): RtmpMessage {
  const out: RtmpMessage[] = [];
  new ChunkDecoder().feed(wire, (m) => out.push(m));
  expect(out).toHaveLength(1);
  return out[0]!;
}

function expectControlEnvelope(m: RtmpMessage, typeId: number, length: number): void {
  expect(m.csid).toBe(2);
  expect(m.streamId).toBe(0);
  expect(m.timestamp).toBe(0);
  expect(m.typeId).toBe(typeId);
  expect(m.payload.length).toBe(length);
}

describe('protocol control messages', () => {
  it('setChunkSize carries the size, and the decoder applies it', () => {
    const wire = setChunkSize(4096);
    expect(wire.length).toBe(12 + 4);
    const decoder = new ChunkDecoder();
    const out: RtmpMessage[] = [];
    decoder.feed(wire, (m) => out.push(m));
    expectControlEnvelope(out[0]!, MessageType.SetChunkSize, 4);
    expect(out[0]!.payload.readUInt32BE(0)).toBe(4096);
    expect(decoder.incomingChunkSize).toBe(4096);
  });

  it.each([0, 0x80000000])('setChunkSize(%i) is refused by the decoder', (size) => {
    expect(protocolError(() => new ChunkDecoder().feed(setChunkSize(size), () => undefined)).code).toBe('RTMP_BAD_CHUNK_SIZE');
  });

  it.each([0, 1, 2_500_000, 0xffffffff])('acknowledgement(%i)', (seq) => {
    const m = decodeOne(acknowledgement(seq));
    expectControlEnvelope(m, MessageType.Acknowledgement, 4);
    expect(m.payload.readUInt32BE(0)).toBe(seq);
  });

  it('acknowledgement writes sequence numbers modulo 2^32', () => {
    expect(decodeOne(acknowledgement(0x1_0000_0007)).payload.readUInt32BE(0)).toBe(7);
  });

  it.each([2_500_000, 5_000_000, 0x7fffffff])('windowAckSize(%i)', (size) => {
    const m = decodeOne(windowAckSize(size));
    expectControlEnvelope(m, MessageType.WindowAckSize, 4);
    expect(m.payload.readUInt32BE(0)).toBe(size);
  });

  it.each([0, 1, 2] as const)('setPeerBandwidth with limit type %i', (limitType) => {
    const m = decodeOne(setPeerBandwidth(5_000_000, limitType));
    expectControlEnvelope(m, MessageType.SetPeerBandwidth, 5);
    expect(m.payload.readUInt32BE(0)).toBe(5_000_000);
    expect(m.payload[4]).toBe(limitType);
  });
});

describe('user control messages', () => {
  it.each([
    ['streamBegin', streamBegin, UserControlEvent.StreamBegin],
    ['streamEof', streamEof, UserControlEvent.StreamEof],
    ['streamIsRecorded', streamIsRecorded, UserControlEvent.StreamIsRecorded],
  ] as const)('%s(streamId) carries its event type and the stream id', (event, build, type) => {
    const m = decodeOne(build(7));
    expectControlEnvelope(m, MessageType.UserControl, 6);
    expect(m.payload.readUInt16BE(0)).toBe(type);
    expect(m.payload.readUInt32BE(2)).toBe(7);
    expect(parseUserControl(m.payload)).toEqual({ event, streamId: 7 });
  });

  it.each([
    ['pingRequest', pingRequest, UserControlEvent.PingRequest],
    ['pingResponse', pingResponse, UserControlEvent.PingResponse],
  ] as const)('%s(timestamp) carries its event type and the timestamp', (event, build, type) => {
    const m = decodeOne(build(0xdeadbeef));
    expectControlEnvelope(m, MessageType.UserControl, 6);
    expect(m.payload.readUInt16BE(0)).toBe(type);
    expect(parseUserControl(m.payload)).toEqual({ event, timestamp: 0xdeadbeef });
  });

  it('ping timestamps are written modulo 2^32', () => {
    expect(parseUserControl(decodeOne(pingResponse(0x1_0000_0010)).payload)).toEqual({ event: 'pingResponse', timestamp: 0x10 });
  });
});

describe('parseUserControl', () => {
  const payload = (type: number, ...values: number[]): Buffer => {
    const b = Buffer.alloc(2 + values.length * 4);
    b.writeUInt16BE(type, 0);
    values.forEach((v, i) => b.writeUInt32BE(v, 2 + i * 4));
    return b;
  };

  it('StreamBegin (0)', () => {
    expect(parseUserControl(payload(0, 1))).toEqual({ event: 'streamBegin', streamId: 1 });
  });

  it('StreamEOF (1)', () => {
    expect(parseUserControl(payload(1, 2))).toEqual({ event: 'streamEof', streamId: 2 });
  });

  it('StreamDry (2)', () => {
    expect(parseUserControl(payload(2, 3))).toEqual({ event: 'streamDry', streamId: 3 });
  });

  it('SetBufferLength (3) with stream id and buffer length', () => {
    expect(parseUserControl(payload(3, 1, 3000))).toEqual({ event: 'setBufferLength', streamId: 1, bufferMs: 3000 });
  });

  it('SetBufferLength without the buffer length field reports 0 ms', () => {
    expect(parseUserControl(payload(3, 1))).toEqual({ event: 'setBufferLength', streamId: 1, bufferMs: 0 });
  });

  it('StreamIsRecorded (4)', () => {
    expect(parseUserControl(payload(4, 5))).toEqual({ event: 'streamIsRecorded', streamId: 5 });
  });

  it('PingRequest (6) and PingResponse (7)', () => {
    expect(parseUserControl(payload(6, 123456))).toEqual({ event: 'pingRequest', timestamp: 123456 });
    expect(parseUserControl(payload(7, 654321))).toEqual({ event: 'pingResponse', timestamp: 654321 });
  });

  it.each([5, 8, 26, 31, 32, 0xffff])('reports unknown event %i as other', (type) => {
    expect(parseUserControl(payload(type, 1))).toEqual({ event: 'other', type });
  });

  it('reports undefined for a payload too short to hold an event type', () => {
    expect(parseUserControl(Buffer.alloc(0))).toBeUndefined();
    expect(parseUserControl(Buffer.from([0]))).toBeUndefined();
  });

  it('reads a missing or truncated argument as 0', () => {
    expect(parseUserControl(Buffer.from([0, 0]))).toEqual({ event: 'streamBegin', streamId: 0 });
    expect(parseUserControl(Buffer.from([0, 6, 1, 2, 3]))).toEqual({ event: 'pingRequest', timestamp: 0 });
  });
});

// ---------------------------------------------------------------------------------------
// Aggregate messages
// ---------------------------------------------------------------------------------------

/** One FLV tag: type, u24 size, u24 time + u8 time-extended, u24 stream id 0, body, u32 back pointer. */
function flvTag(type: number, time: number, body: Buffer): Buffer {
  const header = Buffer.alloc(11);
  header[0] = type;
  header.writeUIntBE(body.length, 1, 3);
  header.writeUIntBE(time & 0xffffff, 4, 3);
  header[7] = (time >>> 24) & 0xff;
  const back = Buffer.alloc(4);
  back.writeUInt32BE(11 + body.length, 0);
  return Buffer.concat([header, body, back]);
}

describe('splitAggregate', () => {
  const audio = Buffer.from([0xaf, 0x01, 0x21, 0x10, 0x04]);
  const video = Buffer.from([0x27, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x41, 0x9a]);

  it('splits audio and video sub-tags and rebases their relative timestamps', () => {
    const aggregate = Buffer.concat([flvTag(8, 1000, audio), flvTag(9, 1040, video)]);
    const parts = splitAggregate(aggregate, 50_000);
    expect(parts).toEqual([
      { kind: 'audio', timestamp: 50_000, payload: audio },
      { kind: 'video', timestamp: 50_040, payload: video },
    ]);
  });

  it('returns payloads that are views of the aggregate, not copies', () => {
    const aggregate = Buffer.concat([flvTag(8, 0, audio), flvTag(9, 0, video)]);
    const parts = splitAggregate(aggregate, 0);
    expect(parts[0]!.payload.buffer).toBe(aggregate.buffer);
    expect(parts[1]!.payload.byteOffset).toBe(aggregate.byteOffset + 11 + audio.length + 4 + 11);
  });

  it('reads the extended (top) byte of sub-tag timestamps', () => {
    const base = 0x01000000 - 20; // crosses the 24-bit boundary between the tags
    const aggregate = Buffer.concat([flvTag(9, base, video), flvTag(8, base + 40, audio)]);
    expect(splitAggregate(aggregate, 7).map((p) => p.timestamp)).toEqual([7, 47]);
  });

  it('skips script data and other tags but counts their time as the base', () => {
    const script = Buffer.from([0x02, 0x00, 0x04, 0x74, 0x65, 0x73, 0x74]);
    const aggregate = Buffer.concat([flvTag(18, 500, script), flvTag(8, 510, audio), flvTag(9, 520, video)]);
    expect(splitAggregate(aggregate, 1000)).toEqual([
      { kind: 'audio', timestamp: 1010, payload: audio },
      { kind: 'video', timestamp: 1020, payload: video },
    ]);
  });

  it('ignores the filter/reserved bits of the tag type byte', () => {
    const aggregate = flvTag(0x20 | 8, 0, audio);
    expect(splitAggregate(aggregate, 3)).toEqual([{ kind: 'audio', timestamp: 3, payload: audio }]);
  });

  it('accepts zero-length sub-tags and an empty aggregate', () => {
    expect(splitAggregate(Buffer.alloc(0), 0)).toEqual([]);
    expect(splitAggregate(flvTag(9, 0, Buffer.alloc(0)), 10)).toEqual([{ kind: 'video', timestamp: 10, payload: Buffer.alloc(0) }]);
  });

  it('throws RTMP_BAD_AGGREGATE when fewer than 11 header bytes remain', () => {
    const whole = Buffer.concat([flvTag(8, 0, audio), flvTag(9, 40, video)]);
    const firstTag = 11 + audio.length + 4;
    for (const extra of [1, 5, 10]) {
      const err = protocolError(() => splitAggregate(whole.subarray(0, firstTag + extra), 0));
      expect(err.code).toBe('RTMP_BAD_AGGREGATE');
    }
  });

  it('throws RTMP_BAD_AGGREGATE when a sub-tag body or back pointer overruns the message', () => {
    const whole = Buffer.concat([flvTag(8, 0, audio), flvTag(9, 40, video)]);
    for (let cut = whole.length - 1; cut > 11 + audio.length + 4 + 11; cut--) {
      expect(protocolError(() => splitAggregate(whole.subarray(0, cut), 0)).code).toBe('RTMP_BAD_AGGREGATE');
    }
    const lying = flvTag(8, 0, audio);
    lying.writeUIntBE(0xffffff, 1, 3); // declares a 16 MiB body
    expect(protocolError(() => splitAggregate(lying, 0)).code).toBe('RTMP_BAD_AGGREGATE');
  });

  it('every truncation of a valid aggregate either splits or throws ProtocolError', () => {
    const whole = Buffer.concat([flvTag(8, 0, audio), flvTag(9, 40, video), flvTag(8, 23, audio)]);
    const ends = new Set([0, 11 + audio.length + 4, 2 * 15 + audio.length + video.length, whole.length]);
    for (let cut = 0; cut <= whole.length; cut++) {
      if (ends.has(cut)) expect(() => splitAggregate(whole.subarray(0, cut), 0)).not.toThrow();
      else expect(protocolError(() => splitAggregate(whole.subarray(0, cut), 0)).code).toBe('RTMP_BAD_AGGREGATE');
    }
  });
});
