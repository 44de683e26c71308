/** RTMP message type ids (RTMP spec 1.0 sections 5.4, 6.2, 7.1). */
export const MessageType = {
  SetChunkSize: 1,
  Abort: 2,
  Acknowledgement: 3,
  UserControl: 4,
  WindowAckSize: 5,
  SetPeerBandwidth: 6,
  Audio: 8,
  Video: 9,
  DataAmf3: 15,
  SharedObjectAmf3: 16,
  CommandAmf3: 17,
  DataAmf0: 18,
  SharedObjectAmf0: 19,
  CommandAmf0: 20,
  Aggregate: 22,
} as const;

const KNOWN_TYPES = new Set<number>(Object.values(MessageType));

export function isKnownMessageType(typeId: number): boolean {
  return KNOWN_TYPES.has(typeId);
}

/** User control event types (spec 7.1.7). */
export const UserControlEvent = {
  StreamBegin: 0,
  StreamEof: 1,
  StreamDry: 2,
  SetBufferLength: 3,
  StreamIsRecorded: 4,
  PingRequest: 6,
  PingResponse: 7,
} as const;

/** Chunk stream ids we send on, by convention of FMS/nginx-rtmp and what players expect. */
export const ChunkStream = {
  Control: 2,
  Command: 3,
  Audio: 4,
  Video: 6,
  Data: 5,
} as const;
