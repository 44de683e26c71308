import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import {
  EPOLL_EVENT_SIZE,
  PERFMON,
  PERFMON_SIZE,
  SRT_EASYNCRCV,
  SRT_EASYNCSND,
  SRT_EBINDCONFLICT,
  SRT_ECONGEST,
  SRT_ECONNLOST,
  SRT_ECONNREJ,
  SRT_ECONNSETUP,
  SRT_EDUPLISTEN,
  SRT_EINVPARAM,
  SRT_ELARGEMSG,
  SRT_ENOSERVER,
  SRT_EPOLL_ENABLE_EMPTY,
  SRT_EPOLL_ERR,
  SRT_EPOLL_IN,
  SRT_EPOLL_OUT,
  SRT_ESOCKFAIL,
  SRT_LIVE_DEF_PLSIZE,
  SRT_LIVE_MAX_PLSIZE,
  SRT_REJ_BADSECRET,
  SRT_REJ_TIMEOUT,
  SRT_REJ_UNSECURE,
  SRT_REJC_PREDEFINED,
  SRT_REJX_DOWN,
  SRT_REJX_FALLBACK,
  SRT_REJX_ISE,
  SRT_STREAMID_MAX,
  SRTO,
  SRTS,
  SRTT_LIVE,
} from './constants.js';
import { SrtConnection, type SrtConnectionHost } from './connection.js';
import { lastError, loadLibsrt, SrtError, srtErrorName, type Libsrt } from './libsrt.js';
import { decodeSockaddr, encodeSockaddr, SOCKADDR_IN6_SIZE } from './sockaddr.js';
import type { PbKeyLen, SrtAcceptDecision, SrtCallOptions, SrtHandshake, SrtListener, SrtListenOptions, SrtStats } from './types.js';
import { SrtReject } from './types.js';
import { redactStreamId } from '../protocol/srt/stream-id.js';

export { SrtConnection } from './connection.js';
export type { SrtConnectionEvents, SrtConnectionState } from './connection.js';
export { SrtError } from './libsrt.js';
export * from './types.js';

/** Events taken per wait; more stay pending (level-triggered) for the next one. */
const MAX_EVENTS = 64;
/** srt_epoll_uwait timeout: bounds how long close() waits for the in-flight call. */
const WAIT_MS = 200;
/** Messages read from one socket per wake, so one hot socket cannot hold the event loop. */
const MAX_DRAIN = 512;
/** Receive buffer: a live message is at most SRT_LIVE_MAX_PLSIZE (1456), whatever the peer's SRTO_PAYLOADSIZE. */
const RECV_MAX = SRT_LIVE_MAX_PLSIZE;
/** Received messages are views into zeroed slabs of this size (no copy, no reuse). */
const SLAB_SIZE = 64 * 1024;
/** syslog LOG_CRIT, the level libsrt logs at and above (its default, LOG_ERR, logs rogue packets). */
const SYSLOG_CRIT = 2;
const LISTEN_BACKLOG = 32;
/** Our own bound on a caller's connect, beyond libsrt's SRTO_CONNTIMEO (which normally fires first). */
const CONNECT_GRACE_MS = 1500;
const WAIT_RETRY_MS = 50;

type RuntimeState = 'open' | 'closing' | 'closed';

class Listener implements SrtListener {
  state: 'listening' | 'closing' | 'closed' = 'listening';
  closing: Promise<void> | undefined;

  constructor(
    private readonly runtime: SrtRuntime,
    readonly socket: number,
    readonly host: string,
    readonly port: number,
    readonly options: SrtListenOptions,
  ) {}

  close(): Promise<void> {
    return this.runtime.closeListener(this);
  }
}

/**
 * The process's SRT machinery: libsrt loaded and started once, one epoll container, one
 * waiting call (srt_epoll_uwait.async on a worker thread) at a time, and everything else
 * on the main thread (docs/notes/srt-with-koffi.md; native/libsrt.md for the constants).
 *
 * ONE per process, made by the app (SrtRuntime.open) and passed to users. close() closes
 * every socket, then srt_cleanup.
 *
 * The wait loop runs only while there are sockets: with none, nothing keeps the process
 * alive. An open listener or connection keeps it alive, as a net.Server would.
 */
export class SrtRuntime {
  private readonly log: Logger;
  private state: RuntimeState = 'open';
  private readonly eid: number;
  private readonly hook: bigint;
  /** Socket id -> owner, for the epoll loop. */
  private readonly sockets = new Map<number, Listener | SrtConnection>();
  private readonly listeners = new Map<number, Listener>();
  /** Every connection not yet closed, including callers still resolving their host. */
  private readonly connections = new Set<SrtConnection>();
  private readonly connectTimers = new Map<SrtConnection, NodeJS.Timeout>();
  /** Written by the waiting call on a worker thread; read only after it returned. */
  private readonly events = Buffer.alloc(MAX_EVENTS * EPOLL_EVENT_SIZE);
  private inflight: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private waitErrors = 0;
  private wakes = 0;
  private slab = Buffer.alloc(SLAB_SIZE);
  private slabOffset = 0;
  private closing: Promise<void> | undefined;
  private readonly perf = Buffer.alloc(PERFMON_SIZE);
  /** Per address family, a bound idle socket whose UDP port every caller shares (see bindToCallerPort). */
  private readonly callerAnchors = new Map<4 | 6, { socket: number; port: number }>();
  private readonly host: SrtConnectionHost = {
    send: (conn, chunk) => this.send(conn, chunk),
    close: (conn, error) => this.closeConnection(conn, error),
    stats: (conn) => this.readStats(conn),
  };

