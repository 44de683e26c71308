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

  constructor(private readonly maxBacklogBytes: number) {}

  admit(message: MediaMessage, backlogBytes: number): boolean {
    if (message.isSequenceHeader || message.kind === 'data') return true;
    if (this.dropping) {
      if (message.isKeyframe && backlogBytes <= this.maxBacklogBytes / 2) {
        this.dropping = false;
        return true;
      }
      return this.drop(message);
    }
    if (backlogBytes > this.maxBacklogBytes) {
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
