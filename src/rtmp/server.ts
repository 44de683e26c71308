import { once } from 'node:events';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { FlowrelayError } from '../lib/errors.js';
import type { ConnectionAdmission, ListenerReport } from '../policy/connection-admission.js';
import { RateLimitedLog } from '../telemetry/rate-limited-log.js';
import { RtmpSession, type RtmpSessionDeps, type RtmpSessionOptions } from './session.js';
import type { TlsFiles } from './tls-pair.js';
import { TlsReloader } from './tls-reloader.js';

export interface RtmpListenerSpec {
  host: string;
  port: number;
  /** PEM certificate chain and key for RTMPS; absent for plain RTMP. */
  tls?: { cert: Buffer; key: Buffer };
  /** Where `tls` was read from: the files are watched and the certificate reloaded when they change. */
  tlsFiles?: TlsFiles;
}

/** The listener's refusal reason for a TLS handshake that failed or ran out of time (scanners, plain RTMP on the TLS port). */
const TLS_HANDSHAKE_FAILED = 'tls_handshake_failed';

/** How long close() waits for sessions to flush their goodbyes before destroying them. */
const CLOSE_GRACE_MS = 1_500;

/**
 * The shared RTMP (and RTMPS) listeners. Every accepted socket becomes an RtmpSession;
 * the server only tracks them so it can close them all on shutdown.
 */
export class RtmpServer {
  private readonly servers: { spec: RtmpListenerSpec; server: Server }[] = [];
  private readonly sessions = new Set<RtmpSession>();
  private readonly reloaders: TlsReloader[] = [];
  private closing = false;

  private readonly refusalLog: RateLimitedLog;

  constructor(
    private readonly listeners: readonly RtmpListenerSpec[],
    private readonly sessionOptions: RtmpSessionOptions,
    private readonly deps: Omit<RtmpSessionDeps, 'refusalLog'>,
    /** Decides at accept, before any TLS or RTMP byte, whether a connection may stay. */
    readonly admission: ConnectionAdmission,
  ) {
    this.refusalLog = new RateLimitedLog(deps.logger);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  report(): ListenerReport {
    return this.admission.report(
      'rtmp',
      this.addresses().map(({ protocol, address }) => ({ protocol, host: address.address, port: address.port })),
    );
  }

  async start(): Promise<void> {
    for (const spec of this.listeners) {
      const tlsServer: TlsServer | undefined = spec.tls ? this.createTlsListener(spec.tls) : undefined;
      const server: Server = tlsServer ?? createTcpServer((socket) => this.accept(socket, 'rtmp'));
      // Every TCP connection is tracked from accept on, before any TLS handshake, so that
      // shutdown can destroy connections that never finished one.
      server.on('connection', (socket: Socket) => this.track(socket));
      server.on('error', (err) => this.deps.logger.error({ err: err.message }, 'rtmp listener error'));
      try {
        server.listen({ host: spec.host, port: spec.port });
        await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
      } catch (err) {
        await this.close();
        const protocol = spec.tls ? 'rtmps' : 'rtmp';
        throw new FlowrelayError('LISTEN_FAILED', `cannot listen for ${protocol} on ${spec.host}:${spec.port}: ${(err as Error).message}`, { cause: err });
      }
      this.servers.push({ spec, server });
      const address = server.address() as AddressInfo;
      this.deps.logger.info({ protocol: spec.tls ? 'rtmps' : 'rtmp', host: address.address, port: address.port }, 'listening');
      if (tlsServer && spec.tls && spec.tlsFiles) {
        const reloader = new TlsReloader(spec.tlsFiles, spec.tls, tlsServer, { logger: this.deps.logger.child({ protocol: 'rtmps' }) });
        this.reloaders.push(reloader);
        reloader.start();
      }
    }
  }

  /**
   * The RTMPS listener. A TLS handshake has the RTMP handshake's time limit of its own
   * (Node's default is 120 s), and a connection whose handshake fails or runs out of time
   * is closed here: Node leaves that to the 'tlsClientError' listener, and a few idle
   * connections would otherwise hold the listener's connection caps for good.
   */
  private createTlsListener(pair: { cert: Buffer; key: Buffer }): TlsServer {
    const server = createTlsServer({ cert: pair.cert, key: pair.key, handshakeTimeout: this.sessionOptions.handshakeTimeoutMs }, (socket) => this.accept(socket, 'rtmps'));
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      const remoteAddress = socket.remoteAddress;
      socket.destroy();
      this.admission.countRefusal(TLS_HANDSHAKE_FAILED);
      this.refusalLog.warn(TLS_HANDSHAKE_FAILED, { reason: TLS_HANDSHAKE_FAILED, remoteAddress, err: err.message }, 'rtmps handshake failed');
    });
    return server;
  }

  /** Reads the RTMPS certificate and key again now (SIGHUP), as a change of the files would. */
  async reloadTls(): Promise<void> {
    await Promise.all(this.reloaders.map((reloader) => reloader.check()));
  }

  /** Bound addresses in listener order (port 0 resolved to the real port). */
  addresses(): { protocol: 'rtmp' | 'rtmps'; address: AddressInfo }[] {
    return this.servers.map(({ spec, server }) => ({ protocol: spec.tls ? 'rtmps' : 'rtmp', address: server.address() as AddressInfo }));
  }

  /** Stops accepting, then closes every session; resolves when all sockets are gone. */
  async close(): Promise<void> {
    this.closing = true;
    this.deps.merger?.close();
    for (const reloader of this.reloaders) reloader.close();
    const stopped = this.servers.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const session of [...this.sessions]) session.close('server shutting down', true);
    const deadline = setTimeout(() => this.destroyAll(), CLOSE_GRACE_MS);
    deadline.unref();
    await Promise.all(stopped);
    clearTimeout(deadline);
  }

  private destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private readonly sockets = new Set<Socket>();

  private track(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const verdict = this.admission.admit(socket.remoteAddress);
    if (!verdict.ok) {
      this.refusalLog.warn(verdict.reason, { reason: verdict.reason, remoteAddress: socket.remoteAddress }, 'rtmp connection refused');
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      verdict.release();
    });
  }

  private accept(socket: Socket, protocol: 'rtmp' | 'rtmps'): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const logger = this.deps.logger.child({ protocol, remoteAddress: socket.remoteAddress });
    const session = new RtmpSession(socket, this.sessionOptions, { ...this.deps, logger, refusalLog: this.refusalLog }, (s) => this.sessions.delete(s));
    this.sessions.add(session);
    session.start();
  }
}
