import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import type { Logger } from 'pino';
import { ProtocolError } from '../../lib/errors.js';
import { encodeAmf0, type AmfObject, type AmfValue } from '../../protocol/amf/amf0.js';
import { splitAggregate } from '../../protocol/rtmp/aggregate.js';
import { ChunkDecoder, type RtmpMessage } from '../../protocol/rtmp/chunk-decoder.js';
import { encodeChunks } from '../../protocol/rtmp/chunk-encoder.js';
import { ClientHandshake } from '../../protocol/rtmp/client-handshake.js';
import { decodeAmf3Command, decodeCommand, decodeDataMessage, encodeCommand, stripSetDataFrame, type DecodeCommandOptions, type RtmpCommand } from '../../protocol/rtmp/command.js';
import { acknowledgement, parseUserControl, pingResponse, setBufferLength, setChunkSize, windowAckSize } from '../../protocol/rtmp/control.js';
import { ChunkStream, MessageType } from '../../protocol/rtmp/message-types.js';
import { TimestampUnwrapper } from '../timestamp-unwrapper.js';
import { RtmpClientError, type RtmpClientErrorCode, type RtmpClientEvents, type RtmpClientOptions } from './types.js';
import { describeTarget } from './url.js';

/** Servers send notifications (onFCPublish) without a transaction id; read it as 0. */
const LENIENT: DecodeCommandOptions = { missingTransactionIdAsZero: true };

export type RtmpClientState = 'connecting' | 'handshaking' | 'ready' | 'closed';

const TRANSITIONS: Readonly<Record<RtmpClientState, readonly RtmpClientState[]>> = {
  connecting: ['handshaking', 'closed'],
  handshaking: ['ready', 'closed'],
  ready: ['closed'],
  closed: [],
};

/** NetStream commands (publish, play) travel on their own chunk stream, as ffmpeg's RTMP_SOURCE_CHANNEL. */
const STREAM_COMMAND_CSID = 8;
/** How long our last words (FCUnpublish, deleteStream) may take to flush before the socket is destroyed. */
const CLOSE_FLUSH_MS = 1_000;
/** What ffmpeg and librtmp ask the server to buffer for a player. */
const PLAY_BUFFER_MS = 3_000;
/**
 * `play` start argument. -1000 is "live only" as librtmp (live=1) and ffmpeg
 * (-rtmp_live live) send it: a relay pulls live streams, and a live-only play waits for
 * the publisher (PublishNotify) instead of falling back to a recorded file of that name.
 * nginx-rtmp and our own server ignore it for live streams.
 */
const PLAY_START_LIVE_ONLY = -1000;
/** Codec capability bitmasks ffmpeg sends in `connect` (every audio codec; every video codec up to H.264). */
const AUDIO_CODECS = 4071;
const VIDEO_CODECS = 252;
const SET_DATA_FRAME = encodeAmf0(['@setDataFrame']);
/** Server-to-player signalling sent as data messages; not stream content, so never passed on. */
const SIGNALLING_DATA = new Set(['|RtmpSampleAccess', 'onStatus', 'onPlayStatus']);

type PendingCall = 'connect' | 'releaseStream' | 'FCPublish' | 'createStream';

/**
 * An RTMP client connection over TCP or TLS that publishes to (push) or plays from (pull)
 * a server. It speaks what encoders (OBS, ffmpeg) and players (ffmpeg, librtmp) speak,
 * so that the servers in the field (nginx-rtmp, SRS, Wowza, YouTube/Twitch ingests and
 * our own) accept it. Every failure ends in exactly one `closed` event with a stable code.
 */
export class RtmpClientConnection {
  private current: RtmpClientState = 'connecting';
  private started = false;
  private socket: Socket | undefined;
  /** The TCP socket under `socket` (the same one without TLS): what abort() resets. */
  private tcp: Socket | undefined;
  private tcpConnected = false;
  private transportReady = false;
  private handshake: ClientHandshake | undefined;
  private readonly decoder: ChunkDecoder;
  private readonly unwrap = new TimestampUnwrapper();
  private readonly pending = new Map<number, PendingCall>();
  private nextTransactionId = 1;
  /** Message stream id from createStream; set once publish/play has been sent. */
  private streamId: number | undefined;
  /** Play mode: media is flowing (so one upstream stop gives one streamEnd, not one per signal). */
  private streaming = false;
  private inBytes = 0;
  private outBytes = 0;
  private serverWindow = 0;
  private lastAckAt = 0;
  private announcedWindow = 0;
  private connectTimer: NodeJS.Timeout | undefined;
  private readyTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly logger: Logger;
  private readonly described: string;

