/**
 * The unit the media plane moves: one FLV tag (an RTMP audio, video or data message).
 * A message is created once by its source and the same object (and payload Buffer) is
 * handed to every reader; readers must treat it as immutable.
 */
export type MediaKind = 'audio' | 'video' | 'data';

export interface MediaMessage {
  readonly kind: MediaKind;
  /** Milliseconds on the hub's output timeline (monotonic per flow, not wrapped). */
  readonly timestamp: number;
  /** The FLV tag body exactly as RTMP carries it (codec header bytes included). */
  readonly payload: Buffer;
  /** A video keyframe (or, for audio-only flows, any audio frame): a safe join point. */
  readonly isKeyframe: boolean;
  /** Codec configuration (AVC/HEVC decoder record, AAC AudioSpecificConfig, ...). */
  readonly isSequenceHeader: boolean;
  /** A coded frame, as players count frames: not a codec header, an end of sequence or metadata. */
  readonly isFrame: boolean;
}
