import { isCodedAudio, isCodedVideo, parseAudioTag, parseVideoTag } from '../protocol/flv/tag.js';
import type { MediaKind, MediaMessage } from './media.js';

/** Something that consumes a flow's media: an RTMP player, later outputs and recorders. */
export interface HubReader {
  /** Called for every message; must not throw and must not block (queue or drop). */
  deliver(message: MediaMessage): void;
  /** A source started (or a new one took over): headers and a keyframe follow. */
  sourceStarted(): void;
  /** The source ended; the reader stays attached and waits for the next one. */
  sourceEnded(): void;
  /** The hub is going away (flow removed or daemon stopping): the reader must close. */
  hubClosed(reason: string): void;
}

/** What the hub needs from whoever publishes into it. */
export interface HubSourceOwner {
  /** The hub (flow removed, daemon stopping) asks the publisher to disconnect. */
  kick(reason: string): void;
}

export interface SourceHandle {
  /**
   * Source timestamps must be unwrapped (monotonic numbers), not 32-bit wire values.
   * Returns whether the payload is a coded frame (what players count as a frame, not a
   * codec header), so the caller's counters need not parse the tag again.
   */
  push(kind: 'audio' | 'video', timestamp: number, payload: Buffer): boolean;
  /** onMetaData body (without @setDataFrame); cached and sent to every new reader. */
  pushMetadata(timestamp: number, payload: Buffer): void;
  /** Other data messages (cue points, captions): forwarded, not cached. */
  pushData(timestamp: number, payload: Buffer): void;
  detach(reason: string): void;
  /**
   * The messages that follow come from another encoder (a failover switch): readers stay
   * attached and see no end, the cached headers, metadata and GOP are dropped (the new
   * encoder's follow), and its timestamps continue one frame after the last ones sent.
   */
  splice(): void;
}

export interface StreamHubOptions {
  /** A GOP larger than this is not cached; new readers then wait for the next keyframe. */
  gopCacheMaxBytes: number;
}

/**
 * A track's time going back by more than this is a jump of the source's clock. Smaller
 * steps back are clamped instead: a frame of rounding, or a returning source whose tracks
 * start apart (some encoders start audio a second or two ahead of video); re-anchoring
 * on those would shift one track against the other for the rest of the source.
 */
export const BACKWARD_JUMP_MS = 5000;

/**
 * A gap between two frames of a track longer than this is a pause, not the frame
 * duration a later source should continue with.
 */
const MAX_FRAME_DURATION_MS = 200;

export const DEFAULT_HUB_OPTIONS: StreamHubOptions = { gopCacheMaxBytes: 32 * 1024 * 1024 };

export interface HubCounters {
  bytesIn: number;
  messagesIn: number;
  videoFrames: number;
  audioFrames: number;
  keyframes: number;
  /** Sources that attached over the hub's life (1 + reconnects/failovers). */
  sourceStarts: number;
  /** Times a source's clock went back and the timeline continued past it. */
  timestampJumps: number;
  /** Frames the flow's RTMP players missed because they fell behind, and the skips to a keyframe that cost them. */
  playerFramesDropped: number;
  playerSkips: number;
}

/**
 * One per flow: one active source, many readers. Every message is built once and the
 * same object goes to every reader. Caches what a joining reader needs to start decoding
 * at once: metadata, codec headers and the GOP since the last keyframe.
 *
 * The hub owns the flow's output timeline: whatever the sources' timestamps do across
 * reconnects, what leaves the hub only moves forward, per track.
 */
export class StreamHub {
  private readonly readers = new Set<HubReader>();
  private source: { owner: HubSourceOwner; handle: SourceHandle } | undefined;
  private metadata: MediaMessage | undefined;
  private videoHeader: MediaMessage | undefined;
  private audioHeader: MediaMessage | undefined;
  private gop: MediaMessage[] = [];
  private gopBytes = 0;
  /** False while the GOP outgrew its cap; caching resumes at the next keyframe. */
  private gopCaching = false;
  private hasVideo = false;
  private closed = false;
  /** Output timeline state: offset applied to the current source, last value per track. */
  private timelineOffset: number | undefined;
  /** Before a later source's anchor: the time its first frame will get (see toTimeline). */
  private continueAt: number | undefined;
  private readonly lastOut: Record<MediaKind, number> = { audio: -1, video: -1, data: -1 };
  /** Per track, the last coded frame's time and its distance from the one before (its frame duration). */
  private readonly lastFrame = { audio: { at: -1, duration: 0 }, video: { at: -1, duration: 0 } };
  readonly counters: HubCounters = { bytesIn: 0, messagesIn: 0, videoFrames: 0, audioFrames: 0, keyframes: 0, sourceStarts: 0, timestampJumps: 0, playerFramesDropped: 0, playerSkips: 0 };
  private readonly options: StreamHubOptions;

  constructor(options: Partial<StreamHubOptions> = {}) {
    this.options = { ...DEFAULT_HUB_OPTIONS, ...options };
  }

