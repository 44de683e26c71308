import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../../lib/errors.js';

/**
 * RTMP handshake, server side (RTMP spec 1.0 section 5.2, plus the "complex"/digest
 * variant Flash Player, librtmp and ffmpeg send). Sans-I/O: bytes in, bytes out.
 *
 * C0 (1 byte version) + C1 (1536) -> S0 + S1 + S2 (1 + 1536 + 1536); then C2 (1536).
 * When C1 carries a valid digest (its version field is non-zero and an HMAC-SHA256 with
 * the Flash Player key is found at one of the two schemes' offsets), we answer with the
 * digest form, which clients that validate the server (ffmpeg when the server advertises
 * a version) require; otherwise S1 is random with zero version and S2 echoes C1.
 */
export const HANDSHAKE_SIZE = 1536;
export const RTMP_VERSION = 3;
export const DIGEST_LENGTH = 32;

const KEY_TAIL = Buffer.from([
  0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57,
  0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
]);
/** "Genuine Adobe Flash Player 001" + tail: the first 30 bytes sign C1. */
export const FLASH_PLAYER_KEY = Buffer.concat([Buffer.from('Genuine Adobe Flash Player 001', 'ascii'), KEY_TAIL]);
/** "Genuine Adobe Flash Media Server 001" + tail: the first 36 bytes sign S1, all 68 derive S2's key. */
export const FLASH_SERVER_KEY = Buffer.concat([Buffer.from('Genuine Adobe Flash Media Server 001', 'ascii'), KEY_TAIL]);
export const PLAYER_KEY_SHORT = FLASH_PLAYER_KEY.subarray(0, 30);
export const SERVER_KEY_SHORT = FLASH_SERVER_KEY.subarray(0, 36);

/** Version we advertise in a digest S1 (what FMS 4.5 sends). */
const SERVER_VERSION = Buffer.from([0x04, 0x05, 0x00, 0x01]);

export type DigestScheme = 0 | 1;

/** Offset of the 32-byte digest inside a 1536-byte C1/S1 for a scheme (0: bytes 8..11 sum, 1: 772..775). */
export function digestOffset(block: Buffer, scheme: DigestScheme): number {
  const base = scheme === 0 ? 8 : 772;
  const sum = block[base]! + block[base + 1]! + block[base + 2]! + block[base + 3]!;
  return (sum % 728) + base + 4;
}

export function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC over the block with the digest's 32 bytes left out. */
export function blockDigest(block: Buffer, offset: number, key: Buffer): Buffer {
  return hmac(key, block.subarray(0, offset), block.subarray(offset + DIGEST_LENGTH));
}

/** Finds which scheme's digest in a C1 or S1 verifies with `key`, if any. */
export function findDigest(block: Buffer, key: Buffer): { scheme: DigestScheme; digest: Buffer } | undefined {
  for (const scheme of [1, 0] as const) {
    const offset = digestOffset(block, scheme);
    const expected = blockDigest(block, offset, key);
    const actual = block.subarray(offset, offset + DIGEST_LENGTH);
    if (timingSafeEqual(expected, actual)) return { scheme, digest: Buffer.from(actual) };
  }
  return undefined;
}

/** Finds which scheme's digest in C1 verifies with the Flash Player key, if any. */
export function findClientDigest(c1: Buffer): { scheme: DigestScheme; digest: Buffer } | undefined {
  return findDigest(c1, PLAYER_KEY_SHORT);
}

/** Builds S1 and S2 answering C1. Exported for tests and for the client side later. */
export function buildServerResponse(c1: Buffer, nowMs: number): { s1: Buffer; s2: Buffer; digest: boolean } {
  const s1 = randomBytes(HANDSHAKE_SIZE);
  s1.writeUInt32BE(nowMs >>> 0, 0);
  const clientVersion = c1.readUInt32BE(4);
  const client = clientVersion === 0 ? undefined : findClientDigest(c1);
  if (!client) {
    s1.writeUInt32BE(0, 4);
    // Plain handshake: S2 echoes C1 (spec 5.2.4: time, time2, random echo).
    const s2 = Buffer.from(c1);
    s2.writeUInt32BE(nowMs >>> 0, 4);
    return { s1, s2, digest: false };
  }
  SERVER_VERSION.copy(s1, 4);
  const s1Offset = digestOffset(s1, client.scheme);
  blockDigest(s1, s1Offset, SERVER_KEY_SHORT).copy(s1, s1Offset);
  const s2 = randomBytes(HANDSHAKE_SIZE);
  const s2Key = hmac(FLASH_SERVER_KEY, client.digest);
  const bodyLength = HANDSHAKE_SIZE - DIGEST_LENGTH;
  hmac(s2Key, s2.subarray(0, bodyLength)).copy(s2, bodyLength);
  return { s1, s2, digest: true };
}

export type HandshakeProgress =
  | { done: false; output?: Buffer }
  | { done: true; output?: Buffer; rest: Buffer };

/**
 * Server handshake state machine. Feed it whatever the socket delivered; it answers
 * S0S1S2 once C0C1 is complete and reports done with the bytes after C2 (the first
 * chunks, which eager clients send without waiting).
 */
export class ServerHandshake {
  private buffered: Buffer = Buffer.alloc(0);
  private state: 'c0c1' | 'c2' | 'done' = 'c0c1';
  digest = false;

  constructor(private readonly now: () => number = Date.now) {}

  feed(chunk: Buffer): HandshakeProgress {
    if (this.state === 'done') throw new ProtocolError('RTMP_HANDSHAKE', 'handshake already complete');
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let output: Buffer | undefined;
    if (this.state === 'c0c1') {
      if (this.buffered.length < 1) return { done: false };
      const version = this.buffered[0]!;
      // Version 3 is plain RTMP; 6 is RTMPE (encrypted), which we do not offer.
      if (version !== RTMP_VERSION) {
        throw new ProtocolError('RTMP_HANDSHAKE', `unsupported RTMP version byte ${version} (expected 3)`);
      }
      if (this.buffered.length < 1 + HANDSHAKE_SIZE) return { done: false };
      const c1 = this.buffered.subarray(1, 1 + HANDSHAKE_SIZE);
      const { s1, s2, digest } = buildServerResponse(c1, this.now());
      this.digest = digest;
      output = Buffer.concat([Buffer.from([RTMP_VERSION]), s1, s2]);
      this.buffered = this.buffered.subarray(1 + HANDSHAKE_SIZE);
      this.state = 'c2';
    }
    if (this.buffered.length < HANDSHAKE_SIZE) return output ? { done: false, output } : { done: false };
    // C2 is not verified: clients in the field echo S1 imprecisely, and nothing depends on it.
    const rest = this.buffered.subarray(HANDSHAKE_SIZE);
    this.buffered = Buffer.alloc(0);
    this.state = 'done';
    return output ? { done: true, output, rest } : { done: true, rest };
  }
}
