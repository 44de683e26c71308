import type { MediaMessage } from './media.js';

/**
 * Decides, per reader, whether a message is written or dropped, so that a slow reader
 * never holds up the source or other readers and its backlog stays bounded.
 *
 * The backlog is measured by the caller (bytes written but not yet flushed to the peer).
 * Above `maxBacklogBytes` the reader starts dropping and keeps dropping until a keyframe
 * arrives while the backlog is below half the limit: resuming anywhere else would hand
 * the decoder frames that reference pictures it never got. Codec headers and metadata are
 * always admitted (small, and a reader cannot decode without them).
 *
 * A new reader starts in the dropping state: its first media is a keyframe.
 *
 * A reader starts with a burst: the hub's cached GOP, written at once when it joins (or,
 * for an output, connects). A large GOP (a high bitrate, long keyframe interval) can be
 * above the limit by itself, and that is not the reader falling behind, so the burst's
 * bytes are credited until they drain.
 */
export class ReaderGate {
  /**
   * `waiting`: not started yet, or restarting after the source changed: skipping to a
   * keyframe is how a reader starts, so nothing is counted. `behind`: the reader fell
   * behind and loses media until the next keyframe; that is counted.
   */
  private dropping: false | 'waiting' | 'behind' = 'waiting';
  /** Messages and bytes lost because the reader fell behind. */
  droppedMessages = 0;
  droppedBytes = 0;
  /** Times the reader fell behind and had to skip to a keyframe. */
  skips = 0;
  private inBurst = false;
  /** Bytes of the startup burst that may still be queued (see `behind`). */
  private burstCredit = 0;

  constructor(private readonly maxBacklogBytes: number) {}

  /** Messages from here to `endBurst` are the startup burst, admitted whatever they add up to. */
  beginBurst(): void {
    this.inBurst = true;
  }

  endBurst(backlogBytes: number): void {
    this.inBurst = false;
    this.burstCredit = backlogBytes;
  }

  /**
   * How far behind the reader is: its backlog less what may be left of its startup burst.
   * The burst sits at the front of the queue, so no more of it than the whole backlog can
   * still be queued: the credit shrinks to the smallest backlog seen, and is gone once the
   * queue has drained below the live bytes written after it.
   */
  behind(backlogBytes: number): number {
    if (this.inBurst) return 0;
    this.burstCredit = Math.min(this.burstCredit, backlogBytes);
    return backlogBytes - this.burstCredit;
  }

  admit(message: MediaMessage, backlogBytes: number): boolean {
    if (message.isSequenceHeader || message.kind === 'data') return true;
    const behind = this.behind(backlogBytes);
    if (this.dropping) {
      if (message.isKeyframe && behind <= this.maxBacklogBytes / 2) {
        this.dropping = false;
        return true;
      }
      return this.drop(message);
    }
    if (behind > this.maxBacklogBytes) {
      this.dropping = 'behind';
      this.skips += 1;
      return this.drop(message);
    }
    return true;
  }

  /** Forces a restart at the next keyframe (after the source changed). */
  resync(): void {
    if (!this.dropping) this.dropping = 'waiting';
  }

  private drop(message: MediaMessage): false {
    if (this.dropping === 'behind') {
      this.droppedMessages += 1;
      this.droppedBytes += message.payload.length;
    }
    return false;
  }
}
