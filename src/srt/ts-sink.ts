import type { Logger } from 'pino';
import type { OutputSink } from '../core/output-feed.js';
import { packForSrt, TsMuxer } from '../protocol/mpegts/muxer.js';
import type { SrtConnection } from './connection.js';

/** After libsrt refused a message (send buffer full), report a full backlog this long. */
const CONGESTION_HOLD_MS = 250;

/** The warning an SRT output logs, once per connection and kind, for frames it leaves out. */
export function warnLeftOut(logger: Logger): (what: string) => void {
  return (what) =>
    logger.warn({ leftOut: what }, `SRT output leaves out ${what}: MPEG-TS here carries H.264 or HEVC video and AAC audio; the frames count as dropped`);
}

/**
 * An output sink that turns hub messages into MPEG-TS and sends it over one SRT
 * connection, 7 TS packets per SRT message. libsrt's send is non-blocking: when its
 * buffer is full it refuses, and the sink then reports a full backlog for a moment so
 * the feed skips to the next keyframe instead of sending a stream with holes.
 */
export class TsOverSrtSink implements OutputSink {
  private readonly muxer: TsMuxer;
  private carry: Buffer = Buffer.alloc(0);
  private congestedUntil = 0;

  constructor(
    private readonly connection: SrtConnection,
    private readonly maxBacklogBytes: number,
    /** Told once per connection of each kind of frame MPEG-TS cannot carry ("MP3 audio"). */
    onUnsupported: (what: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.muxer = new TsMuxer({ onUnsupported });
  }

  /** False when the muxer left the frame out (a codec MPEG-TS cannot carry, malformed, before a keyframe). */
  sendMedia(kind: 'audio' | 'video', timestamp: number, payload: Buffer, flags: { isKeyframe: boolean; isSequenceHeader: boolean }): boolean {
    const skippedBefore = this.muxer.counters.skipped;
    // The flags by name: the feed passes the hub's message as `flags`, and spreading it
    // would put the hub's timestamp over this output's own.
    this.write(this.muxer.mux({ kind, timestamp, payload, isKeyframe: flags.isKeyframe, isSequenceHeader: flags.isSequenceHeader }));
    return this.muxer.counters.skipped === skippedBefore;
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