  /** Loads libsrt (SRT_UNAVAILABLE when missing), srt_startup, one epoll container. */
  static open(logger: Logger, options: { libraryCandidates?: readonly string[] } = {}): SrtRuntime {
    const lib = loadLibsrt(options.libraryCandidates);
    if (lib.srt_startup() < 0) throw lastError(lib, 'srt_startup');
    // libsrt logs its errors to stderr itself, one line per rogue UDP packet: anyone who
    // can send to an SRT port (with a spoofed source, too) could flood the journal.
    // What matters reaches our own logs through the calls' results and reject reasons.
    lib.srt_setloglevel(SYSLOG_CRIT);
    return new SrtRuntime(lib, logger);
  }

  private constructor(
    private readonly lib: Libsrt,
    logger: Logger,
  ) {
    // Used as given: the app binds its own fields (component) to it.
    this.log = logger;
    const eid = lib.srt_epoll_create();
    if (eid < 0) {
      const err = lastError(lib, 'srt_epoll_create');
      lib.srt_cleanup();
      throw err;
    }
    this.eid = eid;
    lib.srt_epoll_set(eid, SRT_EPOLL_ENABLE_EMPTY);
    this.hook = lib.registerListenHook((opaque, ns, hsVersion, peer, streamId) => this.onListenHook(opaque, ns, hsVersion, peer, streamId));
    this.log.debug({ library: lib.file, version: lib.version }, 'libsrt loaded');
  }

  /** Counts, for diagnostics and tests. */
  info(): { state: RuntimeState; listeners: number; connections: number; sockets: number; waiting: boolean; wakes: number; waitErrors: number; library: string; version: string } {
    return {
      state: this.state,
      listeners: this.listeners.size,
      connections: this.connections.size,
      sockets: this.sockets.size,
      waiting: this.inflight !== undefined,
      wakes: this.wakes,
      waitErrors: this.waitErrors,
      library: this.lib.file,
      version: this.lib.version,
    };
  }

  // ---------------------------------------------------------------- listen

  /** Binds now; throws SrtError on bad options or a port that is taken. */
  listen(options: SrtListenOptions): SrtListener {
    this.assertOpen();
    checkLatency(options.latencyMs);
    checkSecret(options.passphrase, options.pbkeylen);
    const address = options.host === '' ? '0.0.0.0' : options.host;
    if (isIP(address) === 0) throw invalid(`SRT listen host must be an IP address, got "${options.host}"`);
    const where = formatHostPort(address, options.port);
    let name: Buffer;
    try {
      name = encodeSockaddr(address, options.port);
    } catch (err) {
      throw invalid(`SRT listen address ${where}: ${(err as Error).message}`);
    }

    // Refused here, not by libsrt: srt_listen on a port we listen on already takes the lock
    // that port's receiver thread may hold while a handshake waits for this thread.
    if (options.port !== 0 && [...this.listeners.values()].some((l) => l.port === options.port)) {
      throw new SrtError('SRT_EDUPLISTEN', `SRT port ${where} is not available (already in use by this process)`, SRT_EDUPLISTEN);
    }
    const { lib } = this;
    const sock = lib.srt_create_socket();
    if (sock < 0) throw lastError(lib, 'srt_create_socket');
    let port: number;
    let watched = false;
    try {
      this.configure(sock, { latencyMs: options.latencyMs, passphrase: options.passphrase, pbkeylen: options.pbkeylen });
      // libsrt refuses to bind "::" unless IPV6ONLY was set explicitly; 0 = dual stack.
      if (isIP(address) === 6 && /^\[?::\]?$/.test(address)) this.setInt(sock, SRTO.IPV6ONLY, 0, 'SRTO_IPV6ONLY');
      if (lib.srt_bind(sock, name, name.length) < 0) throw this.bindError(where);
      port = this.boundPort(sock);
      if (lib.srt_listen_callback(sock, this.hook, BigInt(sock)) < 0) throw lastError(lib, 'srt_listen_callback');
      if (lib.srt_epoll_add_usock(this.eid, sock, new Int32Array([SRT_EPOLL_IN | SRT_EPOLL_ERR])) < 0) throw lastError(lib, 'srt_epoll_add_usock');
      watched = true;
      // Last: until srt_listen succeeds no handshake can reach the hook, so a synchronous
      // srt_close is safe on the error path (see closeListener for why it is not later).
      if (lib.srt_listen(sock, LISTEN_BACKLOG) < 0) throw this.bindError(where);
    } catch (err) {
      // Only if added: libsrt logs an internal error for removing what was never there.
      if (watched) lib.srt_epoll_remove_usock(this.eid, sock);
      lib.srt_close(sock);
      throw err;
    }
    const listener = new Listener(this, sock, address, port, options);
    this.listeners.set(sock, listener);
    this.sockets.set(sock, listener);
    this.log.debug({ host: address, port }, 'SRT listener bound');
    this.arm();
    return listener;
  }

