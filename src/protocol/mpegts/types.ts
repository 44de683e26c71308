/**
 * What the MPEG-TS converters exchange with the rest of the daemon: FLV tag bodies, the
 * hub's unit (see core/media.ts). SRT carries MPEG-TS; the hub carries FLV tags.
 */
export interface FlvTag {
  kind: 'audio' | 'video' | 'data';
  /** Milliseconds (decode time for video), monotonic across 33-bit PTS wraps. */
  timestamp: number;
  /** The FLV tag body exactly as RTMP carries it (e.g. 0x17 0x01 cts AVCC-NALUs for H.264). */
  payload: Buffer;
}

/** MPEG-TS packets are 188 bytes; SRT live mode carries 7 of them per message (1316 bytes). */
export const TS_PACKET_SIZE = 188;
export const TS_PACKETS_PER_SRT_MESSAGE = 7;
