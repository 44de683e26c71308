import type { Logger } from 'pino';
import type { FlowInputConfig } from '../config/schema.js';
import type { Clock } from '../lib/clock.js';
import { RateMeter } from '../policy/rate-meter.js';
import type { ConnectionStatus } from './connection-status.js';
import type { SourcePort } from './failover-switch.js';
import type { StatusListener } from './flow-events.js';
import type { ConnectionReport, FlowPullInput } from './flow-parts.js';
import type { MediaMessage } from './media.js';
import type { HubReader, SourceHandle, StreamHub } from './stream-hub.js';

/** How often a missing upstream flow (not created yet, or restarting) is looked for again. */
const RESOLVE_INTERVAL_MS = 1000;

/**
 * A flow reading another flow of the same daemon: a reader of the upstream hub that is
 * this flow's source while the upstream is live. The same message objects and Buffers
 * pass from hub to hub: no sockets, no copies. An upstream that is removed or restarted
 * is found again on its own.
 */
export class LocalCascadeInput implements FlowPullInput, HubReader {
  private detachReader: (() => void) | undefined;
  private source: SourceHandle | undefined;
  private timer: unknown;
  private closed = false;
  private status: ConnectionStatus = 'new_configuration_accepted';
  private statusListener: StatusListener | undefined;
  private readonly meter = new RateMeter();
  private bytes = 0;
  private frames = 0;
  private attaches = 0;
  private connectedAt: Date | undefined;

  constructor(
    private readonly spec: FlowInputConfig,
    private readonly port: SourcePort,
    private readonly upstreamHub: (flowId: string) => StreamHub | undefined,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  onStatusChange(listener: StatusListener): void {
    this.statusListener = listener;
  }

  start(): void {
    this.resolve();
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    this.detachReader?.();
    this.detachReader = undefined;
    this.endSource(reason);
  }

  report(): ConnectionReport {
    const now = this.clock.now();
    return {
      status: this.status,
      target: `flow ${this.spec.flow}`,
      bytes: this.bytes,
      bitrate: this.meter.bitsPerSecond(now),
      frames: this.frames,
      framesDropped: 0,
      bytesDropped: 0,
      skips: 0,
      attempts: this.attaches,
      reconnects: Math.max(0, this.attaches - 1),
      consecutiveFailures: 0,
      lastError: undefined,
      lastErrorAt: undefined,
      connectedAt: this.connectedAt,
      nextAttemptAt: undefined,
    };
  }

  deliver(message: MediaMessage): void {
    if (this.closed) return;
    this.source ??= this.port.attachSource({ kick: (reason) => this.endSource(reason) });
    const source = this.source;
    if (!source) return;
    if (message.kind === 'data') {
      if (message.isSequenceHeader) source.pushMetadata(message.timestamp, message.payload);
      else source.pushData(message.timestamp, message.payload);
      return;
    }
    if (source.push(message.kind, message.timestamp, message.payload)) this.frames += 1;
    this.bytes += message.payload.length;
    this.meter.add(message.payload.length, this.clock.now());
  }

  sourceStarted(): void {
    this.setStatus('connected');
  }

  sourceEnded(): void {
    this.endSource('upstream flow ended');
    this.setStatus('idle');
  }

  hubClosed(reason: string): void {
    this.detachReader = undefined;
    this.endSource(`upstream flow closed: ${reason}`);
    this.setStatus('idle');
    // A restarted upstream is a new flow with a new hub.
    this.schedule();
  }

  private resolve(): void {
    if (this.closed) return;
    const hub = this.upstreamHub(this.spec.flow);
    if (!hub) {
      this.schedule();
      return;
    }
    this.attaches += 1;
    this.connectedAt = new Date(this.clock.now());
    this.detachReader = hub.addReader(this);
    if (!hub.live) this.setStatus('idle');
  }

  private schedule(): void {
    if (this.closed) return;
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => this.resolve(), RESOLVE_INTERVAL_MS);
  }

  private endSource(reason: string): void {
    this.source?.detach(reason);
    this.source = undefined;
  }

  private setStatus(next: ConnectionStatus): void {
    const previous = this.status;
    if (next === previous) return;
    this.status = next;
    this.logger.info({ upstream: this.spec.flow, status: next }, 'cascade input status');
    this.statusListener?.(next, previous, undefined);
  }
}