  /**
   * Runs `listen` once no listener of ours on `port` is still closing (srt_close runs off
   * the main thread): at once when none is. A config change that replaces a listener on
   * the same port listens through this, or the new listen would find the port taken.
   */
  onPortFree(port: number, listen: () => void): void {
    const closing = port === 0 ? [] : [...this.listeners.values()].filter((l) => l.port === port && l.closing !== undefined);
    if (closing.length === 0) listen();
    else void Promise.all(closing.map((l) => l.closing)).then(listen);
  }

  private bindError(where: string): SrtError {
    const errno = this.lib.srt_getlasterror(null);
    const text = this.lib.srt_getlasterror_str();
    const busy = errno === SRT_ESOCKFAIL || errno === SRT_ECONNSETUP || errno === SRT_EBINDCONFLICT || errno === SRT_EDUPLISTEN;
    const message = busy ? `SRT port ${where} is not available (already in use?): ${text}` : `cannot listen for SRT on ${where}: ${text}`;
    return new SrtError(srtErrorName(errno), message, errno);
  }

  private boundPort(sock: number): number {
    const name = Buffer.alloc(SOCKADDR_IN6_SIZE);
    const len = new Int32Array([name.length]);
    if (this.lib.srt_getsockname(sock, name, len) < 0) throw lastError(this.lib, 'srt_getsockname');
    const bound = decodeSockaddr(name);
    if (!bound) throw new SrtError('SRT_EINVPARAM', 'srt_getsockname: unknown address family', SRT_EINVPARAM);
    return bound.port;
  }

  /**
   * libsrt's receiver thread for the port runs this (through koffi, on the main thread)
   * and waits for the answer. Never throws (koffi would return 0, which means accept), and
   * rejects on anything unexpected (pitfalls 4 and 5).
   */
  private onListenHook(opaque: bigint | null, ns: number, _hsVersion: number, peerPtr: bigint | null, streamId: string | null): number {
    let handshake: SrtHandshake | undefined;
    let listener: Listener | undefined;
    try {
      listener = opaque === null ? undefined : this.listeners.get(Number(opaque));
      if (!listener || listener.state !== 'listening' || this.state !== 'open') return this.reject(ns, SRT_REJX_DOWN);
      const peer = peerPtr === null ? undefined : decodeSockaddr(this.lib.readSockaddr(peerPtr));
      handshake = { peer: peer ?? { address: '', port: 0, family: 4 }, streamId: streamId ?? '' };
      if (!peer) return this.rejectLater(listener, handshake, ns, SRT_REJX_FALLBACK);
      const decision: SrtAcceptDecision = listener.options.onHandshake ? listener.options.onHandshake(handshake) : { accept: true };
      if (!decision.accept) return this.rejectLater(listener, handshake, ns, rejectCode(decision.reason));
      if (decision.passphrase !== undefined || decision.pbkeylen !== undefined || decision.latencyMs !== undefined) {
        if (decision.latencyMs !== undefined) checkLatency(decision.latencyMs);
        checkSecret(decision.passphrase, decision.pbkeylen);
        // Set on the new socket before libsrt reads the Key Material: a caller with another passphrase is then refused by libsrt.
        if (decision.passphrase !== undefined) this.setString(ns, SRTO.PASSPHRASE, decision.passphrase, 'SRTO_PASSPHRASE');
        if (decision.pbkeylen) this.setInt(ns, SRTO.PBKEYLEN, decision.pbkeylen, 'SRTO_PBKEYLEN');
        if (decision.latencyMs !== undefined) this.setInt(ns, SRTO.LATENCY, decision.latencyMs, 'SRTO_LATENCY');
      }
      return 0;
    } catch (err) {
      this.log.error({ err, streamId: redactStreamId(streamId ?? ''), peer: handshake?.peer }, 'SRT handshake callback failed; caller rejected');
      if (listener && handshake) return this.rejectLater(listener, handshake, ns, SRT_REJX_ISE);
      return this.reject(ns, SRT_REJX_ISE);
    }
  }

  private reject(ns: number, reason: number): number {
    try {
      this.lib.srt_setrejectreason(ns, reason);
    } catch {
      // Nothing to add: -1 rejects regardless of the reason.
    }
    return -1;
  }

  private rejectLater(listener: Listener, handshake: SrtHandshake, ns: number, reason: number): number {
    const onRejected = listener.options.onRejected;
    if (onRejected) {
      // Not here: the receiver thread is waiting for our answer.
      setImmediate(() => {
        try {
          onRejected(handshake, reason);
        } catch (err) {
          this.log.error({ err }, 'SRT onRejected handler threw');
        }
      });
    }
    return this.reject(ns, reason);
  }

