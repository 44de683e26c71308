import type { Logger } from 'pino';
import type { SrtListenerOutputConfig } from '../config/schema.js';
import { parseListen } from '../config/schema.js';
import type { ConnectionReport, FlowOutput, TransportStats } from '../core/flow-parts.js';
import type { OutputFeed } from '../core/output-feed.js';
import type { StreamHub } from '../core/stream-hub.js';
import type { SrtConnection } from './connection.js';
import type { SrtRuntime } from './runtime.js';
import { CidrList } from '../policy/cidr.js';
import { RateMeter } from '../policy/rate-meter.js';
import { srtTransportStats } from './srt-stats.js';
import { ListenRetry } from './listen-retry.js';
import { serveTsToCaller } from './ts-to-caller.js';
import { SrtReject, type SrtListener } from './types.js';

/** Each caller may queue this much before it skips to the next keyframe. */
const CALLER_BACKLOG_BYTES = 8 * 1024 * 1024;

/** libsrt's running totals, which the output adds up over its callers, those gone included. */
const TRANSPORT_COUNTERS = ['packetsLostReceiving', 'packetsLostSending', 'packetsRetransmitted', 'packetsDroppedReceiving', 'packetsDroppedSending', 'messagesRefusedSending'];

/** Adds `from`'s running totals into `into`. */
function addTransportCounters(into: TransportStats, from: TransportStats): void {
  for (const key of TRANSPORT_COUNTERS) if (from[key] !== undefined) into[key] = (into[key] ?? 0) + from[key];
}

/**
 * An `srt-listener` output: remote callers pull the flow as MPEG-TS from a port of the
 * output's own, with its own passphrase; several at once, each from a keyframe.
 */
export class SrtListenerOutput implements FlowOutput {
  private listener: SrtListener | undefined;
  private readonly callers = new Map<SrtConnection, { feed: OutputFeed; connectedAt: Date }>();
  private accepted = 0;
  /** Callers that came after every earlier caller had left. */
  private reconnects = 0;
  /** Bytes sent per second to all callers, sampled once a second while any is connected. */
  private readonly meter = new RateMeter();
  private sampler: NodeJS.Timeout | undefined;
  private sampledBytes = 0;
  private rejected = 0;
  private readonly retry: ListenRetry;
  /** What callers that left had counted: totals never go back when one leaves. */
  private bytesBefore = 0;
  private framesBefore = 0;
  private readonly droppedBefore = { frames: 0, bytes: 0, skips: 0 };
  private readonly transportBefore: TransportStats = {};
  /** Each caller's transport statistics as last read (once a second, and when it leaves). */
  private readonly lastTransport = new Map<SrtConnection, TransportStats>();
  private closed = false;
  private readonly cidrs: CidrList;

  constructor(
    private readonly spec: SrtListenerOutputConfig,
    private readonly hub: StreamHub,
    private readonly runtime: SrtRuntime,
    private readonly logger: Logger,
  ) {
    this.cidrs = CidrList.parse(spec.cidrs);
    const { host, port } = parseListen(spec.listen);
    // A busy port fails this output, visibly, and nothing else; the retry keeps trying.
    this.retry = new ListenRetry(runtime, port, () => this.listen(host, port), logger);
  }

  get name(): string {
    return this.spec.name;
  }

  start(): void {
    this.retry.start();
  }

  /** Throws when the port cannot be opened. */
  private listen(host: string, port: number): void {
    this.listener = this.runtime.listen({
      host,
      port,
      latencyMs: this.spec.latencyMs,
      ...(this.spec.passphrase !== undefined && { passphrase: this.spec.passphrase, pbkeylen: this.spec.pbkeylen }),
      onHandshake: ({ peer }) => {
        if (this.cidrs.size > 0 && !this.cidrs.matches(peer.address)) return { accept: false, reason: SrtReject.Forbidden };
        return this.callers.size >= this.spec.maxCallers ? { accept: false, reason: SrtReject.Overload } : { accept: true };
      },
      onConnection: (connection) => this.onCaller(connection),
      onRejected: () => void (this.rejected += 1),
    });
    this.logger.info({ host, port: this.listener.port }, 'srt listener output listening');
  }

  /** The bound port (useful when the config says port 0). */
  get port(): number | undefined {
    return this.listener?.port;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.retry.stop();
    clearInterval(this.sampler);
    void this.listener?.close();
    for (const connection of [...this.callers.keys()]) connection.close();
    this.logger.info({ reason }, 'output closed');
  }

