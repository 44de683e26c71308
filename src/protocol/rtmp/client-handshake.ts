import { randomBytes } from 'node:crypto';
import { ProtocolError } from '../../lib/errors.js';
import {
  blockDigest,
  DIGEST_LENGTH,
  digestOffset,
  findDigest,
  FLASH_PLAYER_KEY,
  HANDSHAKE_SIZE,
  hmac,
  PLAYER_KEY_SHORT,
  RTMP_VERSION,
  SERVER_KEY_SHORT,
} from './handshake.js';

/**
 * RTMP handshake, client side. Sans-I/O: `start()` gives C0+C1, `feed()` takes whatever
 * the socket delivered and, once S0+S1+S2 are complete, gives C2 and the bytes after S2.
 *
 * C1 uses the digest form ffmpeg and librtmp send (a Flash Player version and an
 * HMAC-SHA256 digest at scheme 0): servers such as FMS/Wowza and some CDN ingests only
 * answer that form, and servers that do not care accept it as a plain C1.
 */

/** The Flash Player version ffmpeg and librtmp advertise in C1. */
const CLIENT_VERSION = Buffer.from([9, 0, 124, 2]);
const S0S1S2_LENGTH = 1 + 2 * HANDSHAKE_SIZE;

export type ClientHandshakeProgress = { done: false } | { done: true; output: Buffer; rest: Buffer };

export class ClientHandshake {
  private buffered: Buffer = Buffer.alloc(0);
  private state: 'idle' | 's0s1s2' | 'done' = 'idle';
  /** True when S1 carried a valid server digest (and C2 was built from it). */
  digest = false;

  constructor(private readonly now: () => number = Date.now) {}

  /** C0 + C1. */
  start(): Buffer {
    if (this.state !== 'idle') throw new ProtocolError('RTMP_HANDSHAKE', 'client handshake already started');
    this.state = 's0s1s2';
    const c1 = randomBytes(HANDSHAKE_SIZE);
    c1.writeUInt32BE(this.now() >>> 0, 0);
    CLIENT_VERSION.copy(c1, 4);
    const offset = digestOffset(c1, 0);
    blockDigest(c1, offset, PLAYER_KEY_SHORT).copy(c1, offset);
    return Buffer.concat([Buffer.from([RTMP_VERSION]), c1]);
  }

  feed(chunk: Buffer): ClientHandshakeProgress {
    if (this.state !== 's0s1s2') {
      throw new ProtocolError('RTMP_HANDSHAKE', this.state === 'idle' ? 'handshake bytes before C0+C1 were sent' : 'handshake already complete');
    }
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    if (this.buffered.length >= 1 && this.buffered[0] !== RTMP_VERSION) {
      throw new ProtocolError('RTMP_HANDSHAKE', `server answered with RTMP version byte ${this.buffered[0]} (expected 3)`);
    }
    if (this.buffered.length < S0S1S2_LENGTH) return { done: false };
    const s1 = this.buffered.subarray(1, 1 + HANDSHAKE_SIZE);
    // S2 is not checked: servers in the field echo C1 or sign it in ways that vary.
    const rest = this.buffered.subarray(S0S1S2_LENGTH);
    const output = this.buildC2(s1);
    this.buffered = Buffer.alloc(0);
    this.state = 'done';
    return { done: true, output, rest };
  }

  /**
   * A server that signed S1 expects C2 signed with a key derived from its digest (what
   * Flash Player does, and what FMS checks); any other server gets the plain echo of S1
   * the spec asks for (5.2.4).
   */
  private buildC2(s1: Buffer): Buffer {
    const server = s1.readUInt32BE(4) === 0 ? undefined : findDigest(s1, SERVER_KEY_SHORT);
    if (!server) return Buffer.from(s1);
    this.digest = true;
    const c2 = randomBytes(HANDSHAKE_SIZE);
    const key = hmac(FLASH_PLAYER_KEY, server.digest);
    const bodyLength = HANDSHAKE_SIZE - DIGEST_LENGTH;
    hmac(key, c2.subarray(0, bodyLength)).copy(c2, bodyLength);
    return c2;
  }
}