  /** One accept per epoll event (pitfall 7): a second pending caller keeps IN set for the next wake. */
  private acceptOne(listener: Listener): void {
    const { lib } = this;
    const addr = Buffer.alloc(SOCKADDR_IN6_SIZE);
    const len = new Int32Array([addr.length]);
    const sock = lib.srt_accept(listener.socket, addr, len);
    if (sock < 0) {
      const errno = lib.srt_getlasterror(null);
      if (errno !== SRT_EASYNCRCV) this.log.warn({ port: listener.port, error: srtErrorName(errno), detail: lib.srt_getlasterror_str() }, 'SRT accept failed');
      return;
    }
    const peer = decodeSockaddr(addr) ?? { address: '', port: 0, family: 4 as const };
    let streamId = '';
    try {
      streamId = this.getString(sock, SRTO.STREAMID, SRT_STREAMID_MAX);
      // Inherited from the listener already; explicit so that no call on this socket can block.
      this.setInt(sock, SRTO.RCVSYN, 0, 'SRTO_RCVSYN');
      this.setInt(sock, SRTO.SNDSYN, 0, 'SRTO_SNDSYN');
      if (lib.srt_epoll_add_usock(this.eid, sock, new Int32Array([SRT_EPOLL_IN | SRT_EPOLL_ERR])) < 0) throw lastError(lib, 'srt_epoll_add_usock');
    } catch (err) {
      this.log.warn({ err, peer }, 'SRT accepted socket could not be set up');
      lib.srt_close(sock);
      return;
    }
    const conn = new SrtConnection(this.host, 'accepted', peer, streamId);
    conn.socket = sock;
    conn.watched = true;
    this.connections.add(conn);
    this.sockets.set(sock, conn);
    try {
      listener.options.onConnection(conn);
    } catch (err) {
      this.log.error({ err, peer, streamId: redactStreamId(streamId) }, 'SRT onConnection handler threw; connection closed');
      this.closeConnection(conn, new SrtError('SRT_HANDLER_FAILED', `onConnection threw: ${(err as Error).message}`, -1));
    }
  }

  /**
   * Off the main thread, on purpose: srt_close on a listener takes the lock that libsrt's
   * receiver thread holds while it waits for our handshake callback on the main thread. A
   * synchronous close racing a handshake would deadlock the process (native/libsrt.md).
   */
  /** @internal SrtListener.close() */
  closeListener(listener: Listener): Promise<void> {
    if (listener.closing) return listener.closing;
    listener.state = 'closing';
    this.lib.srt_epoll_remove_usock(this.eid, listener.socket);
    this.sockets.delete(listener.socket);
    listener.closing = new Promise<void>((resolve) => {
      this.lib.srt_close.async(listener.socket, () => {
        // The hook was reachable until now; handshakes in between were refused (state 'closing').
        listener.state = 'closed';
        this.listeners.delete(listener.socket);
        this.log.debug({ host: listener.host, port: listener.port }, 'SRT listener closed');
        resolve();
      });
    });
    return listener.closing;
  }

  // ---------------------------------------------------------------- call

  /**
   * Connects without blocking: the socket is non-blocking (SRTO_RCVSYN/SNDSYN 0) and the
   * epoll loop reports the outcome: 'connected', or 'closed' with an SrtError (rejected,
   * with the peer's reason in rejectReason; timed out; host not found).
   */
  call(options: SrtCallOptions): SrtConnection {
    this.assertOpen();
    checkLatency(options.latencyMs);
    checkSecret(options.passphrase, options.pbkeylen);
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw invalid(`invalid SRT port ${options.port}`);
    if (!(options.connectTimeoutMs > 0)) throw invalid('connectTimeoutMs must be positive');
    const streamId = options.streamId ?? '';
    if (Buffer.byteLength(streamId) > SRT_STREAMID_MAX) throw invalid('SRT stream id longer than 512 bytes');

    const family = isIP(options.host);
    const conn = new SrtConnection(this.host, 'caller', { address: options.host, port: options.port, family: family === 6 ? 6 : 4 }, streamId);
    this.connections.add(conn);
    const limit = options.connectTimeoutMs + CONNECT_GRACE_MS;
    this.connectTimers.set(
      conn,
      setTimeout(() => {
        const where = formatHostPort(conn.peer.address, conn.peer.port);
        this.closeConnection(conn, new SrtError('SRT_ENOSERVER', `SRT connection to ${where} timed out after ${options.connectTimeoutMs} ms`, SRT_ENOSERVER));
      }, limit),
    );
    if (family !== 0) {
      // Started on the next tick so that the caller has attached its listeners to 'closed'.
      process.nextTick(() => this.startCall(conn, options, options.host, family === 6 ? 6 : 4));
    } else {
      lookup(options.host, (err, address, resolvedFamily) => {
        if (conn.state === 'closed') return;
        if (err) {
          this.closeConnection(conn, new SrtError('SRT_ENOSERVER', `SRT host ${options.host} could not be resolved: ${err.code ?? err.message}`, SRT_ENOSERVER));
          return;
        }
        this.startCall(conn, options, address, resolvedFamily === 6 ? 6 : 4);
      });
    }
    return conn;
  }