  get live(): boolean {
    return this.source !== undefined;
  }

  /** The latest timestamp the hub has sent on any track (-1 before the first message). */
  get lastTimestamp(): number {
    return Math.max(this.lastOut.audio, this.lastOut.video, this.lastOut.data);
  }

  get readerCount(): number {
    return this.readers.size;
  }

  /** Returns undefined when another source is attached (the caller refuses the publisher). */
  attachSource(owner: HubSourceOwner): SourceHandle | undefined {
    if (this.source || this.closed) return undefined;
    const handle: SourceHandle = {
      push: (kind, timestamp, payload) => this.source?.handle === handle && this.ingestMedia(kind, timestamp, payload),
      pushMetadata: (timestamp, payload) => {
        if (this.source?.handle !== handle) return;
        // At time 0, for the readers attached now and those that join later, as nginx-rtmp
        // sends it: FFmpeg's FLV reader takes an onMetaData at any other time for a data
        // stream of its own, a phantom "subtitle" stream that makes `-map 0` fail or never
        // end. (A failover switch re-sends the new encoder's metadata mid-stream.)
        this.metadata = this.ingest('data', 0, payload, false, true, false);
      },
      pushData: (timestamp, payload) => {
        if (this.source?.handle === handle) this.ingest('data', this.toTimeline('data', timestamp, false), payload, false, false, false);
      },
      detach: () => {
        if (this.source?.handle === handle) this.endSource();
      },
      splice: () => {
        if (this.source?.handle !== handle) return;
        this.metadata = undefined;
        this.videoHeader = undefined;
        this.audioHeader = undefined;
        this.resetGop(false);
        this.hasVideo = false;
        this.timelineOffset = undefined;
        this.continueAt = undefined;
      },
    };
    this.source = { owner, handle };
    this.counters.sourceStarts += 1;
    this.timelineOffset = undefined;
    this.continueAt = undefined;
    try {
      for (const reader of this.readers) reader.sourceStarted();
    } catch (err) {
      // A reader broke its contract: refuse this source (the caller reports the error)
      // rather than keep a source no publisher stands behind, refusing all the next ones.
      this.source = undefined;
      throw err;
    }
    return handle;
  }

  /** Adds a reader and replays what it needs to start: metadata, headers, current GOP. */
  addReader(reader: HubReader): () => void {
    if (this.closed) {
      reader.hubClosed('flow closed');
      return () => undefined;
    }
    this.readers.add(reader);
    if (this.source) {
      reader.sourceStarted();
      if (this.metadata) reader.deliver(this.metadata);
      if (this.videoHeader) reader.deliver(this.videoHeader);
      if (this.audioHeader) reader.deliver(this.audioHeader);
      if (this.gopCaching) for (const message of this.gop) reader.deliver(message);
    }
    return () => {
      this.readers.delete(reader);
    };
  }

  /** The current source's cached metadata and codec headers (what a switch needs to re-send them). */
  startupPayloads(): { metadata?: Buffer; videoHeader?: Buffer; audioHeader?: Buffer } {
    return { metadata: this.metadata?.payload, videoHeader: this.videoHeader?.payload, audioHeader: this.audioHeader?.payload };
  }

  /**
   * What a reader attaching now would be replayed: metadata, codec headers and the GOP
   * from its keyframe (empty when no source is live). Outputs use it on every (re)connect.
   */
  snapshot(): MediaMessage[] {
    if (!this.source) return [];
    const startup = [this.metadata, this.videoHeader, this.audioHeader].filter((m): m is MediaMessage => m !== undefined);
    return this.gopCaching ? [...startup, ...this.gop] : startup;
  }

  /** Closes the hub: the source is kicked and every reader told to close. Idempotent. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    const source = this.source;
    this.endSource();
    source?.owner.kick(reason);
    for (const reader of [...this.readers]) reader.hubClosed(reason);
    this.readers.clear();
  }

  private endSource(): void {
    if (!this.source) return;
    this.source = undefined;
    this.metadata = undefined;
    this.videoHeader = undefined;
    this.audioHeader = undefined;
    this.resetGop(false);
    this.hasVideo = false;
    for (const reader of this.readers) reader.sourceEnded();
  }

  /** Returns whether the payload is a coded frame. */
  private ingestMedia(kind: 'audio' | 'video', timestamp: number, payload: Buffer): boolean {
    if (payload.length === 0) return false;
    if (kind === 'video') {
      const info = parseVideoTag(payload);
      if (info.isCommandFrame) return false;
      this.hasVideo = true;
      const codedFrame = isCodedVideo(info);
      const message = this.ingest('video', this.toTimeline('video', timestamp, codedFrame), payload, info.isKeyframe, info.isSequenceHeader, codedFrame);
      if (info.isSequenceHeader) this.videoHeader = message;
      else if (codedFrame) {
        // Frames as a player counts them: not the end-of-sequence or metadata packets.
        this.counters.videoFrames += 1;
        if (info.isKeyframe) this.counters.keyframes += 1;
      }
      return codedFrame;
    }
    const info = parseAudioTag(payload);
    // Without video every audio frame is a join point; with video, keyframes rule.
    const codedFrame = isCodedAudio(info);
    const message = this.ingest('audio', this.toTimeline('audio', timestamp, codedFrame), payload, !this.hasVideo && !info.isSequenceHeader, info.isSequenceHeader, codedFrame);
    if (info.isSequenceHeader) this.audioHeader = message;
    else if (codedFrame) this.counters.audioFrames += 1;
    return codedFrame;
  }

