import type { Logger } from 'pino';
import type { FlowRegistry } from '../core/flow-registry.js';
import { RateLimitedLog } from '../telemetry/rate-limited-log.js';
import type { SrtConnection } from './connection.js';
import type { SrtRuntime } from './runtime.js';
import { attachSrtPublisher } from './srt-publisher.js';
import { routeSharedPort } from './srt-routing.js';
import { serveTsToCaller } from './ts-to-caller.js';
import { admitByLists, type CidrList } from '../policy/cidr.js';
import { SrtReject, type SrtListener } from './types.js';

/** A player on the shared port may queue this much before skipping to a keyframe. */
const PLAYER_BACKLOG_BYTES = 8 * 1024 * 1024;

export interface SrtIngestOptions {
  host: string;
  port: number;
  latencyMs: number;
  /** Listener-wide access lists (deny wins; a non-empty allow admits only what it lists). */
  allow: CidrList;
  deny: CidrList;
}

/**
 * The shared SRT port: callers are routed by stream id to publish into a flow's
 * srt-listener input or to play a flow. Refusals happen inside the handshake, with SRT
 * reject reasons, and are counted.
 */
export class SrtIngest {
  private listener: SrtListener | undefined;
  readonly refused = new Map<string, number>();
  private readonly refusalLog: RateLimitedLog;

  constructor(
    private readonly runtime: SrtRuntime,
    private readonly registry: FlowRegistry,
    private readonly options: SrtIngestOptions,
    private readonly logger: Logger,
  ) {
    this.refusalLog = new RateLimitedLog(logger);
  }

  start(): void {
    this.listener = this.runtime.listen({
      host: this.options.host,
      port: this.options.port,
      latencyMs: this.options.latencyMs,
      onHandshake: ({ streamId, peer }) => {
        const routing = this.route(streamId, peer.address);
        return routing.ok ? routing.decision : { accept: false, reason: routing.reason };
      },
      onConnection: (connection) => this.onConnection(connection),
      onRejected: ({ peer, streamId }, reason) => {
        const routing = this.route(streamId, peer.address);
        const why = routing.ok ? 'refused' : routing.why;
        this.refused.set(why, (this.refused.get(why) ?? 0) + 1);
        this.refusalLog.warn(why, { peer: peer.address, reason, why }, 'srt caller refused');
      },
    });
    this.logger.info({ protocol: 'srt', host: this.options.host, port: this.listener.port }, 'listening');
  }

  get port(): number | undefined {
    return this.listener?.port;
  }

  async close(): Promise<void> {
    await this.listener?.close();
  }

  private route(streamId: string, peerAddress: string): ReturnType<typeof routeSharedPort> {
    if (!admitByLists(peerAddress, this.options.allow, this.options.deny)) {
      return { ok: false, reason: SrtReject.Forbidden, why: 'address not allowed on the SRT port' };
    }
    return routeSharedPort(streamId, peerAddress, this.registry);
  }

  private onConnection(connection: SrtConnection): void {
    // The flows may have changed since the handshake: route again.
    const routing = this.route(connection.streamId, connection.peer.address);
    if (!routing.ok) {
      this.logger.warn({ peer: connection.peer.address, why: routing.why }, 'srt caller dropped after handshake');
      connection.close();
      return;
    }
    const { route } = routing;
    const logger = this.logger.child({ flowId: route.flow.id, peer: connection.peer.address });
    if (route.kind === 'publish') {
      attachSrtPublisher(connection, route.flow, route.input.name, logger.child({ inputName: route.input.name }));
    } else {
      serveTsToCaller(connection, route.flow.hub, PLAYER_BACKLOG_BYTES);
      logger.info('srt player connected');
    }
  }
}