  private startCall(conn: SrtConnection, options: SrtCallOptions, address: string, family: 4 | 6): void {
    if (conn.state !== 'connecting' || this.state !== 'open') return;
    const { lib } = this;
    conn.setPeer({ address, port: options.port, family });
    try {
      const name = encodeSockaddr(address, options.port);
      const sock = lib.srt_create_socket();
      if (sock < 0) throw lastError(lib, 'srt_create_socket');
      conn.socket = sock;
      this.sockets.set(sock, conn);
      this.configure(sock, options);
      if (conn.streamId !== '') this.setString(sock, SRTO.STREAMID, conn.streamId, 'SRTO_STREAMID');
      this.setInt(sock, SRTO.CONNTIMEO, Math.round(options.connectTimeoutMs), 'SRTO_CONNTIMEO');
      this.bindToCallerPort(sock, family);
      if (lib.srt_epoll_add_usock(this.eid, sock, new Int32Array([SRT_EPOLL_OUT | SRT_EPOLL_ERR])) < 0) throw lastError(lib, 'srt_epoll_add_usock');
      conn.watched = true;
      if (lib.srt_connect(sock, name, name.length) < 0) throw lastError(lib, `SRT connect to ${formatHostPort(address, options.port)}`);
      this.arm();
    } catch (err) {
      this.closeConnection(conn, err instanceof SrtError ? err : new SrtError('SRT_EINVPARAM', (err as Error).message, SRT_EINVPARAM));
    }
  }

  /**
   * Binds a caller to the UDP port all callers of its address family share. A caller left
   * unbound gets a port of its own, and with it a libsrt multiplexer and two threads; when
   * it closes, libsrt's collector joins those threads holding the library's global lock,
   * and every libsrt call on the main thread waits: with 20 outputs retrying dead
   * destinations, the event loop stalled 100-150 ms every second or two. Sharing one port
   * (and multiplexer) creates those threads once; an idle bound socket keeps them for the
   * runtime's life. Should the shared bind fail, the caller goes on unbound, as before.
   */
  private bindToCallerPort(sock: number, family: 4 | 6): void {
    const anchor = this.callerAnchors.get(family) ?? this.bindCallerAnchor(family);
    if (!anchor) return;
    const name = encodeSockaddr(family === 6 ? '::' : '0.0.0.0', anchor.port);
    if (this.lib.srt_bind(sock, name, name.length) < 0) {
      this.log.debug({ err: lastError(this.lib, 'srt_bind').message, port: anchor.port }, 'SRT caller could not share the caller port; it binds one of its own');
    }
  }

  /** The idle socket that holds the callers' shared port, bound to any free port; undefined if that fails. */
  private bindCallerAnchor(family: 4 | 6): { socket: number; port: number } | undefined {
    const socket = this.lib.srt_create_socket();
    if (socket < 0) return undefined;
    const name = encodeSockaddr(family === 6 ? '::' : '0.0.0.0', 0);
    try {
      this.configure(socket, { latencyMs: 120 });
      if (this.lib.srt_bind(socket, name, name.length) < 0) throw lastError(this.lib, 'srt_bind');
      const anchor = { socket, port: this.boundPort(socket) };
      this.callerAnchors.set(family, anchor);
      return anchor;
    } catch (err) {
      this.lib.srt_close(socket);
      this.log.debug({ err: (err as Error).message }, 'no shared SRT caller port; callers bind ports of their own');
      return undefined;
    }
  }

  /** The caller's socket reported OUT (connected) or ERR (failed) while connecting. */
  private onConnectProgress(conn: SrtConnection, events: number): void {
    const { lib } = this;
    const sock = conn.socket;
    const where = formatHostPort(conn.peer.address, conn.peer.port);
    const failed = (events & SRT_EPOLL_ERR) !== 0 || ((events & SRT_EPOLL_OUT) !== 0 && lib.srt_getsockstate(sock) !== SRTS.CONNECTED);
    if (failed) {
      // The state stays SRTS_CONNECTING on a late failure; the reject reason tells why.
      const reason = lib.srt_getrejectreason(sock);
      this.closeConnection(conn, connectError(reason, lib.srt_rejectreason_str(reason), where));
      return;
    }
    if ((events & SRT_EPOLL_OUT) === 0) return;
    if (lib.srt_epoll_update_usock(this.eid, sock, new Int32Array([SRT_EPOLL_IN | SRT_EPOLL_ERR])) < 0) {
      this.closeConnection(conn, lastError(lib, 'srt_epoll_update_usock'));
      return;
    }
    this.clearConnectTimer(conn);
    if (!conn.markConnected()) return;
    this.log.debug({ peer: conn.peer, streamId: redactStreamId(conn.streamId) }, 'SRT caller connected');
    this.emitSafely(conn, () => conn.emit('connected'));
    if (conn.state === 'connected' && (events & SRT_EPOLL_IN) !== 0) this.drain(conn);
  }

  // ---------------------------------------------------------------- epoll loop

