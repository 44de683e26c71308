import { ChunkStream, MessageType, UserControlEvent } from './message-types.js';
import { encodeChunks } from './chunk-encoder.js';

/**
 * Protocol control and user control messages (spec 5.4, 7.1.7), already chunked. They
 * all travel on chunk stream 2, message stream 0, and are far smaller than any chunk size.
 */
function control(typeId: number, payload: Buffer): Buffer {
  return encodeChunks({ csid: ChunkStream.Control, typeId, streamId: 0, timestamp: 0, payload }, 128);
}

function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

export function setChunkSize(size: number): Buffer {
  return control(MessageType.SetChunkSize, u32(size));
}

export function acknowledgement(sequenceNumber: number): Buffer {
  return control(MessageType.Acknowledgement, u32(sequenceNumber));
}

export function windowAckSize(size: number): Buffer {
  return control(MessageType.WindowAckSize, u32(size));
}

/** limitType: 0 hard, 1 soft, 2 dynamic. */
export function setPeerBandwidth(size: number, limitType: 0 | 1 | 2): Buffer {
  const b = Buffer.allocUnsafe(5);
  b.writeUInt32BE(size >>> 0, 0);
  b[4] = limitType;
  return control(MessageType.SetPeerBandwidth, b);
}

function userControl(event: number, ...values: number[]): Buffer {
  const b = Buffer.allocUnsafe(2 + values.length * 4);
  b.writeUInt16BE(event, 0);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, 2 + i * 4));
  return control(MessageType.UserControl, b);
}

export const streamBegin = (streamId: number): Buffer => userControl(UserControlEvent.StreamBegin, streamId);
export const streamEof = (streamId: number): Buffer => userControl(UserControlEvent.StreamEof, streamId);
export const streamIsRecorded = (streamId: number): Buffer => userControl(UserControlEvent.StreamIsRecorded, streamId);
export const pingResponse = (timestamp: number): Buffer => userControl(UserControlEvent.PingResponse, timestamp);
export const pingRequest = (timestamp: number): Buffer => userControl(UserControlEvent.PingRequest, timestamp);
/** How much the client buffers for a stream (players send it after play). */
export const setBufferLength = (streamId: number, bufferMs: number): Buffer => userControl(UserControlEvent.SetBufferLength, streamId, bufferMs);

export type UserControlMessage =
  | { event: 'streamBegin' | 'streamEof' | 'streamDry' | 'streamIsRecorded'; streamId: number }
  | { event: 'setBufferLength'; streamId: number; bufferMs: number }
  | { event: 'pingRequest' | 'pingResponse'; timestamp: number }
  | { event: 'other'; type: number };

/** Parses a user control payload; unknown events are reported, not errors (peers send extras). */
export function parseUserControl(payload: Buffer): UserControlMessage | undefined {
  if (payload.length < 2) return undefined;
  const type = payload.readUInt16BE(0);
  const arg = payload.length >= 6 ? payload.readUInt32BE(2) : 0;
  switch (type) {
    case UserControlEvent.StreamBegin: return { event: 'streamBegin', streamId: arg };
    case UserControlEvent.StreamEof: return { event: 'streamEof', streamId: arg };
    case UserControlEvent.StreamDry: return { event: 'streamDry', streamId: arg };
    case UserControlEvent.StreamIsRecorded: return { event: 'streamIsRecorded', streamId: arg };
    case UserControlEvent.SetBufferLength:
      return { event: 'setBufferLength', streamId: arg, bufferMs: payload.length >= 10 ? payload.readUInt32BE(6) : 0 };
    case UserControlEvent.PingRequest: return { event: 'pingRequest', timestamp: arg };
    case UserControlEvent.PingResponse: return { event: 'pingResponse', timestamp: arg };
    default: return { event: 'other', type };
  }
}
