import type { Logger } from 'pino';
import type { StatusListener } from './flow-events.js';
import type { Clock } from '../lib/clock.js';
import { RateMeter } from '../policy/rate-meter.js';
import type { ConnectionReport, FlowOutput, TransportStats } from './flow-parts.js';
import { CONNECTED_STATUSES } from './connection-status.js';
import { OutputFeed, type OutputSink } from './output-feed.js';
import { ReconnectSupervisor, type ReconnectPolicy } from './reconnect-supervisor.js';
import { STALL_MS, StallWatch } from './stall-watch.js';
import type { StreamHub } from './stream-hub.js';

/** One connection to a destination, made by a protocol (RTMP publish, SRT call). */
export interface OutputAttempt {
  close(reason: string): void;
  /**
   * Drops the connection at once, discarding what is queued, where the protocol can (a
   * TCP reset): how a stalled destination is left, so that it frees the stream at once.
   */
  abort?(reason: string): void;
  /** Bytes written on this connection so far. */
  bytesSent(): number;
  transportStats?(): TransportStats;
}

export interface OutputConnector {
  /** Where it connects, key redacted: for logs and status. */
  readonly target: string;
  /** Starts an attempt; `ready` hands over a sink once the destination accepts media. */
  connect(events: { ready(sink: OutputSink): void; closed(error: Error | undefined): void }): OutputAttempt;
}

export interface SupervisedOutputSpec {
  name: string;
  reconnect: ReconnectPolicy;
  /** With no live input this long the output disconnects (0: stays connected). */
  idleDisconnectMs: number;
  maxBacklog: number;
}

/**
 * A push output of any protocol: connects when the flow's input goes live, keeps
 * reconnecting with backoff while it is, and disconnects `idleDisconnectMs` after the
 * input went away. A slow or dead destination affects nothing but this output.
 */
export class SupervisedOutput implements FlowOutput {
  private readonly feed: OutputFeed;
  private readonly supervisor: ReconnectSupervisor;
  private readonly meter = new RateMeter();
  private attempt: OutputAttempt | undefined;
  private idleTimer: unknown;
  /** Whether the flow's input is live; an output only (re)connects while it is. */
  private inputLive = false;
  private bytesBefore = 0;
  private closed = false;

  constructor(
    private readonly spec: SupervisedOutputSpec,
    hub: StreamHub,
    private readonly connector: OutputConnector,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.feed = new OutputFeed(hub, spec.maxBacklog, {
      sourceLive: () => this.onSourceLive(),
      sourceGone: () => this.onSourceGone(),
      hubClosed: (reason) => this.close(reason),
    });
    this.supervisor = new ReconnectSupervisor(spec.reconnect, (handlers) => this.connect(handlers), clock, logger);
  }

  get name(): string {
    return this.spec.name;
  }

  onStatusChange(listener: StatusListener): void {
    this.supervisor.onStatus = listener;
  }

  start(): void {
    this.logger.info({ target: this.connector.target }, 'output started');
    // Adding the reader reports a live source at once (sourceLive) if there is one.
    this.feed.start();
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelIdleTimer();
    this.feed.stop();
    this.supervisor.close(reason);
    this.logger.info({ reason }, 'output closed');
  }

  report(): ConnectionReport {
    const dropped = this.feed.dropped;
    return {
      ...this.supervisor.counters,
      status: this.supervisor.status,
      target: this.connector.target,
      bytes: this.bytesBefore + (this.attempt?.bytesSent() ?? 0),
      // Nothing is sent without a connection, whatever the last seconds measured.
      bitrate: this.attempt && CONNECTED_STATUSES.has(this.supervisor.status) ? this.meter.bitsPerSecond(this.clock.now()) : 0,
      frames: this.feed.counters.framesSent,
      framesDropped: dropped.frames,
      bytesDropped: dropped.bytes,
      ...(this.attempt?.transportStats && { transport: this.attempt.transportStats() }),
      skips: dropped.skips,
    };
  }

  private onSourceLive(): void {
    this.inputLive = true;
    this.cancelIdleTimer();
    if (!this.closed) this.supervisor.want();
  }

  private onSourceGone(): void {
    this.inputLive = false;
    if (this.closed || this.spec.idleDisconnectMs === 0) return;
    this.cancelIdleTimer();
    this.idleTimer = this.clock.setTimeout(() => {
      this.idleTimer = undefined;
      this.supervisor.unwant('input idle');
    }, this.spec.idleDisconnectMs);
  }

  private cancelIdleTimer(): void {
    if (this.idleTimer !== undefined) this.clock.clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private connect(handlers: { ready(): void; closed(error: Error | undefined): void }): { close(reason: string): void } {
    let stalled: Error | undefined;
    const attempt = this.connector.connect({
      ready: (sink) => {
        this.meter.reset();
        this.feed.attach(this.metered(sink, () => {
          stalled = new Error(`the destination stopped reading: more than maxBacklog queued for ${STALL_MS / 1000} s without draining; reconnecting`);
          this.logger.warn({ err: stalled.message }, 'output stalled');
          if (attempt.abort) attempt.abort('destination stalled');
          else attempt.close('destination stalled');
        }));
        handlers.ready();
      },
      closed: (error) => {
        this.feed.detachSink();
        this.bytesBefore += attempt.bytesSent();
        if (this.attempt === attempt) this.attempt = undefined;
        // Lost while the input is away: wait for the input instead of retrying an idle
        // push. First, so that the supervisor goes straight to idle (no "reconnecting").
        if (!this.inputLive && !this.closed) {
          this.cancelIdleTimer();
          this.supervisor.unwant('input idle');
        }
        handlers.closed(error ?? stalled);
      },
    });
    this.attempt = attempt;
    return attempt;
  }

  /**
   * The sink as the feed sees it: sent bytes metered, and its backlog watched (the feed
   * asks for it before each message). A destination that has stopped reading while its
   * TCP connection stays up would otherwise stay "connected" sending nothing.
   */
  private metered(sink: OutputSink, onStall: () => void): OutputSink {
    const watch = new StallWatch(this.spec.maxBacklog);
    return {
      ...sink,
      sendMedia: (kind, timestamp, payload, flags) => {
        const carried = sink.sendMedia(kind, timestamp, payload, flags);
        if (carried) this.meter.add(payload.length, this.clock.now());
        return carried;
      },
      sendMetadata: (timestamp, payload) => sink.sendMetadata(timestamp, payload),
      sendData: (timestamp, payload) => sink.sendData(timestamp, payload),
      backlog: () => {
        const backlog = sink.backlog();
        if (watch.observe(backlog, this.clock.now())) onStall();
        return backlog;
      },
    };
  }
}
