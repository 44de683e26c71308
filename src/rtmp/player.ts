import type { Socket } from 'node:net';
import type { MediaMessage } from '../core/media.js';
import { ReaderGate } from '../core/reader-gate.js';
import type { HubCounters, HubReader, StreamHub } from '../core/stream-hub.js';
import { streamBegin, streamEof } from '../protocol/rtmp/control.js';
import { onStatus } from './replies.js';
import { PLAY_STREAM_ID, type WireCache } from './wire-cache.js';
import type { WriteMerger } from './write-merger.js';

export interface PlayerCounters {
  bytesOut: number;
  messagesOut: number;
}

/**
 * An RTMP player as a hub reader. Writes each message as soon as it arrives (one write of
 * the shared chunked bytes); the socket's own buffer is the queue, and the gate bounds it
 * by skipping to the next keyframe when the peer falls behind.
 */
export class RtmpPlayer implements HubReader {
  private readonly gate: ReaderGate;
  readonly counters: PlayerCounters = { bytesOut: 0, messagesOut: 0 };
  /** The flow's counters, where what this player misses is added up with its other players'. */
  private flowCounters: HubCounters | undefined;
  /** The gate's loss counts as last added to the flow's. */
  private reported = { messages: 0, skips: 0 };

  constructor(
    private readonly socket: Socket,
    private readonly wire: WireCache,
    private readonly maxBacklogBytes: number,
    private readonly owner: { hubClosed(reason: string): void; stuck(): void },
    /** With rtmp.mergeWritesMs, writes wait for the shared flush tick. */
    private readonly merger?: WriteMerger,
  ) {
    this.gate = new ReaderGate(maxBacklogBytes);
  }

  get dropped(): { messages: number; bytes: number; skips: number } {
    return { messages: this.gate.droppedMessages, bytes: this.gate.droppedBytes, skips: this.gate.skips };
  }

  /** Joins the hub: its cached GOP is replayed at once, as the gate's startup burst. Returns the detach. */
  join(hub: StreamHub): () => void {
    this.flowCounters = hub.counters;
    this.gate.beginBurst();
    try {
      return hub.addReader(this);
    } finally {
      this.gate.endBurst(this.backlog());
    }
  }

  deliver(message: MediaMessage): void {
    if (this.socket.destroyed) return;
    const backlog = this.backlog();
    // Headers and data are admitted whatever the backlog; a player that stopped reading
    // altogether would still grow without this hard stop. (What is left of the startup
    // burst is asked for only when the raw backlog is that high: behind <= backlog.)
    if (backlog > 2 * this.maxBacklogBytes && this.gate.behind(backlog) > 2 * this.maxBacklogBytes) return this.owner.stuck();
    if (!this.gate.admit(message, backlog)) return this.reportLoss();
    const bytes = this.wire.chunksFor(message);
    this.write(bytes);
    this.counters.bytesOut += bytes.length;
    this.counters.messagesOut += 1;
  }

  /**
   * Adds what the gate has dropped since last time to the flow's counters: only what the
   * player lost, not what a player waiting for its first keyframe was not sent. Called
   * when a message is held back only, so delivery pays nothing for it.
   */
  private reportLoss(): void {
    if (!this.flowCounters) return;
    this.flowCounters.playerFramesDropped += this.gate.droppedMessages - this.reported.messages;
    this.flowCounters.playerSkips += this.gate.skips - this.reported.skips;
    this.reported = { messages: this.gate.droppedMessages, skips: this.gate.skips };
  }

  sourceStarted(): void {
    this.gate.resync();
    this.write(streamBegin(PLAY_STREAM_ID));
    this.write(onStatus(this.wire.chunkSize, PLAY_STREAM_ID, 'status', 'NetStream.Play.PublishNotify', 'Stream is now published.'));
  }

  sourceEnded(): void {
    // ffmpeg and Flash-era players treat UnpublishNotify as the end of the stream.
    this.write(onStatus(this.wire.chunkSize, PLAY_STREAM_ID, 'status', 'NetStream.Play.UnpublishNotify', 'Stream is now unpublished.'));
    this.write(streamEof(PLAY_STREAM_ID));
  }

  hubClosed(reason: string): void {
    this.write(onStatus(this.wire.chunkSize, PLAY_STREAM_ID, 'status', 'NetStream.Play.Stop', 'Stream stopped.'));
    this.owner.hubClosed(reason);
  }

  /** Bytes queued for the player beyond what is left of its startup burst. */
  behind(): number {
    return this.gate.behind(this.backlog());
  }

  private backlog(): number {
    return this.socket.writableLength + (this.merger?.queued(this.socket) ?? 0);
  }

  /** Everything to the player goes the same way, so control messages keep their place among media. */
  private write(bytes: Buffer): void {
    if (this.socket.destroyed) return;
    if (this.merger) this.merger.write(this.socket, bytes);
    else this.socket.write(bytes);
  }
}