  /** Keeps exactly one srt_epoll_uwait in flight while the runtime is open and has sockets (pitfall 2). */
  private arm(): void {
    if (this.inflight || this.retryTimer || this.state !== 'open' || this.sockets.size === 0) return;
    this.inflight = new Promise<void>((resolve) => {
      this.lib.srt_epoll_uwait.async(this.eid, this.events, MAX_EVENTS, WAIT_MS, (err, n) => {
        this.inflight = undefined;
        resolve();
        if (this.state !== 'open') return;
        if (err || n < 0) {
          // The worker thread's srt_getlasterror is not ours to read (pitfall 3).
          this.waitErrors += 1;
          if (this.waitErrors === 1 || this.waitErrors % 100 === 0) this.log.warn({ err, waitErrors: this.waitErrors }, 'srt_epoll_uwait failed; retrying');
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.arm();
          }, WAIT_RETRY_MS);
          return;
        }
        this.wakes += 1;
        this.dispatch(Math.min(n, MAX_EVENTS));
        this.arm();
      });
    });
  }

  private dispatch(count: number): void {
    // Copy out first: handlers may close sockets (and in theory re-arm) while we iterate.
    const ready: Array<[number, number]> = [];
    for (let i = 0; i < count; i++) ready.push([this.events.readInt32LE(i * EPOLL_EVENT_SIZE), this.events.readInt32LE(i * EPOLL_EVENT_SIZE + 4)]);
    for (const [sock, events] of ready) {
      if (this.state !== 'open') return;
      const owner = this.sockets.get(sock);
      if (!owner) continue; // closed earlier in this batch
      try {
        if (owner instanceof Listener) {
          if ((events & SRT_EPOLL_IN) !== 0) this.acceptOne(owner);
        } else if (owner.state === 'connecting') {
          this.onConnectProgress(owner, events);
        } else {
          if ((events & SRT_EPOLL_IN) !== 0) this.drain(owner);
          if ((events & SRT_EPOLL_ERR) !== 0 && owner.state === 'connected') this.onSocketError(owner);
        }
      } catch (err) {
        this.log.error({ err }, 'SRT event handling failed');
      }
    }
  }

  /** Non-blocking srt_recvmsg until "again" (6002), a bounded number of times per wake. */
  private drain(conn: SrtConnection): void {
    const { lib } = this;
    const sock = conn.socket;
    for (let i = 0; i < MAX_DRAIN; i++) {
      if (this.slab.length - this.slabOffset < RECV_MAX) {
        this.slab = Buffer.alloc(SLAB_SIZE);
        this.slabOffset = 0;
      }
      const start = this.slabOffset;
      const n = lib.srt_recvmsg(sock, this.slab.subarray(start, start + RECV_MAX), RECV_MAX);
      if (n > 0) {
        // 8-byte aligned so that consumers may view the chunk as wider typed arrays.
        this.slabOffset = start + ((n + 7) & ~7);
        conn.counters.messagesReceived += 1;
        conn.counters.bytesReceived += n;
        const chunk = this.slab.subarray(start, start + n);
        this.emitSafely(conn, () => conn.emit('data', chunk));
        if (conn.state !== 'connected') return;
        continue;
      }
      if (n === 0) return;
      const errno = lib.srt_getlasterror(null);
      if (errno === SRT_EASYNCRCV) return;
      const text = lib.srt_getlasterror_str();
      this.closeConnection(conn, new SrtError(srtErrorName(errno), `SRT connection with ${formatHostPort(conn.peer.address, conn.peer.port)} ended: ${text}`, errno));
      return;
    }
  }

  private onSocketError(conn: SrtConnection): void {
    const state = this.lib.srt_getsockstate(conn.socket);
    const where = formatHostPort(conn.peer.address, conn.peer.port);
    const message = state === SRTS.CONNECTED ? `SRT connection with ${where} reported an error` : `SRT connection with ${where} was closed by the peer or lost`;
    this.closeConnection(conn, new SrtError('SRT_ECONNLOST', message, SRT_ECONNLOST));
  }

  private emitSafely(conn: SrtConnection, emit: () => void): void {
    try {
      emit();
    } catch (err) {
      this.log.error({ err, peer: conn.peer, streamId: redactStreamId(conn.streamId) }, 'SRT connection event handler threw');
    }
  }

  // ---------------------------------------------------------------- per connection

  private send(conn: SrtConnection, chunk: Buffer): boolean {
    if (conn.state !== 'connected') return false;
    if (chunk.length === 0) return true;
    if (chunk.length > SRT_LIVE_DEF_PLSIZE) {
      throw new SrtError('SRT_ELARGEMSG', `SRT live messages are at most ${SRT_LIVE_DEF_PLSIZE} bytes, got ${chunk.length}`, SRT_ELARGEMSG);
    }
    const { lib } = this;
    if (lib.srt_sendmsg2(conn.socket, chunk, chunk.length, null) >= 0) {
      conn.counters.messagesSent += 1;
      conn.counters.bytesSent += chunk.length;
      return true;
    }
    conn.counters.sendDrops += 1;
    const errno = lib.srt_getlasterror(null);
    if (errno !== SRT_EASYNCSND && errno !== SRT_ECONGEST && conn.counters.sendDrops === 1) {
      // A broken connection: the epoll loop reports it (ERR) and closes it.
      this.log.debug({ peer: conn.peer, error: srtErrorName(errno) }, 'SRT send failed');
    }
    return false;
  }

  private closeConnection(conn: SrtConnection, error: SrtError | undefined): void {
    if (conn.state === 'closed') return;
    this.clearConnectTimer(conn);
    const sock = conn.socket;
    if (sock >= 0) {
      // A last reading while libsrt still has the socket (fails, keeping the previous one, once broken).
      if (conn.state === 'connected') this.readStats(conn);
      this.sockets.delete(sock);
      if (conn.watched) this.lib.srt_epoll_remove_usock(this.eid, sock);
      this.lib.srt_close(sock);
    }
    this.connections.delete(conn);
    if (!conn.markClosed()) return;
    if (error) this.log.debug({ peer: conn.peer, streamId: redactStreamId(conn.streamId), code: error.code, reason: error.rejectReason }, error.message);
    this.emitSafely(conn, () => conn.emit('closed', error));
  }

  private clearConnectTimer(conn: SrtConnection): void {
    const timer = this.connectTimers.get(conn);
    if (timer) {
      clearTimeout(timer);
      this.connectTimers.delete(conn);
    }
  }

  private readStats(conn: SrtConnection): SrtStats {
    const ours = {
      sendDrops: conn.counters.sendDrops,
      messagesReceived: conn.counters.messagesReceived,
      bytesReceived: conn.counters.bytesReceived,
    };
    if (conn.state !== 'connected' || conn.socket < 0) {
      return { ...(conn.lastStats ?? emptyStats()), ...ours };
    }
    const p = this.perf;
    if (this.lib.srt_bstats(conn.socket, p, 0) < 0) return { ...(conn.lastStats ?? emptyStats()), ...ours };
    const int = (f: { offset: number }) => p.readInt32LE(f.offset);
    const u64 = (f: { offset: number }) => Number(p.readBigUInt64LE(f.offset));
    const dbl = (f: { offset: number }) => p.readDoubleLE(f.offset);
    conn.lastStats = {
      msRTT: dbl(PERFMON.msRTT),
      mbpsRecvRate: dbl(PERFMON.mbpsRecvRate),
      mbpsSendRate: dbl(PERFMON.mbpsSendRate),
      pktRcvLossTotal: int(PERFMON.pktRcvLossTotal),
      pktSndLossTotal: int(PERFMON.pktSndLossTotal),
      pktRetransTotal: int(PERFMON.pktRetransTotal),
      pktRcvRetrans: int(PERFMON.pktRcvRetrans),
      pktRcvDropTotal: int(PERFMON.pktRcvDropTotal),
      pktSndDropTotal: int(PERFMON.pktSndDropTotal),
      byteRecvTotal: u64(PERFMON.byteRecvTotal),
      byteSentTotal: u64(PERFMON.byteSentTotal),
      msRcvBuf: int(PERFMON.msRcvBuf),
      rcvLatencyMs: this.getInt(conn.socket, SRTO.RCVLATENCY) ?? 0,
      peerLatencyMs: this.getInt(conn.socket, SRTO.PEERLATENCY) ?? 0,
      ...ours,
    };
    return conn.lastStats;
  }

  // ---------------------------------------------------------------- close

  /**
   * Idempotent. Refuses new handshakes, closes every listener (off the main thread, see
   * closeListener) and connection ('closed' without error), waits for the in-flight
   * srt_epoll_uwait (at most WAIT_MS), releases the epoll container, then srt_cleanup.
   * Afterwards nothing of ours keeps the process alive.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    const listenersClosed = [...this.listeners.values()].map((l) => this.closeListener(l));
    for (const conn of [...this.connections]) this.closeConnection(conn, undefined);
    for (const { socket } of this.callerAnchors.values()) this.lib.srt_close(socket);
    this.callerAnchors.clear();
    await Promise.all(listenersClosed);
    await this.inflight;
    this.lib.srt_epoll_release(this.eid);
    // Off the main thread as well: it joins libsrt's garbage collector thread.
    await new Promise<void>((resolve) => this.lib.srt_cleanup.async(() => resolve()));
    this.lib.unregisterHook(this.hook);
    this.state = 'closed';
    this.log.debug('SRT runtime closed');
  }

  private assertOpen(): void {
    if (this.state !== 'open') throw new SrtError('SRT_CLOSED', 'the SRT runtime is closed', -1);
  }

  // ---------------------------------------------------------------- options

  /** Live mode and non-blocking; latency and encryption as given. TRANSTYPE first: it resets other options to its defaults. */
  private configure(sock: number, o: { latencyMs: number; passphrase?: string | undefined; pbkeylen?: PbKeyLen | undefined }): void {
    this.setInt(sock, SRTO.TRANSTYPE, SRTT_LIVE, 'SRTO_TRANSTYPE');
    this.setInt(sock, SRTO.RCVSYN, 0, 'SRTO_RCVSYN');
    this.setInt(sock, SRTO.SNDSYN, 0, 'SRTO_SNDSYN');
    this.setInt(sock, SRTO.PAYLOADSIZE, SRT_LIVE_DEF_PLSIZE, 'SRTO_PAYLOADSIZE');
    this.setInt(sock, SRTO.MESSAGEAPI, 1, 'SRTO_MESSAGEAPI');
    this.setInt(sock, SRTO.LATENCY, Math.round(o.latencyMs), 'SRTO_LATENCY');
    if (o.passphrase !== undefined && o.passphrase !== '') this.setString(sock, SRTO.PASSPHRASE, o.passphrase, 'SRTO_PASSPHRASE');
    if (o.pbkeylen) this.setInt(sock, SRTO.PBKEYLEN, o.pbkeylen, 'SRTO_PBKEYLEN');
  }

  private setInt(sock: number, opt: number, value: number, name: string): void {
    const v = Buffer.alloc(4);
    v.writeInt32LE(value);
    if (this.lib.srt_setsockflag(sock, opt, v, 4) < 0) throw lastError(this.lib, `setting ${name}`);
  }

  private setString(sock: number, opt: number, value: string, name: string): void {
    const v = Buffer.from(value);
    if (this.lib.srt_setsockflag(sock, opt, v, v.length) < 0) throw lastError(this.lib, `setting ${name}`);
  }

  private getInt(sock: number, opt: number): number | undefined {
    const v = Buffer.alloc(4);
    const len = new Int32Array([4]);
    return this.lib.srt_getsockflag(sock, opt, v, len) < 0 ? undefined : v.readInt32LE(0);
  }

  private getString(sock: number, opt: number, max: number): string {
    const v = Buffer.alloc(max + 1);
    const len = new Int32Array([v.length]);
    if (this.lib.srt_getsockflag(sock, opt, v, len) < 0) throw lastError(this.lib, 'srt_getsockflag');
    return v.toString('utf8', 0, Math.max(0, Math.min(len[0]!, max)));
  }
}

