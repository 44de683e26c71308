import type { OutputSink } from '../core/output-feed.js';
import { packForSrt, TsMuxer } from '../protocol/mpegts/muxer.js';
import type { SrtConnection } from './connection.js';

/** After libsrt refused a message (send buffer full), report a full backlog this long. */
const CONGESTION_HOLD_MS = 250;

/**
 * An output sink that turns hub messages into MPEG-TS and sends it over one SRT
 * connection, 7 TS packets per SRT message. libsrt's send is non-blocking: when its
 * buffer is full it refuses, and the sink then reports a full backlog for a moment so
 * the feed skips to the next keyframe instead of sending a stream with holes.
 */
export class TsOverSrtSink implements OutputSink {
  private readonly muxer = new TsMuxer();
  private carry: Buffer = Buffer.alloc(0);
  private congestedUntil = 0;

  constructor(
    private readonly connection: SrtConnection,
    private readonly maxBacklogBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  sendMedia(kind: 'audio' | 'video', timestamp: number, payload: Buffer, flags: { isKeyframe: boolean; isSequenceHeader: boolean }): void {
    this.write(this.muxer.mux({ kind, timestamp, payload, ...flags }));
  }

  sendMetadata(): void {
    // onMetaData has no place in MPEG-TS; codec parameters travel in the streams.
  }

  sendData(): void {}

  backlog(): number {
    return this.now() < this.congestedUntil ? this.maxBacklogBytes * 2 : 0;
  }

  private write(ts: Buffer): void {
    if (ts.length === 0) return;
    const { messages, carry } = packForSrt(ts, this.carry);
    this.carry = carry;
    for (const message of messages) {
      if (!this.connection.send(message)) {
        this.congestedUntil = this.now() + CONGESTION_HOLD_MS;
        return;
      }
    }
  }
}
