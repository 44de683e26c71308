import type { Logger } from 'pino';
import type { OutputConfig } from '../config/schema.js';
import type { ConnectionReport, FlowOutput } from '../core/flow-parts.js';
import { OutputFeed, type OutputSink } from '../core/output-feed.js';
import { ReconnectSupervisor, type AttemptHandlers } from '../core/reconnect-supervisor.js';
import type { StreamHub } from '../core/stream-hub.js';
import type { Clock } from '../lib/clock.js';
import { RateMeter } from '../policy/rate-meter.js';
import type { RtmpClientConnection } from './client/connection.js';
import { describeTarget, parseRtmpUrl } from './client/url.js';
import { startClientAttempt } from './client-attempt.js';
import { clientOptionsFor, type RtmpClientDefaults } from './client-options.js';

/**
 * An `rtmp` output: pushes the flow to one RTMP(S) destination over its own connection.
 * It connects when the flow's input goes live, keeps reconnecting with backoff while it
 * is live, and disconnects `idleDisconnectMs` after the input went away. A slow or dead
 * destination affects nothing but this output.
 */
export class RtmpOutput implements FlowOutput {
  private readonly feed: OutputFeed;
  private readonly supervisor: ReconnectSupervisor;
  private readonly meter = new RateMeter();
  private connection: RtmpClientConnection | undefined;
  private idleTimer: unknown;
  /** Whether the flow's input is live; an output only (re)connects while it is. */
  private inputLive = false;
  private bytesBefore = 0;
  private closed = false;
  private readonly target: string;

  constructor(
    private readonly spec: OutputConfig,
    hub: StreamHub,
    private readonly defaults: RtmpClientDefaults,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.target = describeTarget(parseRtmpUrl(spec.url, spec.streamKey));
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

  start(): void {
    this.logger.info({ target: this.target }, 'output started');
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
      target: this.target,
      bytes: this.bytesBefore + (this.connection?.bytesOut ?? 0),
      bitrate: this.meter.bitsPerSecond(this.clock.now()),
      frames: this.feed.counters.framesSent,
      framesDropped: dropped.frames,
      bytesDropped: dropped.bytes,
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

  /** One connection attempt; the supervisor decides when to make the next. */
  private connect(handlers: AttemptHandlers): { close(reason: string): void } {
    const attempt = startClientAttempt(
      () => clientOptionsFor(this.spec, 'publish', this.defaults, this.logger),
      {
        ready: () => {
          this.feed.attach(this.sinkFor(attempt.connection!));
          handlers.ready();
        },
        media: () => undefined,
        metadata: () => undefined,
        data: () => undefined,
        streamEnd: () => undefined,
        closed: (error) => {
          this.feed.detachSink();
          this.bytesBefore += attempt.connection?.bytesOut ?? 0;
          if (this.connection === attempt.connection) this.connection = undefined;
          handlers.closed(error);
          // Lost while the input is away: wait for the input instead of retrying an idle push.
          if (!this.inputLive && !this.closed) {
            this.cancelIdleTimer();
            this.supervisor.unwant('input idle');
          }
        },
      },
      handlers,
    );
    this.connection = attempt.connection;
    return attempt;
  }

  private sinkFor(connection: RtmpClientConnection): OutputSink {
    const count = (bytes: number) => this.meter.add(bytes, this.clock.now());
    return {
      sendMedia: (kind, timestamp, payload) => {
        connection.sendMedia(kind, timestamp, payload);
        count(payload.length);
      },
      sendMetadata: (timestamp, payload) => connection.sendMetadata(timestamp, payload),
      sendData: (timestamp, payload) => connection.sendData(timestamp, payload),
      backlog: () => connection.writableLength,
    };
  }
}