function invalid(message: string): SrtError {
  return new SrtError('SRT_EINVPARAM', message, SRT_EINVPARAM);
}

function checkLatency(ms: number): void {
  if (!Number.isFinite(ms) || ms < 0 || ms > 60_000) throw invalid(`SRT latency must be 0..60000 ms, got ${ms}`);
}

/** libsrt: a passphrase is 10..79 bytes ('' = none); key length 16, 24 or 32 bytes (0 = default). */
function checkSecret(passphrase: string | undefined, pbkeylen: number | undefined): void {
  const bytes = Buffer.byteLength(passphrase ?? '');
  if (bytes > 0 && (bytes < 10 || bytes > 79)) throw invalid(`SRT passphrase must be 10 to 79 bytes (got ${bytes})`);
  if (pbkeylen !== undefined && ![0, 16, 24, 32].includes(pbkeylen)) throw invalid(`SRT pbkeylen must be 0, 16, 24 or 32 (got ${pbkeylen})`);
}

/** srt_setrejectreason takes only codes >= SRT_REJC_PREDEFINED (1000). */
function rejectCode(reason: number): number {
  return Number.isInteger(reason) && reason >= SRT_REJC_PREDEFINED && reason < 10_000 ? reason : SRT_REJX_FALLBACK;
}

