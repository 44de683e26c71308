import type { Logger } from 'pino';
import { FlowrelayError } from '../../lib/errors.js';

/** Where an RTMP client connects: parsed from `rtmp(s)://host[:port]/app[/instance]/key`. */
export interface RtmpTarget {
  secure: boolean;
  host: string;
  port: number;
  /** Everything between the host and the stream name, e.g. `live2` or `app/instance`. */
  app: string;
  /** `rtmp(s)://host[:port]/app`, as encoders send it in `connect`. */
  tcUrl: string;
  /** The stream key / play path, query string included (some services put tokens there). */
  streamName: string;
}

export interface RtmpClientTls {
  /** Extra trusted CA certificates (PEM); the system store is used as well. */
  ca?: Buffer;
  /** false only when the operator explicitly turned verification off. */
  rejectUnauthorized: boolean;
}

export interface RtmpClientOptions {
  target: RtmpTarget;
  mode: 'publish' | 'play';
  /** Used when target.secure. */
  tls?: RtmpClientTls;
  /** TCP connect plus TLS handshake. */
  connectTimeoutMs: number;
  /** From TCP connect until the server accepted publish (NetStream.Publish.Start) or play (NetStream.Play.Start). */
  handshakeTimeoutMs: number;
  /** Chunk size we announce and send with. */
  chunkSize: number;
  /** Largest message accepted from the server. */
  maxMessageSize: number;
  logger: Logger;
}

export type RtmpClientErrorCode =
  | 'CONNECT_TIMEOUT'
  | 'CONNECT_FAILED'
  | 'TLS_FAILED'
  | 'HANDSHAKE_TIMEOUT'
  | 'REJECTED'
  | 'PROTOCOL_ERROR'
  | 'CLOSED_BY_PEER'
  | 'SOCKET_ERROR';

/** Why a client connection ended; `message` is safe to show (no keys). */
export class RtmpClientError extends FlowrelayError {
  constructor(
    override readonly code: RtmpClientErrorCode,
    message: string,
  ) {
    super(code, message);
    this.name = 'RtmpClientError';
  }
}

export interface RtmpClientEvents {
  /** Publish accepted (publish mode) or play started (play mode). */
  ready(): void;
  /** Play mode: audio/video from the server; timestamps unwrapped (monotonic numbers). */
  media(kind: 'audio' | 'video', timestamp: number, payload: Buffer): void;
  /** Play mode: an onMetaData body (without any @setDataFrame). */
  metadata(timestamp: number, payload: Buffer): void;
  /** Play mode: other data messages. */
  data(timestamp: number, payload: Buffer): void;
  /** Play mode: the upstream stopped publishing (UnpublishNotify, Play.Stop, StreamEOF) while the connection stays up. */
  streamEnd(reason: string): void;
  /** Exactly once, after which nothing else is emitted; undefined when closed by us. */
  closed(error: RtmpClientError | undefined): void;
}
