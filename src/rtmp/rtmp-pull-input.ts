import type { Logger } from 'pino';
import type { RtmpPullInputConfig } from '../config/schema.js';
import type { ConnectionReport, FlowPullInput } from '../core/flow-parts.js';
import { ReconnectSupervisor, type AttemptHandlers } from '../core/reconnect-supervisor.js';
import type { SourceHandle, StreamHub } from '../core/stream-hub.js';
import type { Clock } from '../lib/clock.js';
import { RateMeter } from '../policy/rate-meter.js';
import { RtmpClientConnection } from './client/connection.js';
import { RtmpClientError } from './client/types.js';
import { describeTarget, parseRtmpUrl } from './client/url.js';
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
    const c = this.supervisor.counters;
    return {
      status: this.supervisor.status,
      target: this.target,
      attempts: c.attempts,
      reconnects: c.reconnects,
      consecutiveFailures: c.consecutiveFailures,
      lastError: c.lastError,
      lastErrorAt: c.lastErrorAt,
      connectedAt: c.connectedAt,
      nextAttemptAt: c.nextAttemptAt,
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
    let connection: RtmpClientConnection;
    const onMedia = () => {
      this.lastMediaAt = this.clock.now();
      return this.ensureSource();
    };
    try {
      connection = new RtmpClientConnection(clientOptionsFor(this.spec, 'play', this.defaults, this.logger), {
        ready: () => {
          this.lastMediaAt = this.clock.now();
          this.startWatchdog(connection);
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
          this.bytesBefore += connection.bytesIn;
          if (this.connection === connection) this.connection = undefined;
          handlers.closed(error);
        },
      });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      queueMicrotask(() => handlers.closed(new RtmpClientError('CONNECT_FAILED', error.message)));
      return { close: () => undefined };
    }
    this.connection = connection;
    connection.start();
    return { close: (reason) => connection.close(reason) };
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