/**
 * What the standard application rejection codes mean (srt.h's SRT_REJX_*, which follow
 * HTTP's): libsrt's text for all of them is "Application-defined rejection reason". Our
 * own shared port answers with these.
 */
const REJECTION_MEANINGS: Record<number, string> = {
  [SrtReject.BadRequest]: 'bad request: the stream id is not understood',
  [SrtReject.Unauthorized]: 'unauthorized: a wrong or missing key',
  [SrtReject.Overload]: 'overloaded: too many connections',
  [SrtReject.Forbidden]: 'forbidden: not allowed from this address or for this mode',
  [SrtReject.NotFound]: 'not found: no such stream',
  [SrtReject.Conflict]: 'conflict: the stream is already being published',
  [SrtReject.Unavailable]: 'unavailable: the service is down or stopping',
};

function connectError(reason: number, text: string, where: string): SrtError {
  if (reason === SRT_REJ_TIMEOUT) return new SrtError('SRT_ENOSERVER', `SRT connection to ${where} timed out (${text})`, SRT_ENOSERVER, reason);
  if (reason >= SRT_REJC_PREDEFINED) {
    const meaning = REJECTION_MEANINGS[reason];
    return new SrtError('SRT_ECONNREJ', `SRT connection to ${where} rejected by the listener: ${reason} (${meaning ?? text})`, SRT_ECONNREJ, reason);
  }
  if (reason === SRT_REJ_BADSECRET || reason === SRT_REJ_UNSECURE) {
    return new SrtError('SRT_ECONNREJ', `SRT connection to ${where} rejected: ${text} (check the passphrase)`, SRT_ECONNREJ, reason);
  }
  return new SrtError('SRT_ECONNREJ', `SRT connection to ${where} failed: ${text} (reason ${reason})`, SRT_ECONNREJ, reason);
}

function formatHostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

function emptyStats(): SrtStats {
  return {
    msRTT: 0,
    mbpsRecvRate: 0,
    mbpsSendRate: 0,
    pktRcvLossTotal: 0,
    pktSndLossTotal: 0,
    pktRetransTotal: 0,
    pktRcvRetrans: 0,
    pktRcvDropTotal: 0,
    pktSndDropTotal: 0,
    byteRecvTotal: 0,
    byteSentTotal: 0,
    msRcvBuf: 0,
    rcvLatencyMs: 0,
    peerLatencyMs: 0,
    sendDrops: 0,
    messagesReceived: 0,
    bytesReceived: 0,
  };
}

