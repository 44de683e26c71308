import type { Logger } from 'pino';
import type { FlowRegistry } from '../core/flow-registry.js';
import { RateLimitedLog } from '../telemetry/rate-limited-log.js';
import type { SrtConnection } from './connection.js';
import type { SrtRuntime } from './runtime.js';
import { attachSrtPublisher } from './srt-publisher.js';
import { routeSharedPort } from './srt-routing.js';
import { serveTsToCaller } from './ts-to-caller.js';
import type { AdmissionRefusal, ConnectionAdmission, ListenerReport } from '../policy/connection-admission.js';
import { SrtReject, type SrtHandshake, type SrtListener } from './types.js';

/** A player on the shared port may queue this much before skipping to a keyframe. */
const PLAYER_BACKLOG_BYTES = 8 * 1024 * 1024;

export interface SrtIngestOptions {
  host: string;
  port: number;
  latencyMs: number;
}

/** What a caller refused on the shared port is counted as (stable names for status and metrics). */
const REJECT_CODES: Record<number, string> = {
  [SrtReject.BadRequest]: 'bad_stream_id',
  [SrtReject.Unauthorized]: 'wrong_key',
  [SrtReject.Forbidden]: 'flow_address_denied',
  [SrtReject.NotFound]: 'not_found',
  [SrtReject.Conflict]: 'input_busy',
};

const ADMISSION_REFUSALS: Record<AdmissionRefusal, { reason: number; why: string }> = {
  address_denied: { reason: SrtReject.Forbidden, why: 'address not allowed on the SRT port' },
  too_many_connections: { reason: SrtReject.Overload, why: 'too many connections (srt.maxConnections)' },
  too_many_from_address: { reason: SrtReject.Overload, why: 'too many connections from this address (srt.maxConnectionsPerAddress)' },
};

type IngestRouting = ReturnType<typeof routeSharedPort> & { code?: string };

/**
 * The shared SRT port: callers are routed by stream id to publish into a flow's
 * srt-listener input or to play a flow. Refusals happen inside the handshake, with SRT
 * reject reasons, and are counted. The listener's allow/deny lists and connection caps
 * are checked in the handshake too; a connection holds its slot from the moment it is up
 * until it closes.
 */
export class SrtIngest {
  private listener: SrtListener | undefined;
  private readonly refusalLog: RateLimitedLog;
  /** Each refused handshake's verdict, until onRejected counts it (the runtime hands over the same object). */
  private readonly refusals = new WeakMap<SrtHandshake, { code?: string; why: string }>();

  constructor(
    private readonly runtime: SrtRuntime,
    private readonly registry: FlowRegistry,
    private readonly options: SrtIngestOptions,
    private readonly admission: ConnectionAdmission,
    private readonly logger: Logger,
  ) {
    this.refusalLog = new RateLimitedLog(logger);
  }

  start(): void {
    this.listener = this.runtime.listen({
      host: this.options.host,
      port: this.options.port,
      latencyMs: this.options.latencyMs,
      onHandshake: (handshake) => {
        const routing = this.route(handshake.streamId, handshake.peer.address);
        if (routing.ok) return routing.decision;
        this.refusals.set(handshake, routing);
        return { accept: false, reason: routing.reason };
      },
      onConnection: (connection) => this.onConnection(connection),
      onRejected: (handshake, reason) => {
        // Counted and logged here, outside the handshake, as the handshake decided. No
        // verdict: the runtime refused on its own (no peer address, a failing callback).
        const refusal = this.refusals.get(handshake);
        const code = refusal?.code ?? 'refused';
        this.admission.countRefusal(code);
        this.refusalLog.warn(code, { peer: handshake.peer.address, reason, why: refusal?.why ?? 'refused by the SRT runtime' }, 'srt caller refused');
      },
    });
    this.logger.info({ protocol: 'srt', host: this.options.host, port: this.listener.port }, 'listening');
  }

  get port(): number | undefined {
    return this.listener?.port;
  }

  report(): ListenerReport {
    return this.admission.report('srt', this.listener ? [{ protocol: 'srt', host: this.options.host, port: this.listener.port }] : []);
  }

  async close(): Promise<void> {
    await this.listener?.close();
  }

  private route(streamId: string, peerAddress: string): IngestRouting {
    const refusal = this.admission.check(peerAddress);
    if (refusal) return { ok: false, ...ADMISSION_REFUSALS[refusal], code: refusal };
    const routing = routeSharedPort(streamId, peerAddress, this.registry);
    return routing.ok ? routing : { ...routing, code: REJECT_CODES[routing.reason] ?? 'refused' };
  }

  private onConnection(connection: SrtConnection): void {
    // Handshakes that ran side by side may all have passed the caps' check: the slot is
    // taken only now (lists and caps checked again, a refusal counted), and a caller over
    // a cap is closed.
    const verdict = this.admission.admit(connection.peer.address);
    if (!verdict.ok) {
      this.refusalLog.warn(verdict.reason, { peer: connection.peer.address, why: ADMISSION_REFUSALS[verdict.reason].why }, 'srt caller dropped after handshake');
      connection.close();
      return;
    }
    connection.once('closed', () => verdict.release());
    // The flows may have changed since the handshake: route again.
    const routing = routeSharedPort(connection.streamId, connection.peer.address, this.registry);
    if (!routing.ok) {
      this.logger.warn({ peer: connection.peer.address, why: routing.why }, 'srt caller dropped after handshake');
      connection.close();
      return;
    }
    const { route } = routing;
    const logger = this.logger.child({ flowId: route.flow.id, peer: connection.peer.address });
    if (route.kind === 'publish') {
      attachSrtPublisher(connection, route.flow, route.input.name, route.input.idleTimeoutMs, logger.child({ inputName: route.input.name }));
    } else {
      serveTsToCaller(connection, route.flow.hub, PLAYER_BACKLOG_BYTES, logger);
      logger.info('srt player connected');
    }
  }
}
