import { connect, type Socket } from 'node:net';
import { encodeAmf0, type AmfValue } from '../../src/protocol/amf/amf0.js';
import { encodeChunks } from '../../src/protocol/rtmp/chunk-encoder.js';
import { HANDSHAKE_SIZE } from '../../src/protocol/rtmp/handshake.js';

/**
 * A deliberately dumb RTMP client for sending exactly the bytes a test wants: a plain
 * handshake, then raw chunks. Used for hostile-input tests.
 */
export class RawRtmp {
  readonly closed: Promise<void>;
  private received = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(port: number, localAddress?: string): Promise<RawRtmp> {
    const socket = connect({ host: '127.0.0.1', port, ...(localAddress && { localAddress }) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawRtmp(socket);
  }

  get bytesReceived(): number {
    return this.received.length;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** C0 + C1 (zero version: plain handshake), wait for S0S1S2, send C2. */
  async handshake(): Promise<void> {
    const c1 = Buffer.alloc(HANDSHAKE_SIZE);
    this.write(Buffer.concat([Buffer.from([3]), c1]));
    const deadline = Date.now() + 5_000;
    while (this.received.length < 1 + 2 * HANDSHAKE_SIZE) {
      if (Date.now() > deadline) throw new Error('no S0S1S2 from server');
      await new Promise((r) => setTimeout(r, 10));
    }
    this.write(this.received.subarray(1, 1 + HANDSHAKE_SIZE));
  }

  command(name: string, transactionId: number, ...rest: AmfValue[]): Buffer {
    return encodeChunks({ csid: 3, typeId: 20, streamId: 0, timestamp: 0, payload: encodeAmf0([name, transactionId, ...rest]) }, 128);
  }

  /** connect + createStream + play, without waiting for answers (the server handles them in order). */
  async play(playbackKey: string): Promise<void> {
    await this.handshake();
    this.write(this.command('connect', 1, { app: 'live', tcUrl: 'rtmp://127.0.0.1/live' }));
    this.write(this.command('createStream', 2, null));
    this.write(encodeChunks({ csid: 8, typeId: 20, streamId: 1, timestamp: 0, payload: encodeAmf0(['play', 0, null, playbackKey]) }, 128));
  }

  /** connect + createStream + publish, without waiting for answers. */
  async publish(streamKey: string): Promise<void> {
    await this.handshake();
    this.write(this.command('connect', 1, { app: 'live', tcUrl: 'rtmp://127.0.0.1/live' }));
    this.write(this.command('createStream', 2, null));
    this.write(encodeChunks({ csid: 8, typeId: 20, streamId: 1, timestamp: 0, payload: encodeAmf0(['publish', 0, null, streamKey, 'live']) }, 128));
  }

  /** An audio (8) or video (9) message on the published stream, as a publisher sends it. */
  media(typeId: 8 | 9, timestamp: number, payload: Buffer): void {
    this.write(encodeChunks({ csid: typeId === 9 ? 6 : 4, typeId, streamId: 1, timestamp, payload }, 128));
  }

  /** Everything received so far, as text where it is text (for finding status codes). */
  receivedText(): string {
    return this.received.toString('latin1');
  }

  /** Resolves true if the server closes the connection within timeoutMs. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs))]);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