  constructor(
    private readonly options: RtmpClientOptions,
    private readonly events: RtmpClientEvents,
  ) {
    this.decoder = new ChunkDecoder({ maxMessageSize: options.maxMessageSize });
    this.described = describeTarget(options.target);
    this.logger = options.logger.child({ target: this.described, mode: options.mode });
  }

  get state(): RtmpClientState {
    return this.current;
  }

  get bytesOut(): number {
    return this.outBytes;
  }

  get bytesIn(): number {
    return this.inBytes;
  }

  /** Bytes queued in the socket: the caller's backpressure signal. */
  get writableLength(): number {
    return this.socket?.writableLength ?? 0;
  }

  start(): void {
    if (this.started || this.current === 'closed') return;
    this.started = true;
    const { target, connectTimeoutMs } = this.options;
    this.logger.debug('rtmp client connecting');
    this.connectTimer = setTimeout(
      () => this.fail('CONNECT_TIMEOUT', `no ${target.secure ? 'TLS ' : ''}connection to ${this.described} within ${connectTimeoutMs} ms`),
      connectTimeoutMs,
    );
    let socket: Socket;
    try {
      socket = this.openSocket();
    } catch (err) {
      // Invalid TLS material or options throw synchronously; report it like any other failure, but not from inside start().
      const code: RtmpClientErrorCode = target.secure ? 'TLS_FAILED' : 'CONNECT_FAILED';
      process.nextTick(() => this.fail(code, `cannot connect to ${this.described}: ${(err as Error).message}`));
      return;
    }
    this.socket = socket;
    socket.on('connect', () => this.onTcpConnect());
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.onSocketError(err));
    socket.on('close', () => this.onSocketClose());
  }

  /** Idempotent. A graceful close ends the stream the way encoders do before ending the socket. */
  close(reason: string): void {
    if (this.current === 'closed') return;
    this.logger.debug({ reason }, 'rtmp client closing');
    // A stream id means the handshake and connect are done, so the server can parse these.
    if (this.streamId !== undefined) {
      if (this.options.mode === 'publish') this.invoke('FCUnpublish', this.options.target.streamName);
      this.invoke('deleteStream', this.streamId);
    }
    this.finish(undefined, this.transportReady ? 'graceful' : 'destroy');
  }

  /**
   * Drops the connection at once with a TCP reset, discarding what is still queued. For
   * a destination that stopped reading: a graceful close would queue its FIN behind
   * megabytes it will not read, leaving it (and the stream key it holds) live for minutes.
   */
  abort(reason: string): void {
    if (this.current === 'closed') return;
    this.logger.debug({ reason }, 'rtmp client aborting');
    this.finish(undefined, 'reset');
  }

  sendMedia(kind: 'audio' | 'video', timestamp: number, payload: Buffer): void {
    if (!this.canPublish('sendMedia')) return;
    const audio = kind === 'audio';
    this.sendMessage(audio ? ChunkStream.Audio : ChunkStream.Video, audio ? MessageType.Audio : MessageType.Video, timestamp, payload);
  }

  /** Encoders send metadata as '@setDataFrame' + the onMetaData body; servers store it for players that join later. */
  sendMetadata(timestamp: number, onMetaDataBody: Buffer): void {
    if (!this.canPublish('sendMetadata')) return;
    this.sendMessage(ChunkStream.Data, MessageType.DataAmf0, timestamp, Buffer.concat([SET_DATA_FRAME, onMetaDataBody]));
  }

  sendData(timestamp: number, payload: Buffer): void {
    if (!this.canPublish('sendData')) return;
    this.sendMessage(ChunkStream.Data, MessageType.DataAmf0, timestamp, payload);
  }

  /** Media before ready or after close is dropped: the caller races with the connection's end. */
  private canPublish(what: string): boolean {
    if (this.options.mode !== 'publish') throw new Error(`${what} on an RTMP client connection in play mode`);
    return this.current === 'ready';
  }

  private sendMessage(csid: number, typeId: number, timestamp: number, payload: Buffer): void {
    this.send(encodeChunks({ csid, typeId, streamId: this.streamId!, timestamp, payload }, this.options.chunkSize));
  }

  private openSocket(): Socket {
    const { target, tls } = this.options;
    this.tcp = netConnect({ host: target.host, port: target.port });
    if (!target.secure) return this.tcp;
    // TLS over our own TCP socket, so that abort() can reset it (a TLS socket cannot be).
    return tlsConnect({
      socket: this.tcp,
      // Still given: certificates are checked against it.
      host: target.host,
      // SNI must not carry an IP address (RFC 6066 section 3); Node warns if it does.
      ...(isIP(target.host) === 0 ? { servername: target.host } : {}),
      // `ca` replaces the default store; operators mean "trust this one as well".
      ...(tls?.ca ? { ca: [...rootCertificates, tls.ca] } : {}),
      rejectUnauthorized: tls?.rejectUnauthorized ?? true,
    }).on('secureConnect', () => this.onTransportReady());
  }

  private onTcpConnect(): void {
    if (this.current === 'closed') return;
    this.tcpConnected = true;
    this.socket!.setNoDelay(true);
    this.socket!.setKeepAlive(true, 10_000);
    const { handshakeTimeoutMs } = this.options;
    this.readyTimer = setTimeout(
      () => this.fail('HANDSHAKE_TIMEOUT', `${this.described} did not accept ${this.options.mode} within ${handshakeTimeoutMs} ms (${this.stage()})`),
      handshakeTimeoutMs,
    );
    if (!this.options.target.secure) this.onTransportReady();
  }

  private onTransportReady(): void {
    if (this.current === 'closed') return;
    this.transportReady = true;
    clearTimeout(this.connectTimer);
    this.logger.debug(this.options.target.secure ? 'tls established' : 'tcp connected');
    this.transition('handshaking');
    this.handshake = new ClientHandshake();
    this.send(this.handshake.start());
  }

  private stage(): string {
    if (!this.transportReady) return 'TLS handshake';
    if (this.handshake) return 'waiting for the RTMP handshake';
    if ([...this.pending.values()].includes('connect')) return 'waiting for the connect result';
    if (this.streamId === undefined) return 'waiting for the createStream result';
    return `waiting for NetStream.${this.options.mode === 'publish' ? 'Publish' : 'Play'}.Start`;
  }

  private onSocketError(err: Error): void {
    if (this.current === 'closed') return;
    if (!this.tcpConnected) this.fail('CONNECT_FAILED', `cannot connect to ${this.described}: ${err.message}`);
    else if (!this.transportReady) this.fail('TLS_FAILED', `TLS handshake with ${this.described} failed: ${err.message}`);
    else this.fail('SOCKET_ERROR', `socket error: ${err.message}`);
  }

  private onSocketClose(): void {
    clearTimeout(this.flushTimer);
    if (this.current === 'closed') return;
    if (!this.tcpConnected) this.fail('CONNECT_FAILED', `connection to ${this.described} closed before it was established`);
    else if (!this.transportReady) this.fail('TLS_FAILED', `${this.described} closed the connection during the TLS handshake`);
    else this.fail('CLOSED_BY_PEER', `${this.described} closed the connection${this.current === 'ready' ? '' : ` (${this.stage()})`}`);
  }

  private onData(chunk: Buffer): void {
    if (this.current === 'closed') return;
    try {
      this.inBytes += chunk.length;
      if (this.handshake) {
        const progress = this.handshake.feed(chunk);
        if (!progress.done) return;
        this.send(progress.output);
        this.logger.debug({ digest: this.handshake.digest }, 'rtmp handshake complete');
        this.handshake = undefined;
        this.sendConnect();
        if (progress.rest.length === 0) return;
        chunk = progress.rest;
      }
      this.decoder.feed(chunk, (message) => this.onMessage(message));
      this.maybeAcknowledge();
    } catch (err) {
      if (err instanceof ProtocolError) this.fail('PROTOCOL_ERROR', `${err.code}: ${err.message}`);
      else this.fail('PROTOCOL_ERROR', `unexpected error handling RTMP input: ${(err as Error).message}`);
    }
  }

  private sendConnect(): void {
    const { target, mode, chunkSize } = this.options;
    this.send(setChunkSize(chunkSize));
    // Publish looks like OBS/FMLE, play like ffmpeg's player: servers key behaviour on flashVer.
    const common = { fpad: false, capabilities: 15, audioCodecs: AUDIO_CODECS, videoCodecs: VIDEO_CODECS, videoFunction: 1 };
    const properties: AmfObject =
      mode === 'publish'
        ? { app: target.app, type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; flowrelay)', swfUrl: target.tcUrl, tcUrl: target.tcUrl, ...common }
        : { app: target.app, flashVer: 'LNX 9,0,124,2', tcUrl: target.tcUrl, ...common };
    this.invokeWith('connect', 'connect', properties);
  }

  private maybeAcknowledge(): void {
    if (this.serverWindow > 0 && this.inBytes - this.lastAckAt >= this.serverWindow) {
      this.lastAckAt = this.inBytes;
      this.send(acknowledgement(this.inBytes % 0x1_0000_0000));
    }
  }

  private onMessage(message: RtmpMessage): void {
    if (this.current === 'closed') return;
    switch (message.typeId) {
      case MessageType.Audio:
        return this.onMedia('audio', message.timestamp, message.payload);
      case MessageType.Video:
        return this.onMedia('video', message.timestamp, message.payload);
      case MessageType.Aggregate:
        for (const part of splitAggregate(message.payload, message.timestamp)) this.onMedia(part.kind, part.timestamp, part.payload);
        return;
      case MessageType.DataAmf0:
        return this.onDataMessage(message.timestamp, message.payload);
      case MessageType.DataAmf3:
        return this.onDataMessage(message.timestamp, message.payload.subarray(1));
      case MessageType.CommandAmf0:
        return this.onCommand(decodeCommand(message.payload, LENIENT));
      case MessageType.CommandAmf3:
        return this.onCommand(decodeAmf3Command(message.payload, LENIENT));
      case MessageType.WindowAckSize:
        this.serverWindow = readU32(message.payload, 'Window Acknowledgement Size');
        return;
      case MessageType.SetPeerBandwidth: {
        // Clients answer with a Window Acknowledgement Size of the announced bandwidth (Flash Player, librtmp).
        const size = readU32(message.payload, 'Set Peer Bandwidth');
        if (size !== this.announcedWindow) {
          this.announcedWindow = size;
          this.send(windowAckSize(size));
        }
        return;
      }
      case MessageType.UserControl:
        return this.onUserControl(message.payload);
      default:
        // Set Chunk Size and Abort are applied by the decoder; acknowledgements and shared objects need nothing from us.
        return;
    }
  }

  private onUserControl(payload: Buffer): void {
    const event = parseUserControl(payload);
    if (!event) return;
    if (event.event === 'pingRequest') this.send(pingResponse(event.timestamp));
    else if (event.event === 'streamEof') this.endOfStream('StreamEOF');
    else if (event.event === 'streamBegin') this.logger.debug({ streamId: event.streamId }, 'stream begin');
  }

  private onMedia(kind: 'audio' | 'video', timestamp: number, payload: Buffer): void {
    if (!this.playing()) return;
    this.streaming = true;
    this.events.media(kind, this.unwrap.unwrap(timestamp), payload);
  }

  private onDataMessage(timestamp: number, payload: Buffer): void {
    if (this.options.mode !== 'play' || this.streamId === undefined || this.current === 'closed') return;
    const body = stripSetDataFrame(payload);
    const message = decodeDataMessage(body);
    if (SIGNALLING_DATA.has(message.name)) {
      if (message.name === 'onPlayStatus' && statusOf(message.values[0]).code === 'NetStream.Play.Complete') this.endOfStream('NetStream.Play.Complete');
      return;
    }
    if (!this.playing()) return;
    this.streaming = true;
    const unwrapped = this.unwrap.unwrap(timestamp);
    if (message.name === 'onMetaData') this.events.metadata(unwrapped, body);
    else this.events.data(unwrapped, body);
  }

  /**
   * Play mode, after `play` was sent: true when media may be passed on. Some servers never
   * send NetStream.Play.Start, so the first media or data message makes the play ready.
   */
  private playing(): boolean {
    if (this.options.mode !== 'play' || this.streamId === undefined) return false;
    if (this.current === 'handshaking') this.becomeReady();
    return this.current === 'ready';
  }

  private endOfStream(reason: string): void {
    if (this.options.mode !== 'play' || this.current !== 'ready' || !this.streaming) return;
    this.streaming = false;
    this.logger.debug({ reason }, 'upstream stream ended');
    this.events.streamEnd(reason);
  }

  private onCommand(command: RtmpCommand): void {
    switch (command.name) {
      case '_result':
        return this.onResult(command);
      case '_error':
        return this.onError(command);
      case 'onStatus':
        return this.onStatus(statusOf(command.args[0]));
      case 'close':
        // FMS and Wowza tell a client to go away with a 'close' command before closing the socket.
        return this.fail('CLOSED_BY_PEER', `${this.described} sent 'close'${describeStatus(statusOf(command.args[0]), this.options.target.streamName)}`);
      default:
        // onBWDone, onFCPublish, onFCUnpublish, _checkbw...: informational for a relay.
        this.logger.debug({ command: command.name }, 'ignored RTMP command');
    }
  }

  private onResult(command: RtmpCommand): void {
    const call = this.pending.get(command.transactionId);
    this.pending.delete(command.transactionId);
    const { mode, target } = this.options;
    if (call === 'connect') {
      this.logger.debug('connect accepted');
      if (mode === 'publish') {
        // What OBS and ffmpeg send; servers that need neither answer _error, which is ignored.
        this.invokeWith('releaseStream', 'releaseStream', null, target.streamName);
        this.invokeWith('FCPublish', 'FCPublish', null, target.streamName);
      }
      this.invokeWith('createStream', 'createStream', null);
    } else if (call === 'createStream') {
      const id = command.args[0];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
        throw new ProtocolError('RTMP_BAD_COMMAND', 'createStream result carries no valid stream id');
      }
      this.streamId = id;
      this.logger.debug({ streamId: id }, 'stream created');
      if (mode === 'publish') {
        this.streamCommand('publish', target.streamName, 'live');
      } else {
        this.streamCommand('play', target.streamName, PLAY_START_LIVE_ONLY);
        this.send(setBufferLength(id, PLAY_BUFFER_MS));
      }
    }
  }

  private onError(command: RtmpCommand): void {
    const call = this.pending.get(command.transactionId);
    this.pending.delete(command.transactionId);
    // Many servers refuse releaseStream/FCPublish (or answer calls we never track) and still accept publish.
    if (call === undefined || call === 'releaseStream' || call === 'FCPublish') {
      this.logger.debug({ call: call ?? command.transactionId }, 'server answered _error (ignored)');
      return;
    }
    this.fail('REJECTED', `${call} refused by ${this.described}${describeStatus(statusOf(command.args[0]), this.options.target.streamName)}`);
  }

  private onStatus(status: Status): void {
    const { mode } = this.options;
    if (status.level === 'error') {
      this.fail('REJECTED', `${this.described} refused ${mode}${describeStatus(status, this.options.target.streamName)}`);
      return;
    }
    switch (status.code) {
      case 'NetStream.Publish.Start':
        if (mode === 'publish') this.becomeReady();
        return;
      case 'NetStream.Play.Start':
      case 'NetStream.Play.PublishNotify':
        if (mode === 'play') {
          this.becomeReady();
          this.streaming = true;
        }
        return;
      case 'NetStream.Play.UnpublishNotify':
      case 'NetStream.Play.Stop':
        return this.endOfStream(status.code);
      default:
        this.logger.debug({ code: status.code, level: status.level }, 'rtmp status');
    }
  }

  private becomeReady(): void {
    if (this.current !== 'handshaking' || this.streamId === undefined) return;
    clearTimeout(this.readyTimer);
    this.transition('ready');
    this.logger.debug(this.options.mode === 'publish' ? 'publish started' : 'play started');
    this.events.ready();
  }

  /** A NetConnection command on chunk stream 3, message stream 0; `call` tracks the answer. */
  private invokeWith(name: string, call: PendingCall, commandObject: AmfValue, ...args: AmfValue[]): void {
    const transactionId = this.nextTransactionId++;
    this.pending.set(transactionId, call);
    this.sendCommand(ChunkStream.Command, 0, { name, transactionId, commandObject, args });
  }

  /** A NetConnection command whose answer does not matter. */
  private invoke(name: string, ...args: AmfValue[]): void {
    this.sendCommand(ChunkStream.Command, 0, { name, transactionId: this.nextTransactionId++, commandObject: null, args });
  }

  /** A NetStream command (transaction 0, as the spec has it for publish and play) on the created stream. */
  private streamCommand(name: string, ...args: AmfValue[]): void {
    this.sendCommand(STREAM_COMMAND_CSID, this.streamId!, { name, transactionId: 0, commandObject: null, args });
  }

  private sendCommand(csid: number, streamId: number, command: RtmpCommand): void {
    this.send(encodeChunks({ csid, typeId: MessageType.CommandAmf0, streamId, timestamp: 0, payload: encodeCommand(command) }, this.options.chunkSize));
  }

  private send(bytes: Buffer): void {
    const socket = this.socket;
    if (!socket || socket.destroyed || !socket.writable) return;
    socket.write(bytes);
    this.outBytes += bytes.length;
  }

  private transition(next: RtmpClientState): void {
    if (!TRANSITIONS[this.current].includes(next)) throw new Error(`RTMP client: invalid state transition ${this.current} -> ${next}`);
    this.current = next;
  }

  private fail(code: RtmpClientErrorCode, message: string): void {
    if (this.current === 'closed') return;
    this.logger.debug({ code }, message);
    this.finish(new RtmpClientError(code, message), 'destroy');
  }

  private finish(error: RtmpClientError | undefined, how: 'graceful' | 'destroy' | 'reset'): void {
    this.transition('closed');
    clearTimeout(this.connectTimer);
    clearTimeout(this.readyTimer);
    this.pending.clear();
    this.handshake = undefined;
    const socket = this.socket;
    if (socket && !socket.destroyed) {
      if (how === 'graceful') {
        socket.end();
        // Cleared when the socket closes; unref'd so a peer that never closes cannot hold the process.
        this.flushTimer = setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS);
        this.flushTimer.unref();
      } else {
        if (how === 'reset' && this.tcp && !this.tcp.destroyed) this.tcp.resetAndDestroy();
        socket.destroy();
      }
    }
    try {
      this.events.closed(error);
    } catch (err) {
      this.logger.error({ err }, 'rtmp client closed handler threw');
    }
  }
}

interface Status {
  level: string;
  code: string;
  description: string;
}

function statusOf(value: AmfValue): Status {
  const object = value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date) ? value : {};
  const text = (key: string): string => (typeof object[key] === 'string' ? object[key] : '');
  return { level: text('level'), code: text('code'), description: text('description') };
}

/**
 * ": code: description" for error messages, with the stream key cut out: servers echo the
 * stream name in descriptions, and these messages reach logs and the status API.
 */
function describeStatus(status: Status, streamName: string): string {
  const text = [status.code, status.description].filter((s) => s !== '').join(': ');
  if (text === '') return '';
  const key = streamName.split('?')[0]!;
  let redacted = text;
  for (const secret of [streamName, key]) if (secret !== '') redacted = redacted.split(secret).join('<key redacted>');
  return `: ${redacted}`;
}

function readU32(payload: Buffer, what: string): number {
  if (payload.length < 4) throw new ProtocolError('RTMP_BAD_CONTROL', `${what} shorter than 4 bytes`);
  return payload.readUInt32BE(0);
}
