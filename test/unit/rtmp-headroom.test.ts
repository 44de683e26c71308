import { describe, expect, it } from 'vitest';
import { ChunkDecoder, type RtmpMessage } from '../../src/protocol/rtmp/chunk-decoder.js';
import { encodeChunks, type OutgoingMessage } from '../../src/protocol/rtmp/chunk-encoder.js';
import { allocWithHeadroom, claimHeadroom, WIRE_HEADROOM } from '../../src/protocol/rtmp/headroom.js';
import { MessageType } from '../../src/protocol/rtmp/message-types.js';

function pattern(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** The wire form of a message made from a plain copy of its payload (the reference bytes). */
function referenceWire(message: OutgoingMessage, chunkSize: number): Buffer {
  return encodeChunks({ ...message, payload: Buffer.from(message.payload) }, chunkSize);
}

/** A 10,000-byte video message as a publisher with 4096-byte chunks sends it, decoded. */
function decodedVideo(timestamp: number): RtmpMessage {
  const sent: OutgoingMessage = { csid: 6, typeId: MessageType.Video, streamId: 1, timestamp, payload: pattern(10_000, 7) };
  const decoder = new ChunkDecoder({ minChunkSize: 1 });
  const setChunkSize = encodeChunks({ csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: Buffer.from([0, 0, 0x10, 0]) }, 128);
  const out: RtmpMessage[] = [];
  decoder.feed(Buffer.concat([setChunkSize, encodeChunks(sent, 4096)]), (m) => out.push(m));
  expect(out.map((m) => m.typeId)).toEqual([MessageType.SetChunkSize, MessageType.Video]);
  expect(out[1]!.payload.equals(sent.payload)).toBe(true);
  return out[1]!;
}

describe('payload headroom', () => {
  it('is claimed once, only for the whole payload it was made for', () => {
    const payload = allocWithHeadroom(100);
    expect(payload.length).toBe(100);
    expect(claimHeadroom(payload.subarray(0, 50), 12)).toBeUndefined();
    expect(claimHeadroom(payload.subarray(1), 12)).toBeUndefined();
    expect(claimHeadroom(payload, WIRE_HEADROOM + 1)).toBeUndefined();
    const view = claimHeadroom(payload, 12)!;
    expect(view.length).toBe(112);
    expect(view.buffer).toBe(payload.buffer);
    expect(claimHeadroom(payload, 12)).toBeUndefined();
  });

  it('is never found on Buffers made elsewhere, pooled or not', () => {
    expect(claimHeadroom(Buffer.alloc(100), 12)).toBeUndefined();
    const pooled = Buffer.allocUnsafe(200);
    expect(claimHeadroom(pooled.subarray(WIRE_HEADROOM), 12)).toBeUndefined();
    const own = Buffer.allocUnsafeSlow(WIRE_HEADROOM + 100);
    expect(claimHeadroom(own.subarray(WIRE_HEADROOM), 12)).toBeUndefined();
  });
});

describe('wire forms made in the headroom', () => {
  it('a joined message that fits one chunk goes out without a copy, byte for byte as a copy would', () => {
    const message = decodedVideo(1234);
    const before = Buffer.from(message.payload);
    const out: OutgoingMessage = { csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: message.timestamp, payload: message.payload };
    const wire = encodeChunks(out, 65_536);
    expect(wire.buffer).toBe(message.payload.buffer);
    expect(wire.equals(referenceWire(out, 65_536))).toBe(true);
    expect(message.payload.equals(before)).toBe(true);
  });

  it('an extended timestamp (16-byte header) fits the headroom', () => {
    const message = decodedVideo(0x0100_0000);
    const out: OutgoingMessage = { csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: 0x0100_0000, payload: message.payload };
    const wire = encodeChunks(out, 65_536);
    expect(wire.buffer).toBe(message.payload.buffer);
    expect(wire.length).toBe(16 + 10_000);
    expect(wire.equals(referenceWire(out, 65_536))).toBe(true);
  });

  it('a second wire form of the same payload is a copy and leaves the first intact', () => {
    const message = decodedVideo(40);
    const player: OutgoingMessage = { csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: 40, payload: message.payload };
    const restamped: OutgoingMessage = { csid: 7, typeId: MessageType.Video, streamId: 3, timestamp: 0x0200_0000, payload: message.payload };
    const first = encodeChunks(player, 65_536);
    const firstBytes = Buffer.from(first);
    const second = encodeChunks(restamped, 65_536);
    expect(second.buffer).not.toBe(message.payload.buffer);
    expect(second.equals(referenceWire(restamped, 65_536))).toBe(true);
    expect(first.equals(firstBytes)).toBe(true);
  });

  it('a message larger than the chunk size is chunked into a new Buffer, and the headroom stays free', () => {
    const message = decodedVideo(80);
    const out: OutgoingMessage = { csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: 80, payload: message.payload };
    const chunked = encodeChunks(out, 4096);
    expect(chunked.buffer).not.toBe(message.payload.buffer);
    expect(chunked.equals(referenceWire(out, 4096))).toBe(true);
    expect(encodeChunks(out, 65_536).buffer).toBe(message.payload.buffer);
  });
});
