import type { Logger } from 'pino';
import type { StatusListener } from './flow-events.js';
import type { Clock } from '../lib/clock.js';
import { RateMeter } from '../policy/rate-meter.js';
import type { ConnectionReport, FlowPullInput, TransportStats } from './flow-parts.js';
import { CONNECTED_STATUSES } from './connection-status.js';
import { ReconnectSupervisor, type ReconnectPolicy } from './reconnect-supervisor.js';
import type { SourceHandle } from './stream-hub.js';
import type { SourcePort } from './failover-switch.js';

/** What a connection that receives media reports (already as FLV tag bodies). */
export interface InputEvents {
  ready(): void;
  media(kind: 'audio' | 'video', timestamp: number, payload: Buffer): void;
  metadata(timestamp: number, payload: Buffer): void;
  data(timestamp: number, payload: Buffer): void;
  /** The upstream stopped publishing while the connection stays up. */
  streamEnd(reason: string): void;
  closed(error: Error | undefined): void;
}

export interface InputAttempt {
  close(reason: string): void;
  bytesReceived(): number;
  transportStats?(): TransportStats;
}

export interface InputConnector {
  readonly target: string;
  connect(events: InputEvents): InputAttempt;
  /** The last lines a helper process wrote (ffmpeg's stderr), for status. */
  recentLog?(): string[];
}

export interface SupervisedInputSpec {
  name: string;
  reconnect: ReconnectPolicy;
  /** Connected but no media this long: reconnect (the upstream may be stuck). */
  idleTimeoutMs: number;
}

/**
 * An input that connects out for its media (rtmp-pull, srt-caller): it is the flow's
 * source while it delivers media, reconnects with backoff, and drops a connection that
 * stays silent for `idleTimeoutMs`.
 */
export class SupervisedInput implements FlowPullInput {
  private readonly supervisor: ReconnectSupervisor;
  private readonly meter = new RateMeter();
  private attempt: InputAttempt | undefined;
  private source: SourceHandle | undefined;
  private bytesBefore = 0;
  private frames = 0;
  private lastMediaAt = 0;
  private watchdog: unknown;
  /** Why we closed the current connection ourselves, reported as its error. */
  private closeReason: Error | undefined;
  private closed = false;

  constructor(
    private readonly spec: SupervisedInputSpec,
    private readonly hub: SourcePort,
    private readonly connector: InputConnector,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.supervisor = new ReconnectSupervisor(spec.reconnect, (handlers) => this.connect(handlers), clock, logger);
  }

  get name(): string {
    return this.spec.name;
  }

  onStatusChange(listener: StatusListener): void {
    this.supervisor.onStatus = listener;
  }

  start(): void {
    this.logger.info({ target: this.connector.target }, 'input started');
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
      target: this.connector.target,
      bytes: this.bytesBefore + (this.attempt?.bytesReceived() ?? 0),
      // Nothing is received without a connection, whatever the last seconds measured.
      bitrate: this.attempt && CONNECTED_STATUSES.has(this.supervisor.status) ? this.meter.bitsPerSecond(this.clock.now()) : 0,
      frames: this.frames,
      framesDropped: 0,
      bytesDropped: 0,
      ...(this.attempt?.transportStats && { transport: this.attempt.transportStats() }),
      ...(this.connector.recentLog && { log: this.connector.recentLog() }),
      skips: 0,
    };
  }

  /** The hub hands the source to the first input that has media; a busy hub refuses. */
  private ensureSource(): SourceHandle | undefined {
    // A closed input's connection may still deliver for a moment (ffmpeg finishing after SIGINT): it must not take the source back.
    if (this.closed) return undefined;
    this.lastMediaAt = this.clock.now();
    this.source ??= this.hub.attachSource({ kick: (reason) => this.close(reason) });
    return this.source;
  }

  private endSource(reason: string): void {
    this.source?.detach(reason);
    this.source = undefined;
  }

  private connect(handlers: { ready(): void; closed(error: Error | undefined): void }): { close(reason: string): void } {
    // Connected is when media flows: a remote that accepts the connection and sends
    // nothing fails the attempt at idleTimeoutMs (counted towards failAfter and giveUp),
    // instead of reading as connected, then reconnected, forever.
    let carrying = false;
    const attempt = this.connector.connect({
      ready: () => {
        this.meter.reset();
        this.lastMediaAt = this.clock.now();
        this.startWatchdog(attempt);
      },
      media: (kind, timestamp, payload) => {
        if (!carrying) {
          carrying = true;
          handlers.ready();
        }
        if (this.ensureSource()?.push(kind, timestamp, payload)) this.frames += 1;
        this.meter.add(payload.length, this.lastMediaAt);
      },
      metadata: (timestamp, payload) => this.ensureSource()?.pushMetadata(timestamp, payload),
      data: (timestamp, payload) => this.ensureSource()?.pushData(timestamp, payload),
      streamEnd: (reason) => this.endSource(`upstream ended: ${reason}`),
      closed: (reported) => {
        const error = reported ?? this.closeReason;
        this.closeReason = undefined;
        this.stopWatchdog();
        this.endSource(error?.message ?? 'closed');
        this.bytesBefore += attempt.bytesReceived();
        if (this.attempt === attempt) this.attempt = undefined;
        handlers.closed(error);
      },
    });
    this.attempt = attempt;
    return attempt;
  }

  /** Checks at a fraction of the timeout that media still flows on this connection. */
  private startWatchdog(attempt: InputAttempt): void {
    this.stopWatchdog();
    const period = Math.min(1_000, this.spec.idleTimeoutMs);
    const check = () => {
      this.watchdog = undefined;
      if (this.attempt !== attempt) return;
      if (this.clock.now() - this.lastMediaAt >= this.spec.idleTimeoutMs) {
        this.logger.warn({ idleTimeoutMs: this.spec.idleTimeoutMs }, 'no media from upstream; reconnecting');
        this.closeReason = new Error(`no media from upstream for ${this.spec.idleTimeoutMs} ms`);
        attempt.close('no media within idleTimeoutMs');
        return;
      }
      this.watchdog = this.clock.setTimeout(check, period);
    };
    this.watchdog = this.clock.setTimeout(check, period);
  }

  private stopWatchdog(): void {
    if (this.watchdog !== undefined) this.clock.clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }
}