  /** Counts, caches and delivers one message, at `timestamp` on the flow's timeline. */
  private ingest(kind: MediaKind, timestamp: number, payload: Buffer, isKeyframe: boolean, isSequenceHeader: boolean, isFrame: boolean): MediaMessage {
    const message: MediaMessage = {
      kind,
      timestamp,
      payload,
      isKeyframe,
      isSequenceHeader,
      isFrame,
    };
    this.counters.bytesIn += payload.length;
    this.counters.messagesIn += 1;
    this.cacheInGop(message);
    for (const reader of this.readers) reader.deliver(message);
    return message;
  }

  /**
   * The first source starts the timeline at its own timestamps; a later source continues
   * one frame after the last timestamp sent, so readers that stay attached across a
   * publisher reconnect or a failover never see time go backwards, nor two frames of a
   * track a millisecond apart (which players and muxers working in frame units read as
   * the same time).
   */
  private toTimeline(kind: MediaKind, sourceTimestamp: number, codedFrame: boolean): number {
    if (this.timelineOffset === undefined) {
      // A later source anchors on its first coded frame. Metadata timestamps are often
      // unrelated to the media's (0 while media runs at hours), and encoders stamp the
      // sequence headers (and enhanced-RTMP metadata packets) they send first with an
      // older time than their first frame (the time their session began): anchoring on
      // them would jump the output forward by the difference. Until the anchor, data messages
      // carry the last time sent, and other packets the time the first frame will get.
      if (kind === 'data') return Math.max(this.lastTimestamp, 0);
      const next = this.continueAt ?? (this.lastTimestamp < 0 ? undefined : this.nextFrameTime());
      if (!codedFrame && next !== undefined) {
        this.continueAt = next;
        this.lastOut[kind] = Math.max(this.lastOut[kind], next);
        return this.lastOut[kind];
      }
      this.timelineOffset = next === undefined ? 0 : next - sourceTimestamp;
      this.continueAt = undefined;
      this.forgetLastFrames();
    }
    if (sourceTimestamp + this.timelineOffset < this.lastOut[kind] - BACKWARD_JUMP_MS) {
      // The source's clock went back (an encoder that restarted its clock, ffmpeg's
      // timestamps wrapping at 2^31 ms after 24.8 days): continue one frame after the last
      // time sent. Clamping instead would stamp every frame with the same time until the
      // source's clock caught up again, for as long as it ran before.
      this.timelineOffset = this.nextFrameTime() - sourceTimestamp;
      this.counters.timestampJumps += 1;
      this.forgetLastFrames();
    }
    const out = Math.max(sourceTimestamp + this.timelineOffset, this.lastOut[kind], 0);
    this.lastOut[kind] = out;
    if (codedFrame && kind !== 'data') {
      const last = this.lastFrame[kind];
      const duration = out - last.at;
      if (last.at >= 0 && duration > 0 && duration <= MAX_FRAME_DURATION_MS) last.duration = duration;
      last.at = out;
    }
    return out;
  }

  /** At a new anchor: the jump to it is no frame's duration; the durations known are kept. */
  private forgetLastFrames(): void {
    this.lastFrame.audio.at = -1;
    this.lastFrame.video.at = -1;
  }

  /**
   * Where a new anchor puts the next frame: one frame duration after each track's last
   * time (1 ms where none is known yet), and after anything sent at all.
   */
  private nextFrameTime(): number {
    let next = this.lastTimestamp + 1;
    for (const kind of ['audio', 'video'] as const) {
      if (this.lastOut[kind] >= 0) next = Math.max(next, this.lastOut[kind] + Math.max(1, this.lastFrame[kind].duration));
    }
    return next;
  }

  private cacheInGop(message: MediaMessage): void {
    if (message.isSequenceHeader || message.kind === 'data') return;
    if (message.kind === 'video' && message.isKeyframe) {
      this.resetGop(true);
    } else if (!this.hasVideo) {
      return; // Audio-only: readers join on any frame, nothing to cache.
    }
    if (!this.gopCaching) return;
    this.gop.push(message);
    this.gopBytes += message.payload.length;
    if (this.gopBytes > this.options.gopCacheMaxBytes) this.resetGop(false);
  }

  private resetGop(caching: boolean): void {
    this.gop = [];
    this.gopBytes = 0;
    this.gopCaching = caching;
  }
}
