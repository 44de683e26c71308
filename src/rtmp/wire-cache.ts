import type { MediaMessage } from '../core/media.js';
import { encodeChunks } from '../protocol/rtmp/chunk-encoder.js';
import { ChunkStream, MessageType } from '../protocol/rtmp/message-types.js';

/** The message stream id every player's media goes out on (each connection's first stream). */
export const PLAY_STREAM_ID = 1;

/**
 * Chunked bytes of each media message, made once and shared by every player that uses
 * the same chunk size: fan-out to N players costs N writes of one Buffer, not N encodes.
 * Entries die with their message (WeakMap), so the cache needs no eviction.
 */
export class WireCache {
  private readonly cache = new WeakMap<MediaMessage, Buffer>();
  constructor(readonly chunkSize: number) {}

  chunksFor(message: MediaMessage): Buffer {
    let bytes = this.cache.get(message);
    if (!bytes) {
      bytes = encodeChunks(
        {
          csid: message.kind === 'video' ? ChunkStream.Video : message.kind === 'audio' ? ChunkStream.Audio : ChunkStream.Data,
          typeId: message.kind === 'video' ? MessageType.Video : message.kind === 'audio' ? MessageType.Audio : MessageType.DataAmf0,
          streamId: PLAY_STREAM_ID,
          timestamp: message.timestamp,
          payload: message.payload,
        },
        this.chunkSize,
      );
      this.cache.set(message, bytes);
    }
    return bytes;
  }
}
