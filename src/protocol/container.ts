/**
 * The contract between a recording and the container it writes (FLV, fragmented MP4,
 * MPEG-TS). Muxers are sans-I/O: messages in, file bytes out, in order; the caller owns
 * the file, the clock and the decision where one file ends and the next begins.
 */

/** A hub message as a container muxer takes it (timestamps already rebased so the file starts near 0). */
export interface ContainerInput {
  kind: 'audio' | 'video' | 'data';
  timestamp: number;
  payload: Buffer;
  isKeyframe: boolean;
  isSequenceHeader: boolean;
}

/** Bytes to overwrite at `offset` of a finished file. */
export interface FilePatch {
  offset: number;
  bytes: Buffer;
}

export interface ContainerMuxer {
  /** Bytes to append to the file for this message (possibly none: held back, or skipped). */
  push(message: ContainerInput): Buffer[];
  /**
   * Whatever is held back (fMP4's open fragment), for the end of a file or a source that
   * stopped. Safe to call repeatedly; the muxer stays usable afterwards.
   */
  flush(): Buffer[];
  /**
   * For a cleanly closed file, after the last flush(): bytes that record its total
   * duration where the container keeps it up front. Undefined when the container needs
   * none, or nothing has been written yet.
   */
  durationPatch?(totalMs: number): FilePatch | undefined;
  /**
   * Whether a codec header of a kind the file has none of yet can still join it (fMP4
   * fixes its tracks in the init segment). Containers that carry headers in-stream omit it.
   */
  takesNewTracks?(): boolean;
  readonly counters: { skipped: number };
}
