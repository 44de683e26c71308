import { EventEmitter } from 'node:events';
import type { SrtError } from './libsrt.js';
import type { SrtPeer, SrtStats } from './types.js';

/**
 * Events, typed through node:events' generic EventEmitter:
 * - `connected()`: callers only, once the handshake completed (accepted connections are
 *   handed over already connected, through SrtListenOptions.onConnection);
 * - `data(chunk)`: one SRT message, a Buffer of its own (never reused by us);
 * - `closed(error?)`: exactly once, last; `error` is undefined when we closed it (close(),
 *   runtime close), an SrtError otherwise (rejected, timed out, lost, closed by the peer).
 *
 * An exception thrown by a listener is logged by the runtime and does not stop the loop.
 */
export interface SrtConnectionEvents {
  connected: [];
  data: [chunk: Buffer];
  closed: [error: SrtError | undefined];
}

export type SrtConnectionState = 'connecting' | 'connected' | 'closed';

/** What a connection needs from the runtime that owns its socket. */
export interface SrtConnectionHost {
  send(conn: SrtConnection, chunk: Buffer): boolean;
  close(conn: SrtConnection, error: SrtError | undefined): void;
  stats(conn: SrtConnection): SrtStats;
}

export class SrtConnection extends EventEmitter<SrtConnectionEvents> {
  /** libsrt socket id; -1 until a caller's socket exists (host name being resolved). */
  socket = -1;
  /** @internal whether the socket is in the runtime's epoll container. */
  watched = false;
  /** Counters the runtime keeps; stats() reports them. */
  readonly counters = { sendDrops: 0, messagesReceived: 0, bytesReceived: 0, messagesSent: 0, bytesSent: 0 };
  /** Last srt_bstats reading, kept for stats() after close. */
  lastStats: SrtStats | undefined;
  private currentState: SrtConnectionState;
  private currentPeer: SrtPeer;

  constructor(
    private readonly host: SrtConnectionHost,
    /** 'caller': made by SrtRuntime.call(); 'accepted': came in through a listener. */
    readonly role: 'caller' | 'accepted',
    peer: SrtPeer,
    readonly streamId: string,
  ) {
    super();
    this.currentPeer = peer;
    this.currentState = role === 'caller' ? 'connecting' : 'connected';
  }

  get state(): SrtConnectionState {
    return this.currentState;
  }

  /** For a caller given a host name: the name until it is resolved, then the address called. */
  get peer(): SrtPeer {
    return this.currentPeer;
  }

  /**
   * Queues one message (at most 1316 bytes, SRTO_PAYLOADSIZE) without blocking. false
   * when not connected, or when libsrt's send buffer is full: the message is dropped and
   * counted (live mode never waits).
   */
  send(chunk: Buffer): boolean {
    return this.host.send(this, chunk);
  }

  /** Idempotent. Emits 'closed' (without error) before returning, unless already closed. */
  close(): void {
    this.host.close(this, undefined);
  }

  /**
   * srt_bstats plus the negotiated latency, and our counters. After close, libsrt's numbers
   * are the last reading taken while connected (libsrt refuses broken sockets); ours are current.
   */
  stats(): SrtStats {
    return this.host.stats(this);
  }

  /** @internal runtime only */
  setPeer(peer: SrtPeer): void {
    this.currentPeer = peer;
  }

  /** @internal runtime only: returns false once the connection is no longer 'connecting'. */
  markConnected(): boolean {
    if (this.currentState !== 'connecting') return false;
    this.currentState = 'connected';
    return true;
  }

  /** @internal runtime only: returns false when already closed. */
  markClosed(): boolean {
    if (this.currentState === 'closed') return false;
    this.currentState = 'closed';
    return true;
  }
}
