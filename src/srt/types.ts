import type { SrtConnection } from './connection.js';

/**
 * The SRT transport's public shapes. Protocol-agnostic: one SRT message (live mode, at
 * most 1316 bytes by default) in, one out; what rides on it (MPEG-TS) is not our concern.
 */

export interface SrtPeer {
  /** IPv4 dotted quad or RFC 5952 IPv6 text; an IPv4-mapped IPv6 peer is shown as IPv4. */
  address: string;
  port: number;
  family: 4 | 6;
}

export interface SrtHandshake {
  peer: SrtPeer;
  /** SRTO_STREAMID as the caller set it; '' when none (or handshake v4). */
  streamId: string;
}

export type PbKeyLen = 0 | 16 | 24 | 32;

export type SrtAcceptDecision =
  | { accept: true; passphrase?: string; pbkeylen?: PbKeyLen; latencyMs?: number }
  | { accept: false; reason: number };

/**
 * Reject codes for SrtAcceptDecision: SRT_REJX_* from srt/access_control.h (1000 + an
 * HTTP-like status, see native/libsrt.md). The caller sees them via srt_getrejectreason;
 * ffmpeg and srt-live-transmit print them.
 */
export const SrtReject = {
  BadRequest: 1400, // SRT_REJX_BAD_REQUEST
  Unauthorized: 1401, // SRT_REJX_UNAUTHORIZED
  /** SRT_REJX_OVERLOAD is 1402 in srt.h 1.5 (not 1000 + HTTP 503). */
  Overload: 1402, // SRT_REJX_OVERLOAD
  Forbidden: 1403, // SRT_REJX_FORBIDDEN
  NotFound: 1404, // SRT_REJX_NOTFOUND
  Conflict: 1409, // SRT_REJX_CONFLICT
  /** Service down / shutting down. */
  Unavailable: 1503, // SRT_REJX_DOWN
} as const;

export interface SrtListenOptions {
  /** An IP literal: '0.0.0.0', '::' (dual stack), '127.0.0.1', ... */
  host: string;
  /** 0 picks a free port; SrtListener.port tells which. */
  port: number;
  latencyMs: number;
  /** Listener-wide default; 10..79 bytes. */
  passphrase?: string;
  pbkeylen?: PbKeyLen;
  /**
   * Runs inside libsrt's listen callback, during the handshake, BEFORE accept, on the JS
   * main thread while libsrt's receiver thread for this port waits: keep it fast and
   * synchronous. An exception rejects the caller (never accepts). passphrase / pbkeylen /
   * latencyMs returned here apply to this connection only.
   */
  onHandshake?(h: SrtHandshake): SrtAcceptDecision;
  /** A caller passed the handshake (and libsrt's own checks, e.g. the passphrase). */
  onConnection(conn: SrtConnection): void;
  /**
   * onHandshake rejected (or threw); called later, outside the handshake, with the same
   * `h` object onHandshake got (when it was called). Refusals by
   * libsrt itself after an accept (wrong passphrase, encryption mismatch) are not
   * reported: libsrt does not tell the listener (it logs them on stderr).
   */
  onRejected?(h: SrtHandshake, reason: number): void;
}

export interface SrtCallOptions {
  /** IP literal or host name (resolved with dns.lookup). */
  host: string;
  port: number;
  streamId?: string;
  passphrase?: string;
  pbkeylen?: PbKeyLen;
  latencyMs: number;
  connectTimeoutMs: number;
}

export interface SrtListener {
  readonly host: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /**
   * Stops accepting; connections already accepted stay open. Resolves when libsrt has
   * released the port (the close runs off the main thread, see native/libsrt.md).
   */
  close(): Promise<void>;
}

export interface SrtStats {
  msRTT: number;
  mbpsRecvRate: number;
  mbpsSendRate: number;
  pktRcvLossTotal: number;
  pktSndLossTotal: number;
  /** Packets this side sent again. */
  pktRetransTotal: number;
  /** Packets this side received again (the sender's retransmits that arrived). */
  pktRcvRetrans: number;
  pktRcvDropTotal: number;
  pktSndDropTotal: number;
  byteRecvTotal: number;
  byteSentTotal: number;
  msRcvBuf: number;
  /** Negotiated: SRTO_RCVLATENCY / SRTO_PEERLATENCY after the handshake. */
  rcvLatencyMs: number;
  peerLatencyMs: number;
  /** Ours, not libsrt's: messages send() refused because the send buffer was full. */
  sendDrops: number;
  /** Ours: messages and bytes delivered through 'data'. */
  messagesReceived: number;
  bytesReceived: number;
}
