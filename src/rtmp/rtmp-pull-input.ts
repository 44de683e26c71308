import type { Logger } from 'pino';
import type { RtmpPullInputConfig } from '../config/schema.js';
import type { ConnectionReport, FlowPullInput } from '../core/flow-parts.js';
import { ReconnectSupervisor, type AttemptHandlers } from '../core/reconnect-supervisor.js';
import type { SourceHandle, StreamHub } from '../core/stream-hub.js';
import type { Clock } from '../lib/clock.js';
import { RateMeter } from '../policy/rate-meter.js';
import type { RtmpClientConnection } from './client/connection.js';
import { describeTarget, parseRtmpUrl } from './client/url.js';
import { startClientAttempt } from './client-attempt.js';
import { clientOptionsFor, type RtmpClientDefaults } from './client-options.js';

/**
 * An `rtmp-pull` input: plays a remote RTMP(S) stream and is the flow's source while it
 * delivers media. Reconnects with backoff; a connection that plays but delivers no media
 * for `idleTimeoutMs` is dropped and retried (the upstream may be stuck).
 */
export class RtmpPullInput implements FlowPullInput {
  private readonly supervisor: ReconnectSupervisor;
  private readonly meter = new RateMeter();
  private connection: RtmpClientConnection | undefined;
  private source: SourceHandle | undefined;
  private bytesBefore = 0;
  private frames = 0;
  private lastMediaAt = 0;
  private watchdog: unknown;
  /** Why we closed the current connection ourselves, reported as its error. */
  private closeReason: Error | undefined;
  private closed = false;
  private readonly target: string;

  constructor(
    private readonly spec: RtmpPullInputConfig,
    private readonly hub: StreamHub,
    private readonly defaults: RtmpClientDefaults,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.target = describeTarget(parseRtmpUrl(spec.url, spec.streamKey));
    this.supervisor = new ReconnectSupervisor(spec.reconnect, (handlers) => this.connect(handlers), clock, logger);
  }

  get name(): string {
    return this.spec.name;
  }

  start(): void {
    this.logger.info({ target: this.target }, 'pull input started');
    this.supervisor.want();
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatchdog();
    this.endSource(reason);
    this.supervisor.close(reason);
  }

  report(): ConnectionReport {
    return {
      ...this.supervisor.counters,
      status: this.supervisor.status,
      target: this.target,
      bytes: this.bytesBefore + (this.connection?.bytesIn ?? 0),
      bitrate: this.meter.bitsPerSecond(this.clock.now()),
      frames: this.frames,
      framesDropped: 0,
      bytesDropped: 0,
      skips: 0,
    };
  }

  /** The hub hands the source to the first input that has media; a busy hub refuses. */
  private ensureSource(): SourceHandle | undefined {
    this.source ??= this.hub.attachSource({ kick: (reason) => this.close(reason) });
    return this.source;
  }

  private endSource(reason: string): void {
    this.source?.detach(reason);
    this.source = undefined;
  }

  private connect(handlers: AttemptHandlers): { close(reason: string): void } {
    const onMedia = () => {
      this.lastMediaAt = this.clock.now();
      return this.ensureSource();
    };
    const attempt = startClientAttempt(
      () => clientOptionsFor(this.spec, 'play', this.defaults, this.logger),
      {
        ready: () => {
          this.lastMediaAt = this.clock.now();
          this.startWatchdog(attempt.connection!);
          handlers.ready();
        },
        media: (kind, timestamp, payload) => {
          onMedia()?.push(kind, timestamp, payload);
          this.meter.add(payload.length, this.lastMediaAt);
          this.frames += 1;
        },
        metadata: (timestamp, payload) => onMedia()?.pushMetadata(timestamp, payload),
        data: (timestamp, payload) => onMedia()?.pushData(timestamp, payload),
        streamEnd: (reason) => this.endSource(`upstream ended: ${reason}`),
        closed: (reported) => {
          const error = reported ?? this.closeReason;
          this.closeReason = undefined;
          this.stopWatchdog();
          this.endSource(error?.message ?? 'closed');
          this.bytesBefore += attempt.connection?.bytesIn ?? 0;
          if (this.connection === attempt.connection) this.connection = undefined;
          handlers.closed(error);
        },
      },
      handlers,
    );
    this.connection = attempt.connection;
    return attempt;
  }

  /** Checks at a fraction of the timeout that media still flows on this connection. */
  private startWatchdog(connection: RtmpClientConnection): void {
    this.stopWatchdog();
    const check = () => {
      this.watchdog = undefined;
      if (this.connection !== connection) return;
      if (this.clock.now() - this.lastMediaAt >= this.spec.idleTimeoutMs) {
        this.logger.warn({ idleTimeoutMs: this.spec.idleTimeoutMs }, 'no media from upstream; reconnecting');
        this.closeReason = new Error(`no media from upstream for ${this.spec.idleTimeoutMs} ms`);
        connection.close('no media within idleTimeoutMs');
        return;
      }
      this.watchdog = this.clock.setTimeout(check, Math.min(1_000, this.spec.idleTimeoutMs));
    };
    this.watchdog = this.clock.setTimeout(check, Math.min(1_000, this.spec.idleTimeoutMs));
  }

  private stopWatchdog(): void {
    if (this.watchdog !== undefined) this.clock.clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }
}
