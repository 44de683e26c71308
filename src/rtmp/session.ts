import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { HubSourceOwner, SourceHandle, StreamHub } from '../core/stream-hub.js';
import { IDLE_TIMEOUT_REASON } from '../core/input-status.js';
import { ProtocolError } from '../lib/errors.js';
import type { AmfValue } from '../protocol/amf/amf0.js';
import { ChunkDecoder, type RtmpMessage } from '../protocol/rtmp/chunk-decoder.js';
import { decodeAmf3Command, decodeCommand, decodeDataMessage, stripSetDataFrame, type RtmpCommand } from '../protocol/rtmp/command.js';
import { acknowledgement, parseUserControl, pingResponse, setChunkSize, setPeerBandwidth, streamBegin, streamIsRecorded, windowAckSize } from '../protocol/rtmp/control.js';
import { ServerHandshake } from '../protocol/rtmp/handshake.js';
import { MessageType } from '../protocol/rtmp/message-types.js';
import { splitAggregate } from '../protocol/rtmp/aggregate.js';
import type { RateLimitedLog } from '../telemetry/rate-limited-log.js';
import type { WriteMerger } from './write-merger.js';
import { RtmpPlayer } from './player.js';
import { CONNECT_PROPERTIES, dataMessage, onStatus, resultMessage } from './replies.js';
import { PLAY_STREAM_ID, type WireCache } from './wire-cache.js';
import { TimestampUnwrapper } from './timestamp-unwrapper.js';

/** Routes a publish or play request to a flow; the decision happens before we accept. */
export interface RtmpRouter {
  publish(request: { app: string; streamKey: string; remoteAddress: string; owner: HubSourceOwner }):
    | { ok: true; flowId: string; inputName: string; source: SourceHandle }
    | { ok: false; reason: 'unknown_key' | 'unknown_input' | 'busy' | 'disabled' | 'forbidden'; message: string };
  play(request: { app: string; playbackKey: string; remoteAddress: string }):
    | { ok: true; flowId: string; hub: StreamHub }
    | { ok: false; reason: 'unknown_key' | 'disabled'; message: string };
}

export interface RtmpSessionOptions {
  chunkSize: number;
  maxMessageSize: number;
  /** Largest chunk size a peer may set. */
  maxChunkSize: number;
  /** Time allowed from TCP accept until publish or play has been accepted. */
  handshakeTimeoutMs: number;
  /** A publisher that sends no media for this long is disconnected. */
  idleTimeoutMs: number;
  /** Per-player bound on bytes queued in the socket before it skips to a keyframe. */
  playerMaxBacklogBytes: number;
}

export interface RtmpSessionDeps {
  router: RtmpRouter;
  wire: WireCache;
  logger: Logger;
  now: () => number;
  /** Refusals (wrong keys, forbidden addresses) are logged at a bounded rate, shared by all sessions. */
  refusalLog: RateLimitedLog;
  /** Present when rtmp.mergeWritesMs > 0: players' writes are merged on its tick. */
  merger?: WriteMerger;
}

/** What we ask peers to acknowledge, and the bandwidth we announce (FMS defaults). */
const WINDOW_ACK_SIZE = 5_000_000;
/**
 * Largest message accepted before a publisher is accepted: commands are small, and a
 * peer without a key must not make us buffer megabytes.
 */
const PRE_PUBLISH_MAX_MESSAGE = 64 * 1024;
/** Replies a peer does not read (beyond a player's media allowance) end the connection. */
const CONTROL_BACKLOG_BYTES = 256 * 1024;
/** The one message stream a connection gets (like nginx-rtmp): a session holds one role. */
const STREAM_ID = PLAY_STREAM_ID;
/** How much of the peer-chosen app name goes into logs (it may carry a mistyped key). */
const APP_LOG_CHARS = 64;
/** Wait this long for our last words (a refusal status) to flush before destroying. */
const CLOSE_FLUSH_MS = 2_000;

type Role =
  | { kind: 'none' }
  | { kind: 'publisher'; streamId: number; flowId: string; source: SourceHandle; lastMediaAt: number }
  | { kind: 'player'; streamId: number; flowId: string; player: RtmpPlayer; detach: () => void };

/**
 * One RTMP connection, server side: handshake, chunk stream, control messages, and the
 * NetConnection/NetStream commands encoders and players send. It publishes into or
 * plays from a flow's hub through the router. A protocol violation closes this
 * connection only.
 */
export class RtmpSession implements HubSourceOwner {
  private handshake: ServerHandshake | undefined = new ServerHandshake();
  private readonly decoder: ChunkDecoder;
  private role: Role = { kind: 'none' };
  private app = '';
  private bytesIn = 0;
  private lastAckAt = 0;
  private peerWindow = 0;
  private closed = false;
  private roleTimer: NodeJS.Timeout | undefined;
  private idleWatch: NodeJS.Timeout | undefined;
  private readonly unwrap = new TimestampUnwrapper();
  private logger: Logger;

