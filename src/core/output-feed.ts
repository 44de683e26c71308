import type { MediaMessage } from './media.js';
import { ReaderGate } from './reader-gate.js';
import type { HubReader, StreamHub } from './stream-hub.js';

/** Where an output's media goes while its connection is up (an RTMP publish, later SRT). */
export interface MediaFlags {
  isKeyframe: boolean;
  isSequenceHeader: boolean;
}

export interface OutputSink {
  /**
   * Flags let a converting sink (MPEG-TS) skip re-parsing what the hub already knows.
   * Returns false when the frame did not go out because the sink's format cannot carry
   * it (MP3 audio over MPEG-TS, say); the feed counts it as dropped, not sent.
   */
  sendMedia(kind: 'audio' | 'video', timestamp: number, payload: Buffer, flags: MediaFlags): boolean;
  sendMetadata(timestamp: number, payload: Buffer): void;
  sendData(timestamp: number, payload: Buffer): void;
  /** Bytes written but not yet flushed to the destination. */
  backlog(): number;
}

export interface OutputFeedEvents {
  /** A source went live: the output should connect. */
  sourceLive(): void;
  /** The source ended: the output may disconnect after its idle time. */
  sourceGone(): void;
  hubClosed(reason: string): void;
}

export interface OutputFeedCounters {
  framesSent: number;
  /** Dropped when the destination fell behind, or left out because the sink cannot carry them. */
  framesDropped: number;
  bytesDropped: number;
  /** Times the destination fell behind and the output skipped to a keyframe. */
  skips: number;
}

/**
 * A hub reader feeding one output. It owns the output's timeline: timestamps start near
 * zero at the output's first connection and only move forward, across the output's own
 * reconnects and across source changes. Each connection starts with metadata and codec
 * headers and the current GOP from its keyframe; a destination that falls behind by more
 * than `maxBacklogBytes` skips to the next keyframe and the loss is counted.
 */
export class OutputFeed implements HubReader {
  private sink: OutputSink | undefined;
  private gate: ReaderGate;
  /** Added to hub timestamps; set at the first connection, moved forward only if needed. */
  private offset: number | undefined;
  /** Highest timestamp sent on any connection so far, and per track on this one. */
  private lastSent = -1;
  private readonly lastSentTrack = { audio: -1, video: -1, data: -1 };
  readonly counters: OutputFeedCounters = { framesSent: 0, framesDropped: 0, bytesDropped: 0, skips: 0 };
  private detach: (() => void) | undefined;
  /** True inside start()'s addReader call (see start). */
  private joining = false;

  constructor(
    private readonly hub: StreamHub,
    private readonly maxBacklogBytes: number,
    private readonly events: OutputFeedEvents,
  ) {
    this.gate = new ReaderGate(maxBacklogBytes);
  }

  start(): void {
    if (this.detach) return;
    // On a live hub, addReader calls sourceStarted and then replays the cached GOP. An
    // owner that attaches a sink from sourceLive (the recorder) has had that GOP from
    // attach() already, so the replay is not delivered a second time.
    this.joining = true;
    try {
      this.detach = this.hub.addReader(this);
    } finally {
      this.joining = false;
    }
  }

  stop(): void {
    this.detach?.();
    this.detach = undefined;
    this.sink = undefined;
  }

  /** A connection is ready: send it what a new reader needs, then live media. */
  attach(sink: OutputSink): void {
    this.foldGateCounters();
    this.sink = sink;
    this.gate = new ReaderGate(this.maxBacklogBytes);
    const snapshot = this.hub.snapshot();
    // The connection's time zero is where its media starts (the cached GOP's keyframe),
    // not the cached headers, which may be hours old.
    const firstMedia = snapshot.find((m) => m.kind !== 'data' && !m.isSequenceHeader);
    this.beginConnection(firstMedia?.timestamp ?? Math.max(this.hub.lastTimestamp, 0));
    this.gate.beginBurst();
    for (const message of snapshot) this.forward(message);
    this.gate.endBurst(sink.backlog());
  }

  /** The connection went away: stop sending until the next attach. */
  detachSink(): void {
    this.sink = undefined;
  }

  deliver(message: MediaMessage): void {
    if (!this.joining) this.forward(message);
  }

  private forward(message: MediaMessage): void {
    const sink = this.sink;
    if (!sink || !this.gate.admit(message, sink.backlog())) return;
    const timestamp = this.toOutputTime(message);
    if (message.kind === 'data') {
      if (message.isSequenceHeader) sink.sendMetadata(timestamp, message.payload);
      else sink.sendData(timestamp, message.payload);
      return;
    }
    const carried = sink.sendMedia(message.kind, timestamp, message.payload, message);
    // Frames as a player counts them: not codec headers, nor a video end-of-sequence tag.
    if (!message.isFrame) return;
    if (carried) this.counters.framesSent += 1;
    else this.counters.framesDropped += 1;
  }

  sourceStarted(): void {
    this.gate.resync();
    this.events.sourceLive();
  }

  sourceEnded(): void {
    this.events.sourceGone();
  }

  hubClosed(reason: string): void {
    this.detach = undefined;
    this.sink = undefined;
    this.events.hubClosed(reason);
  }

  /** Drops counted so far, including the current connection's gate. */
  get dropped(): { frames: number; bytes: number; skips: number } {
    return {
      frames: this.counters.framesDropped + this.gate.droppedMessages,
      bytes: this.counters.bytesDropped + this.gate.droppedBytes,
      skips: this.counters.skips + this.gate.skips,
    };
  }

  private foldGateCounters(): void {
    this.counters.framesDropped += this.gate.droppedMessages;
    this.counters.bytesDropped += this.gate.droppedBytes;
    this.counters.skips += this.gate.skips;
  }

  /**
   * The first connection starts at 0. A later one keeps the earlier mapping (so the real
   * time that passed shows) unless that would not move forward from what was last sent,
   * in which case it starts just after it.
   */
  private beginConnection(baseHubTime: number): void {
    if (this.offset === undefined) this.offset = -baseHubTime;
    else if (baseHubTime + this.offset <= this.lastSent) this.offset = this.lastSent + 1 - baseHubTime;
    this.connectionStart = Math.max(baseHubTime + this.offset, 0);
    this.lastSentTrack.audio = this.lastSentTrack.video = this.lastSentTrack.data = this.connectionStart;
  }

  private toOutputTime(message: MediaMessage): number {
    const out = Math.max(message.timestamp + (this.offset ?? 0), this.lastSentTrack[message.kind], this.connectionStart);
    this.lastSentTrack[message.kind] = out;
    if (out > this.lastSent) this.lastSent = out;
    return out;
  }

  private connectionStart = 0;
}