  /** Bytes sent to every caller so far, those gone included. */
  private bytesSent(): number {
    let bytes = this.bytesBefore;
    for (const connection of this.callers.keys()) bytes += connection.counters.bytesSent;
    return bytes;
  }

  report(): ConnectionReport {
    const peers = [...this.callers.keys()].map((c) => ({ address: c.peer.address, port: c.peer.port, transport: this.readTransport(c) }));
    let frames = this.framesBefore;
    let { frames: framesDropped, bytes: bytesDropped, skips } = this.droppedBefore;
    for (const { feed } of this.callers.values()) {
      frames += feed.counters.framesSent;
      framesDropped += feed.dropped.frames;
      bytesDropped += feed.dropped.bytes;
      skips += feed.dropped.skips;
    }
    return {
      status: this.retry.failing ? 'failed_to_connect' : this.callers.size > 0 ? 'connected' : 'idle',
      target: `srt listener ${this.spec.listen}`,
      attempts: this.accepted + this.rejected,
      reconnects: this.reconnects,
      ...this.retry.report(),
      // Since when callers have been served without a break: the longest-connected one's time.
      connectedAt: [...this.callers.values()].reduce<Date | undefined>((first, c) => (first === undefined || c.connectedAt < first ? c.connectedAt : first), undefined),
      bytes: this.bytesSent(),
      bitrate: this.callers.size > 0 ? this.meter.bitsPerSecond(Date.now()) : 0,
      frames,
      framesDropped,
      bytesDropped,
      skips,
      ...this.transportTotals(peers),
      peers,
    };
  }

  /**
   * The callers' transport as one: libsrt's counters summed (those gone included), the
   * highest round trip and the total send rate of those connected. Metrics show this
   * rather than a series per caller, whose ephemeral port would make a new one each time.
   */
  private transportTotals(peers: { transport: TransportStats }[]): { transport: TransportStats } {
    const transport: TransportStats = { ...this.transportBefore };
    for (const { transport: t } of peers) {
      addTransportCounters(transport, t);
      if (t.rttMs !== undefined) transport.rttMs = Math.max(transport.rttMs ?? 0, t.rttMs);
      if (t.sendRateMbps !== undefined) transport.sendRateMbps = (transport.sendRateMbps ?? 0) + t.sendRateMbps;
    }
    return { transport };
  }

  private readTransport(connection: SrtConnection): TransportStats {
    try {
      const stats = srtTransportStats(connection);
      this.lastTransport.set(connection, stats);
      return stats;
    } catch {
      // Closed under us: what was read last.
      return this.lastTransport.get(connection) ?? {};
    }
  }

  private onCaller(connection: SrtConnection): void {
    if (this.closed) return connection.close();
    if (this.callers.size >= this.spec.maxCallers) {
      // Callers whose handshakes overlapped all passed the check there, before any was connected.
      this.rejected += 1;
      this.logger.warn({ peer: connection.peer.address, maxCallers: this.spec.maxCallers }, 'srt caller over maxCallers closed');
      return connection.close();
    }
    if (this.callers.size === 0) {
      if (this.accepted > 0) this.reconnects += 1;
      this.startSampling();
    }
    this.accepted += 1;
    const feed = serveTsToCaller(connection, this.hub, CALLER_BACKLOG_BYTES, this.logger.child({ peer: connection.peer.address }));
    this.callers.set(connection, { feed, connectedAt: new Date() });
    this.logger.info({ peer: connection.peer.address, callers: this.callers.size }, 'srt caller connected');
    connection.once('closed', (error) => {
      addTransportCounters(this.transportBefore, this.readTransport(connection));
      this.lastTransport.delete(connection);
      this.callers.delete(connection);
      this.bytesBefore += connection.counters.bytesSent;
      this.framesBefore += feed.counters.framesSent;
      this.droppedBefore.frames += feed.dropped.frames;
      this.droppedBefore.bytes += feed.dropped.bytes;
      this.droppedBefore.skips += feed.dropped.skips;
      if (this.callers.size === 0) clearInterval(this.sampler);
      this.logger.info({ peer: connection.peer.address, err: error?.message }, 'srt caller left');
    });
  }

  /** The sends happen in the MPEG-TS sink; the rate is read from the byte counters once a second. */
  private startSampling(): void {
    clearInterval(this.sampler);
    this.meter.reset();
    this.sampledBytes = this.bytesSent();
    this.sampler = setInterval(() => {
      const total = this.bytesSent();
      this.meter.add(total - this.sampledBytes, Date.now());
      this.sampledBytes = total;
      for (const connection of this.callers.keys()) this.readTransport(connection);
    }, 1_000);
    this.sampler.unref();
  }
}
