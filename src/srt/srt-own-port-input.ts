import type { Logger } from 'pino';
import { parseListen } from '../config/schema.js';
import type { ConnectionReport, FlowPullInput } from '../core/flow-parts.js';
import type { Flow, SrtListenerInputSpec } from '../core/flow.js';
import { parseStreamId } from '../protocol/srt/stream-id.js';
import type { SrtRuntime } from './runtime.js';
import { ListenRetry } from './listen-retry.js';
import { attachSrtPublisher } from './srt-publisher.js';
import { admitPublisher, publisherDecision } from './srt-routing.js';
import { SrtReject, type SrtListener } from './types.js';

/**
 * An srt-listener input with a port of its own: any caller there publishes to this input
 * (its stream id may carry the key as `s=` in the access-control form, or be a bare key).
 */
export class SrtOwnPortInput implements FlowPullInput {
  private listener: SrtListener | undefined;
  private readonly retry: ListenRetry;
  private refused = 0;

  constructor(
    private readonly spec: SrtListenerInputSpec & { listen: string },
    private readonly flow: Flow,
    private readonly runtime: SrtRuntime,
    private readonly logger: Logger,
  ) {
    const { host, port } = parseListen(spec.listen);
    this.retry = new ListenRetry(runtime, port, () => this.listen(host, port), logger);
  }

  get name(): string {
    return this.spec.name;
  }

  start(): void {
    this.retry.start();
  }

  /** Throws when the port cannot be opened; the retry tries again. */
  private listen(host: string, port: number): void {
    this.listener = this.runtime.listen({
      host,
      port,
      latencyMs: this.spec.latencyMs,
      onHandshake: ({ streamId, peer }) => {
        if (!this.flow.admitsAddress(peer.address)) return { accept: false, reason: SrtReject.Forbidden };
        const refused = admitPublisher(keyOf(streamId), this.spec);
        if (refused && !refused.ok) return { accept: false, reason: refused.reason };
        if (!this.flow.makeRoomForPublisher(this.spec.name)) return { accept: false, reason: SrtReject.Conflict };
        return publisherDecision(this.spec);
      },
      onConnection: (connection) => attachSrtPublisher(connection, this.flow, this.spec.name, this.spec.idleTimeoutMs, this.logger),
      onRejected: (_h, reason) => {
        this.refused += 1;
        this.logger.warn({ reason }, 'srt caller refused');
      },
    });
    this.logger.info({ protocol: 'srt', host, port: this.listener.port }, 'srt input listening');
  }

  get port(): number | undefined {
    return this.listener?.port;
  }

  close(): void {
    this.retry.stop();
    void this.listener?.close();
  }

  report(): ConnectionReport {
    const state = this.flow.inputs.get(this.spec.name);
    return {
      // While the port cannot be opened, the input fails; the retry keeps trying.
      status: this.retry.failing ? 'failed_to_connect' : state?.remoteAddress ? 'connected' : 'idle',
      target: `srt listener ${this.spec.listen}`,
      attempts: (state?.publishes ?? 0) + this.refused,
      reconnects: Math.max(0, (state?.publishes ?? 0) - 1),
      ...this.retry.report(),
      connectedAt: state?.connectedAt,
      bytes: 0,
      bitrate: 0,
      frames: 0,
      framesDropped: 0,
      bytesDropped: 0,
      skips: 0,
    };
  }
}

/** The key a caller on an own port presents: `s=` of the access-control form, or the whole id. */
function keyOf(streamId: string): string | undefined {
  if (streamId === '') return undefined;
  if (!streamId.startsWith('#!::')) return streamId;
  const parsed = parseStreamId(streamId);
  return parsed.ok ? parsed.request.key : undefined;
}