  constructor(
    private readonly socket: Socket,
    private readonly options: RtmpSessionOptions,
    private readonly deps: RtmpSessionDeps,
    private readonly onClose: (session: RtmpSession) => void,
  ) {
    this.decoder = new ChunkDecoder({ maxMessageSize: Math.min(options.maxMessageSize, PRE_PUBLISH_MAX_MESSAGE), maxChunkSize: options.maxChunkSize });
    this.logger = deps.logger;
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? 'unknown';
  }

  start(): void {
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 10_000);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    this.socket.on('close', () => this.close('connection closed by peer'));
    this.armRoleTimer();
  }

  /** A connection must publish or play within the handshake timeout, also after it stopped doing so. */
  private armRoleTimer(): void {
    clearTimeout(this.roleTimer);
    this.roleTimer = setTimeout(() => {
      if (this.role.kind === 'none') this.fail('handshake_timeout', 'no publish or play within the handshake timeout');
    }, this.options.handshakeTimeoutMs);
    this.roleTimer.unref();
  }

  /** The hub asks the publisher to leave (flow removed or changed, daemon stopping). */
  kick(reason: string): void {
    if (this.role.kind === 'publisher') {
      this.send(onStatus(this.options.chunkSize, this.role.streamId, 'status', 'NetStream.Publish.Stop', 'Publishing stopped by the server.'));
    }
    this.close(reason, true);
  }

  /** Idempotent. `flush` lets queued bytes (a refusal status) reach the peer first. */
  close(reason: string, flush = false): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.roleTimer);
    this.endRole(reason);
    if (flush && !this.socket.destroyed) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), CLOSE_FLUSH_MS).unref();
    } else {
      this.socket.destroy();
    }
    this.logger.debug({ reason, bytesIn: this.bytesIn }, 'rtmp session closed');
    this.onClose(this);
  }

  /**
   * Closes the connection over `code`. A connection that never published or played
   * (scanners, malformed handshakes, floods) is logged through the refusal log, at most
   * once per 10 s per code: one client opening thousands must not flood the log. A
   * publisher's or player's end names its flow and is always logged.
   */
  private fail(code: string, message: string): void {
    if (this.role.kind === 'none') this.deps.refusalLog.warn(`session:${code}`, { code, app: this.app, remoteAddress: this.remoteAddress }, message);
    else this.logger.warn({ code, app: this.app }, message);
    this.close(code);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.bytesIn += chunk.length;
      if (this.handshake) {
        const progress = this.handshake.feed(chunk);
        if (progress.output) this.send(progress.output);
        if (!progress.done) return;
        this.logger.debug({ digest: this.handshake.digest }, 'rtmp handshake complete');
        this.handshake = undefined;
        if (progress.rest.length === 0) return;
        chunk = progress.rest;
      }
      this.decoder.feed(chunk, (message) => this.onMessage(message));
      this.maybeAcknowledge();
    } catch (err) {
      if (err instanceof ProtocolError) this.fail(err.code, err.message);
      else this.fail('internal_error', `unexpected error handling RTMP input: ${(err as Error).message}`);
    }
  }

  private maybeAcknowledge(): void {
    if (this.peerWindow > 0 && this.bytesIn - this.lastAckAt >= this.peerWindow) {
      this.lastAckAt = this.bytesIn;
      this.send(acknowledgement(this.bytesIn % 0x1_0000_0000));
    }
  }

  private onMessage(message: RtmpMessage): void {
    if (this.closed) return;
    switch (message.typeId) {
      case MessageType.Audio:
        return this.onMedia('audio', message);
      case MessageType.Video:
        return this.onMedia('video', message);
      case MessageType.Aggregate:
        for (const part of splitAggregate(message.payload, message.timestamp)) this.onMedia(part.kind, { ...message, ...part });
        return;
      case MessageType.DataAmf0:
        return this.onDataMessage(message);
      case MessageType.DataAmf3:
        return this.onDataMessage({ ...message, payload: message.payload.subarray(1) });
      case MessageType.CommandAmf0:
        return this.onCommand(decodeCommand(message.payload), message.streamId);
      case MessageType.CommandAmf3:
        return this.onCommand(decodeAmf3Command(message.payload), message.streamId);
      case MessageType.WindowAckSize:
        if (message.payload.length < 4) throw new ProtocolError('RTMP_BAD_CONTROL', 'Window Acknowledgement Size shorter than 4 bytes');
        this.peerWindow = message.payload.readUInt32BE(0);
        return;
      case MessageType.UserControl: {
        const event = parseUserControl(message.payload);
        if (event?.event === 'pingRequest') this.send(pingResponse(event.timestamp));
        return;
      }
      default:
        // Set Chunk Size and Abort are applied by the decoder; acknowledgements, peer
        // bandwidth and shared objects need no answer from a relay.
        return;
    }
  }

  private onMedia(kind: 'audio' | 'video', message: Pick<RtmpMessage, 'timestamp' | 'payload'>): void {
    if (this.role.kind !== 'publisher') return;
    this.role.lastMediaAt = this.deps.now();
    this.role.source.push(kind, this.unwrap.unwrap(message.timestamp), message.payload);
  }

  private onDataMessage(message: RtmpMessage): void {
    if (this.role.kind !== 'publisher') return;
    const payload = stripSetDataFrame(message.payload);
    const timestamp = this.unwrap.unwrap(message.timestamp);
    if (decodeDataMessage(payload).name === 'onMetaData') this.role.source.pushMetadata(timestamp, payload);
    else this.role.source.pushData(timestamp, payload);
  }

  private onCommand(command: RtmpCommand, streamId: number): void {
    const { chunkSize } = this.options;
    switch (command.name) {
      case 'connect':
        return this.onConnect(command);
      case 'createStream':
        this.send(resultMessage(chunkSize, command.transactionId, null, STREAM_ID));
        return;
      case 'releaseStream':
      case 'FCPublish':
      case 'FCUnpublish':
      case 'getStreamLength':
        // Encoders send these out of habit; a plain _result satisfies every client we know.
        if (command.name === 'FCUnpublish' && this.role.kind === 'publisher') this.endRole('FCUnpublish');
        if (command.transactionId !== 0) this.send(resultMessage(chunkSize, command.transactionId, null, command.name === 'getStreamLength' ? 0 : undefined));
        return;
      case 'publish':
        return this.onPublish(command, streamId);
      case 'play':
        return this.onPlay(command, streamId);
      case 'deleteStream':
        // deleteStream names the stream in its argument; closeStream is sent on the stream.
        if (command.args[0] === this.roleStreamId()) this.endRole(command.name);
        return;
      case 'closeStream':
        if (streamId === this.roleStreamId()) this.endRole(command.name);
        return;
      default:
        this.logger.debug({ command: command.name }, 'ignored RTMP command');
    }
  }

  private roleStreamId(): number | undefined {
    return this.role.kind === 'none' ? undefined : this.role.streamId;
  }

  private onConnect(command: RtmpCommand): void {
    const object = command.commandObject;
    const app = object && typeof object === 'object' && !Array.isArray(object) && !(object instanceof Date) ? object['app'] : undefined;
    // Only the first path segment, bounded: a mistyped URL can put the key into the app.
    this.app = typeof app === 'string' ? (app.split(/[/?]/)[0] ?? '').slice(0, APP_LOG_CHARS) : '';
    const { chunkSize } = this.options;
    this.send(windowAckSize(WINDOW_ACK_SIZE));
    this.send(setPeerBandwidth(WINDOW_ACK_SIZE, 2));
    this.send(setChunkSize(chunkSize));
    this.send(
      resultMessage(chunkSize, command.transactionId, CONNECT_PROPERTIES, {
        level: 'status',
        code: 'NetConnection.Connect.Success',
        description: 'Connection succeeded.',
        objectEncoding: 0,
      }),
    );
  }

  private onPublish(command: RtmpCommand, streamId: number): void {
    const { chunkSize } = this.options;
    if (this.role.kind !== 'none') {
      this.send(onStatus(chunkSize, streamId, 'error', 'NetStream.Publish.BadConnection', 'This connection is already publishing or playing.'));
      return;
    }
    const streamKey = streamNameOf(command.args[0]);
    const decision = this.deps.router.publish({ app: this.app, streamKey, remoteAddress: this.remoteAddress, owner: this });
    if (!decision.ok) {
      this.deps.refusalLog.warn(`publish:${decision.reason}`, { reason: decision.reason, app: this.app, remoteAddress: this.remoteAddress }, `publish refused: ${decision.message}`);
      this.send(onStatus(chunkSize, streamId, 'error', 'NetStream.Publish.BadName', decision.message));
      this.close(`publish refused: ${decision.reason}`, true);
      return;
    }
    this.logger = this.logger.child({ flowId: decision.flowId, inputName: decision.inputName });
    this.role = { kind: 'publisher', streamId, flowId: decision.flowId, source: decision.source, lastMediaAt: this.deps.now() };
    this.decoder.setMaxMessageSize(this.options.maxMessageSize);
    this.send(onStatus(chunkSize, streamId, 'status', 'NetStream.Publish.Start', 'Publishing started.'));
    this.watchIdlePublisher();
  }

  private watchIdlePublisher(): void {
    clearInterval(this.idleWatch);
    this.idleWatch = setInterval(() => {
      if (this.role.kind === 'publisher' && this.deps.now() - this.role.lastMediaAt >= this.options.idleTimeoutMs) {
        this.fail(IDLE_TIMEOUT_REASON, `publisher sent no media for ${this.options.idleTimeoutMs} ms`);
      }
    }, Math.min(1_000, this.options.idleTimeoutMs));
    this.idleWatch.unref();
  }

  private onPlay(command: RtmpCommand, streamId: number): void {
    const { chunkSize } = this.options;
    if (this.role.kind !== 'none') {
      this.send(onStatus(chunkSize, streamId, 'error', 'NetStream.Play.Failed', 'This connection is already publishing or playing.'));
      return;
    }
    const playbackKey = streamNameOf(command.args[0]);
    const decision = this.deps.router.play({ app: this.app, playbackKey, remoteAddress: this.remoteAddress });
    if (!decision.ok) {
      this.deps.refusalLog.warn(`play:${decision.reason}`, { reason: decision.reason, app: this.app, remoteAddress: this.remoteAddress }, `play refused: ${decision.message}`);
      this.send(onStatus(chunkSize, streamId, 'error', 'NetStream.Play.StreamNotFound', decision.message));
      this.close(`play refused: ${decision.reason}`, true);
      return;
    }
    this.logger = this.logger.child({ flowId: decision.flowId });
    // Media goes out on stream 1 whatever id the client asked for: every client we know
    // plays on the first stream it created, and a fixed id lets players share chunked bytes.
    this.send(streamIsRecorded(PLAY_STREAM_ID));
    this.send(streamBegin(PLAY_STREAM_ID));
    this.send(onStatus(chunkSize, streamId, 'status', 'NetStream.Play.Reset', 'Playing and resetting stream.'));
    this.send(onStatus(chunkSize, streamId, 'status', 'NetStream.Play.Start', 'Started playing stream.'));
    this.send(dataMessage(chunkSize, streamId, ['|RtmpSampleAccess', true, true]));
    const player = new RtmpPlayer(this.socket, this.deps.wire, this.options.playerMaxBacklogBytes, {
      hubClosed: (reason) => this.close(reason, true),
      stuck: () => this.fail('player_stuck', 'player stopped reading; its backlog passed twice the limit'),
    }, this.deps.merger);
    const role: Role & { kind: 'player' } = { kind: 'player', streamId, flowId: decision.flowId, player, detach: () => undefined };
    this.role = role;
    // Joining replays the cached GOP at once; should the player be closed during that call,
    // the role has ended by then, so detach here, not never.
    const detach = player.join(decision.hub);
    if (this.role === role) role.detach = detach;
    else detach();
    this.logger.info('player connected');
  }

  /** Leaves the publisher or player role (stream deleted, connection closed). */
  private endRole(reason: string): void {
    const role = this.role;
    this.role = { kind: 'none' };
    clearInterval(this.idleWatch);
    this.idleWatch = undefined;
    this.decoder.setMaxMessageSize(Math.min(this.options.maxMessageSize, PRE_PUBLISH_MAX_MESSAGE));
    if (!this.closed && role.kind !== 'none') this.armRoleTimer();
    if (role.kind === 'publisher') role.source.detach(reason);
    else if (role.kind === 'player') {
      role.detach();
      this.deps.merger?.flush(this.socket);
      const { bytesOut } = role.player.counters;
      this.logger.info({ reason, bytesOut, dropped: role.player.dropped }, 'player disconnected');
    }
  }

  private send(bytes: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    // A peer that does not read our replies (ping floods) must not grow our memory, nor
    // queue so many tiny writes that failing them on close stalls the event loop (900,000
    // took 2 s). Only a player has media on top of its replies; its startup burst (the
    // cached GOP) is not counted: it may be larger than that.
    const player = this.role.kind === 'player' ? this.role.player : undefined;
    const queued = player ? player.behind() : this.socket.writableLength;
    if (queued > CONTROL_BACKLOG_BYTES + (player ? 2 * this.options.playerMaxBacklogBytes : 0)) {
      this.fail('write_backlog', 'peer is not reading what we send');
      return;
    }
    this.socket.write(bytes);
  }
}

/** The stream name without the query string some encoders append (`key?token=...`). */
function streamNameOf(value: AmfValue): string {
  if (typeof value !== 'string') return '';
  const query = value.indexOf('?');
  return query >= 0 ? value.slice(0, query) : value;
}
